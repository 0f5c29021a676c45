/**
 * The `vdmap` commands against a real controller process: human and --json output, exit codes scripts rely on,
 * and refusals that name what is wrong. Oracles: command output parsed back, exit codes, file modes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, statSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { encode } from 'cbor-x';
import { cleanupDevices, sparseFile, tempDir } from '../support/devices.js';
import { type Daemon, killAll, startDaemon, vdmap } from '../support/processes.js';

describe('vdmap commands', () => {
  let cwd: string;
  let controller: Daemon;
  const run = (...args: string[]) => vdmap(args, { cwd });

  before(async () => {
    cwd = tempDir();
    controller = await startDaemon(['controller', '--listen', '127.0.0.1:0'], /controller listening/, { cwd });
  });

  after(async () => {
    await controller.stop();
    killAll();
    cleanupDevices();
  });

  it('registers a device, reading its size from the path', async () => {
    const path = sparseFile(256 * 1024 * 1024);
    const added = await run('device', 'add', 'd0', '--path', path, '--json');
    assert.equal(added.code, 0, added.stderr);
    assert.equal(JSON.parse(added.stdout).size, 256 * 1024 * 1024);
    const listed = await run('device', 'ls');
    assert.match(listed.stdout, /^d0\s+256M\s+\d+\s+0B\s+local:/m);
  });

  it('refuses `device add` of a registered path under another id, by any name of the file, with exit 4, and registers nothing', async () => {
    const registered = JSON.parse((await run('device', 'ls', '--json')).stdout) as Array<{ id: string; paths: Array<{ path: string }> }>;
    const path = registered[0].paths[0].path;
    symlinkSync(path, join(cwd, 'alias.img'));
    linkSync(path, join(cwd, 'hardlink.img'));
    for (const name of [path, 'alias.img', `./${relative(cwd, path)}`, 'hardlink.img']) {
      const refused = await run('device', 'add', 'd0b', '--path', name);
      assert.equal(refused.code, 4, `${name}: ${refused.stderr}`);
      assert.match(refused.stderr, /^VDM_ADMIN_DEVICE_PATH_TAKEN: .*device 'd0'.*nothing changed/m, name);
    }
    assert.deepEqual(JSON.parse((await run('device', 'ls', '--json')).stdout), registered);
  });

  it('refuses `device add` with a registered id with exit 4, and leaves that device\'s path as it was', async () => {
    const before = (await run('device', 'ls', '--json')).stdout;
    const refused = await run('device', 'add', 'd0', '--path', sparseFile(64 * 1024 * 1024));
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /^VDM_ADMIN_DEVICE_EXISTS: device 'd0' is already registered/m);
    assert.equal((await run('device', 'ls', '--json')).stdout, before);
  });

  it('creates thick and thin disks and lists them', async () => {
    assert.equal((await run('disk', 'create', 'thick', '--size', '64M', '--device', 'd0')).code, 0);
    assert.equal((await run('disk', 'create', 'thin', '--size', '1G', '--thin')).code, 0);
    const disks = JSON.parse((await run('disk', 'ls', '--json')).stdout) as Array<{ name: string; allocatedExtents: number }>;
    assert.deepEqual(disks.map((d) => [d.name, d.allocatedExtents]).sort(), [['thick', 64], ['thin', 0]]);
  });

  it('round-trips a table through show --json and push, and the epoch advances', async () => {
    const shown = await run('table', 'show', 'thick', '--json');
    const table = JSON.parse(shown.stdout);
    table.entries = [{ extent: 0, count: 64, device: 'd0', physical: 100 }];
    const file = join(cwd, 'thick.json');
    writeFileSync(file, JSON.stringify(table));
    const pushed = await run('table', 'push', 'thick', file, '--json');
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(JSON.parse(pushed.stdout).epoch, table.epoch + 1);
    const diff = await run('table', 'diff', 'thick', String(table.epoch), String(table.epoch + 1), '--json');
    assert.equal(JSON.parse(diff.stdout).changes.length, 64);
  });

  it('refuses an invalid push with exit 5, naming every bad entry, and changes nothing', async () => {
    const before = JSON.parse((await run('table', 'show', 'thick', '--json')).stdout);
    const bad = { ...before, devices: ['d0', 'nosuch'], entries: [{ extent: 0, count: 62, device: 'd0', physical: 0 }, { extent: 62, device: 'd0', physical: 5 }, { extent: 63, device: 'nosuch', physical: 0 }] };
    const file = join(cwd, 'bad.json');
    writeFileSync(file, JSON.stringify(bad));
    const pushed = await run('table', 'push', 'thick', file);
    assert.equal(pushed.code, 5, pushed.stderr);
    assert.match(pushed.stderr, /^VDM_TABLE_INVALID: /);
    assert.match(pushed.stderr, /extent 62: VDM_TABLE_OVERLAP/);
    assert.match(pushed.stderr, /extent 63: VDM_TABLE_UNKNOWN_DEVICE .*nosuch/);
    const after = JSON.parse((await run('table', 'show', 'thick', '--json')).stdout);
    assert.equal(after.epoch, before.epoch);
  });

  it('counts every problem of a refused push, not only the ones listed, and says how many --json lists', async () => {
    assert.equal((await run('disk', 'create', 'wide', '--size', '1G', '--thin')).code, 0);
    const before = JSON.parse((await run('table', 'show', 'wide', '--json')).stdout);
    const file = join(cwd, 'overlaps.json');
    writeFileSync(file, JSON.stringify({ ...before, devices: ['d0'], entries: Array.from({ length: 1024 }, (_v, extent) => ({ extent, device: 'd0', physical: 200 })) }));
    const pushed = await run('table', 'push', 'wide', file);
    assert.equal(pushed.code, 5, pushed.stderr);
    assert.match(pushed.stderr, /^VDM_TABLE_INVALID: .*1024 problem\(s\) \(1024 VDM_TABLE_OVERLAP\)/m);
    assert.equal(pushed.stderr.match(/^ {2}extent \d+: VDM_TABLE_OVERLAP/gm)?.length, 20);
    assert.match(pushed.stderr, /^ {2}\.\.\. and 1004 more \(1024 in all; --json lists the first 100 of 1024\)$/m);
    const json = JSON.parse((await run('table', 'push', 'wide', file, '--json')).stdout);
    assert.equal(json.error.details.problemCount, 1024);
    assert.equal(json.error.details.problems.length, 100);
    assert.equal(JSON.parse((await run('table', 'show', 'wide', '--json')).stdout).epoch, before.epoch);
    assert.equal((await run('disk', 'rm', 'wide')).code, 0);
  });

  it('refuses a table file that is not a table document with exit 5, saying what one looks like, and changes nothing', async () => {
    const before = JSON.parse((await run('table', 'show', 'thick', '--json')).stdout);
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ['text.json', 'not json', /^VDM_CLI_INPUT: text\.json is text but not JSON \((syntax error at line 1, column 2|unexpected 'o')\), and not CBOR: a table document is an object \{"disk"/m],
      ['empty.json', '', /^VDM_CLI_INPUT: empty\.json is empty: a table document is an object/m],
      ['list.json', '[]', /^VDM_TABLE_INVALID: table file list\.json for disk 'thick' refused before it was sent, nothing changed: .*the table document is \[\], not an object: a table document is an object/m],
      ['null.json', 'null', /the table document is null, not an object/],
      ['number.json', '42', /the table document is 42, not an object/],
      ['object.json', '{}', /^VDM_TABLE_INVALID: table file object\.json .*7 problem\(s\).*\n(.*\n)*.*no field of a table document is right: a table document is an object/m],
      ['types.json', JSON.stringify({ ...before, epoch: 'three', devices: 'd0', entries: {} }), /3 problem\(s\)[^]*epoch is not an integer in 0\.\.\d+: "three"[^]*devices is not a list of device ids: "d0"[^]*entries is not a list: a map/],
      ['truncated.cbor', encode(before).subarray(0, 40), /^VDM_CLI_INPUT: truncated\.cbor is neither JSON text nor a complete CBOR value: a table document/m],
      ['list.cbor', encode([1, 2, 3]), /the table document is \[1, 2, 3\], not an object/],
      ['huge.cbor', Buffer.from([0x9b, 0, 0, 0, 1, 0, 0, 0, 0]), /^VDM_CLI_INPUT: huge\.cbor is neither JSON text nor a complete CBOR value/m],
    ];
    for (const [name, content, message] of cases) {
      writeFileSync(join(cwd, name), content);
      const pushed = await run('table', 'push', 'thick', name);
      assert.equal(pushed.code, 5, `${name}: ${pushed.stderr}`);
      assert.match(pushed.stderr, message, name);
      assert.doesNotMatch(pushed.stderr, /DataView|CBOR data|Unexpected token|^\s+at /m, name);
    }
    assert.equal(JSON.parse((await run('table', 'show', 'thick', '--json')).stdout).epoch, before.epoch);
  });

  it('accepts the same table as CBOR', async () => {
    const before = JSON.parse((await run('table', 'show', 'thick', '--json')).stdout);
    writeFileSync(join(cwd, 'thick.cbor'), encode(before));
    const pushed = await run('table', 'push', 'thick', 'thick.cbor', '--json');
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(JSON.parse(pushed.stdout).epoch, before.epoch + 1);
  });

  it('refuses a push built on a stale epoch with exit 4', async () => {
    const current = JSON.parse((await run('table', 'show', 'thick', '--json')).stdout);
    const file = join(cwd, 'same.json');
    writeFileSync(file, JSON.stringify(current));
    const pushed = await run('table', 'push', 'thick', file, '--expect-epoch', String(current.epoch - 1), '--json');
    assert.equal(pushed.code, 4);
    assert.equal(JSON.parse(pushed.stdout).error.code, 'VDM_TABLE_EPOCH_STALE');
  });

  it('enrolls an agent into a token file only its owner can read', async () => {
    const tokenFile = join(cwd, 'host1.token');
    const enrolled = await run('agent', 'enroll', 'host1', '--token-file', tokenFile);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    assert.ok(readFileSync(tokenFile, 'utf8').trim().length > 20);
    assert.match((await run('agent', 'ls')).stdout, /^host1\s+no\s+-/m);
  });

  it('refuses `disk rm` of a disk attached to an agent with exit 4, naming the agent, and removes it once detached', async () => {
    assert.equal((await run('disk', 'attach', 'thin', 'host1')).code, 0);
    const refused = await run('disk', 'rm', 'thin');
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /^VDM_STORE_IN_USE: cannot remove disk 'thin': it is attached to 'host1'/m);
    const disks = JSON.parse((await run('disk', 'ls', '--json')).stdout) as Array<{ name: string; agents: string[] }>;
    assert.deepEqual(disks.find((d) => d.name === 'thin')?.agents, ['host1'], 'still there, still attached');
    assert.equal((await run('disk', 'detach', 'thin', 'host1')).code, 0);
    const removed = await run('disk', 'rm', 'thin');
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /disk thin removed/);
  });

  it('prints a command\'s help, exit 0, when --help or -h follows its arguments', async () => {
    for (const flag of ['--help', '-h']) {
      const help = await run('table', 'set-state', 'vd0', '3', '--set', 'NOWRITE', flag);
      assert.equal(help.code, 0, help.stdout + help.stderr);
      assert.match(help.stdout, /vdmap table set-state .*<disk> <extents>/);
      assert.match(help.stdout, /Lift it again/, 'the detailed help, with the examples');
    }
  });

  it('prints a command\'s help, exit 0, for `vdmap help COMMAND`, as every usage hint says', async () => {
    const help = await run('help', 'disk', 'create');
    assert.equal(help.code, 0, help.stdout + help.stderr);
    assert.match(help.stdout, /vdmap disk create .*<name>/);
    assert.match(help.stdout, /A 10 GiB thin disk/, 'the detailed help, with the examples');
  });

  it('refuses `vdmap help` of a command that does not exist with exit 2, naming the commands it may mean', async () => {
    const help = await run('help', 'disk', 'frob');
    assert.equal(help.code, 2, help.stdout + help.stderr);
    assert.match(help.stderr, /^VDM_CLI_USAGE: 'disk frob' is not a vdmap command; did you mean .*'disk create'/m);
  });

  it('refuses a number that is not a number with exit 2 (VDM_CLI_USAGE) naming the option and the value, sending nothing', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['table', 'show', 'thick', '--epoch', 'abc'], /^VDM_CLI_USAGE: --epoch 'abc' is not a whole number$/m],
      [['disk', 'drain', 'thick', '--timeout', 'abc'], /^VDM_CLI_USAGE: --timeout 'abc' is not a whole number$/m],
      [['table', 'diff', 'vdz', 'x', 'y'], /^VDM_CLI_USAGE: FROM epoch 'x' is not a whole number$/m],
      [['table', 'push', 'thick', 'nosuch.json', '--expect-epoch', '7x'], /^VDM_CLI_USAGE: --expect-epoch '7x' is not a whole number$/m],
      [['table', 'set-state', 'thick', '0', '--set', 'NOWRITE', '--expect-epoch', '1.5'], /^VDM_CLI_USAGE: --expect-epoch '1\.5' is not a whole number$/m],
    ];
    for (const [args, message] of cases) {
      const result = await run(...args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
    assert.equal(JSON.parse((await run('table', 'show', 'thick', '--json')).stdout).epoch > 0, true, 'the controller still answers');
  });

  it('reports a device path with nothing at it with exit 3, naming the path, without a stack trace', async () => {
    const added = await run('device', 'add', 'd1', '--path', '/nonexistent/dev');
    assert.equal(added.code, 3, added.stderr);
    assert.match(added.stderr, /^VDM_DEVICE_NOT_FOUND: --path \/nonexistent\/dev: no such file or device$/m);
    assert.doesNotMatch(added.stderr, /^\s+at /m);
  });

  it('reports an unknown disk with exit 3 and an unknown command with exit 2', async () => {
    const missing = await run('epoch', 'nosuch');
    assert.equal(missing.code, 3, missing.stderr);
    assert.equal((await run('frobnicate')).code, 2);
  });

  it('refuses `disk rm` of a disk that does not exist with exit 3 (VDM_STORE_NOT_FOUND), naming it', async () => {
    const removed = await run('disk', 'rm', 'nope');
    assert.equal(removed.code, 3, removed.stdout + removed.stderr);
    assert.match(removed.stderr, /^VDM_STORE_NOT_FOUND: disk 'nope' does not exist: nothing was removed$/m);
  });

  it('refuses `device rm` of a device that is not registered with exit 3 (VDM_STORE_NOT_FOUND), naming it', async () => {
    const removed = await run('device', 'rm', 'nodev');
    assert.equal(removed.code, 3, removed.stdout + removed.stderr);
    assert.match(removed.stderr, /^VDM_STORE_NOT_FOUND: device 'nodev' is not registered: nothing was removed$/m);
  });

  it('refuses a --extent-size that is not a power of two >= 4K with exit 2 (VDM_CLI_USAGE) saying so, sending nothing', async () => {
    const created = await run('disk', 'create', 'odd', '--size', '1G', '--extent-size', '5K');
    assert.equal(created.code, 2, created.stdout + created.stderr);
    assert.match(created.stderr, /^VDM_CLI_USAGE: --extent-size '5K' is not a power of two >= 4K/m);
    assert.equal((await run('disk', 'ls')).stdout.includes('odd'), false);
  });

  it('refuses `table set-state` with neither --set nor --clear with exit 2 (VDM_CLI_USAGE), naming both options', async () => {
    const result = await run('table', 'set-state', 'thick', '0-15');
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(result.stderr, /^VDM_CLI_USAGE: nothing to change: give --set STATE or --clear STATE/m);
  });

  it('refuses a `table set-state` range past the disk with exit 5, naming the range and the disk\'s last extent', async () => {
    const past = await run('table', 'set-state', 'thick', '100-200', '--set', 'NOWRITE');
    assert.equal(past.code, 5, past.stdout + past.stderr);
    assert.match(past.stderr, /^VDM_ADMIN_INVALID_PARAMS: extents 100-200 are past the last extent of disk 'thick', 63 \(it has 64 extents\)$/m);
    const across = await run('table', 'set-state', 'thick', '60-70', '--set', 'NOWRITE');
    assert.match(across.stderr, /^VDM_ADMIN_INVALID_PARAMS: extents 60-70 reach past the last extent of disk 'thick', 63 /m);
  });

  it('refuses a negative size written as `--size -5G` with exit 2 (VDM_CLI_USAGE), naming the option and the value', async () => {
    const created = await run('disk', 'create', 'neg', '--size', '-5G');
    assert.equal(created.code, 2, created.stdout + created.stderr);
    assert.match(created.stderr, /^VDM_CLI_USAGE: --size '-5G' is negative/m);
  });

  it('refuses `table diff` of an epoch no longer kept with exit 3, saying which epochs the disk keeps', async () => {
    assert.equal((await run('disk', 'create', 'busy', '--size', '64M', '--thin')).code, 0);
    for (let change = 0; change < 17; change++) { // epochs 2-18; the controller keeps the last 16
      const set = await run('table', 'set-state', 'busy', '0', change % 2 === 0 ? '--set' : '--clear', 'NOWRITE');
      assert.equal(set.code, 0, set.stderr);
    }
    const diff = await run('table', 'diff', 'busy', '1', '18');
    assert.equal(diff.code, 3, diff.stdout + diff.stderr);
    assert.match(diff.stderr, /^VDM_STORE_NOT_FOUND: epoch 1 of disk 'busy' is no longer kept: it keeps epochs 3-18$/m);
  });

  it('refuses `table show --epoch` of an epoch the disk has not reached with exit 3, naming its latest and kept epochs', async () => {
    const ahead = await run('table', 'show', 'busy', '--epoch', '19');
    assert.equal(ahead.code, 3, ahead.stdout + ahead.stderr);
    assert.match(ahead.stderr, /^VDM_STORE_NOT_FOUND: disk 'busy' has no epoch 19 yet: its latest is 18; it keeps epochs 3-18$/m);
  });

  it('shows required options on the usage line of a command\'s help', async () => {
    const help = await run('disk', 'create', '--help');
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^\$ vdmap disk create <--size #0> <name>$/m);
    assert.match(help.stdout, /--size #0\s+Disk size/, 'and still lists it with its description');
    assert.match((await run('device', 'add', '--help')).stdout, /^\$ vdmap device add <--path #0> <id>$/m);
  });

  it('refuses a command without a required option with exit 2, showing the usage with that option', async () => {
    const created = await run('disk', 'create', 'nosize');
    assert.equal(created.code, 2, created.stdout + created.stderr);
    assert.match(created.stderr, /vdmap disk create .*<--size #0>.*<name>/);
  });
});

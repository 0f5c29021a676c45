/**
 * `vdmap up` given ordinary operator mistakes: each is refused with the code and exit status of its class, a
 * message naming the flag and the value, and no stack trace; a bad flag leaves nothing behind. Real processes,
 * real ports held by another listener. Oracles: exit codes, stderr, the directory left behind.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { cleanupDevices, sparseFile, tempDir } from '../support/devices.js';
import { killAll, vdmap } from '../support/processes.js';

after(() => { killAll(); cleanupDevices(); });

/** A TCP port another process-like listener holds for the duration of `body`. */
async function withPortTaken<T>(body: (address: string) => Promise<T>): Promise<T> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    return await body(`127.0.0.1:${port}`);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const noStack = (stderr: string) => assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace for an operator mistake');

describe('vdmap up refuses operator mistakes', () => {
  it('refuses --size that is not a size with exit 2, before creating the data directory', async () => {
    const cwd = tempDir();
    const result = await vdmap(['up', '--size', 'abc', '--nbd', '127.0.0.1:0', '--listen', '127.0.0.1:0'], { cwd });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^VDM_CLI_USAGE: --size 'abc' is not a size/m);
    assert.deepEqual(readdirSync(cwd), [], 'no data directory, device file or credential');
  });

  it('refuses --nbd without a port with exit 2 (VDM_CLI_USAGE), before creating anything', async () => {
    const cwd = tempDir();
    const result = await vdmap(['up', '--nbd', '127.0.0.1', '--listen', '127.0.0.1:0'], { cwd });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^VDM_CLI_USAGE: --nbd '127\.0\.0\.1' is not HOST:PORT/m);
    assert.deepEqual(readdirSync(cwd), []);
  });

  it('refuses --data naming a file with exit 2: "--data FILE is not a directory"', async () => {
    const cwd = tempDir();
    const file = join(cwd, 'passwd');
    writeFileSync(file, 'root:x:0:0::/root:/bin/sh\n');
    const result = await vdmap(['up', '--data', file, '--nbd', '127.0.0.1:0', '--listen', '127.0.0.1:0'], { cwd });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`^VDM_CLI_USAGE: --data ${file} is not a directory$`, 'm'));
    noStack(result.stderr);
  });

  it('refuses a --device path with nothing at it with exit 3, naming the path, before creating anything', async () => {
    const cwd = tempDir();
    const result = await vdmap(['up', '--device', '/nonexistent/dev', '--nbd', '127.0.0.1:0', '--listen', '127.0.0.1:0'], { cwd });
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /^VDM_DEVICE_NOT_FOUND: --device \/nonexistent\/dev: no such file or device$/m);
    assert.deepEqual(readdirSync(cwd), []);
  });

  it('reports an NBD address already in use with exit 4, naming the address and --nbd', async () => {
    const cwd = tempDir();
    await withPortTaken(async (address) => {
      const result = await vdmap(['up', '--nbd', address, '--listen', '127.0.0.1:0'], { cwd });
      assert.equal(result.code, 4, result.stderr);
      assert.match(result.stderr, new RegExp(`^VDM_LISTEN_IN_USE: NBD: ${address} is already in use: choose another address with --nbd$`, 'm'));
      noStack(result.stderr);
    });
  });

  it('reports a controller address already in use with exit 4, naming the address and --listen', async () => {
    const cwd = tempDir();
    await withPortTaken(async (address) => {
      const result = await vdmap(['up', '--listen', address, '--nbd', '127.0.0.1:0'], { cwd });
      assert.equal(result.code, 4, result.stderr);
      assert.match(result.stderr, new RegExp(`^VDM_LISTEN_IN_USE: controller \\(tcp\\): ${address} is already in use: choose another address with --listen$`, 'm'));
      noStack(result.stderr);
    });
  });

  it('says what vd0 needs, what the devices have, and which flag fixes it, when --device is too small for --size', async () => {
    const cwd = tempDir();
    const small = sparseFile(100 * 2 ** 20);
    const result = await vdmap(['up', '--device', small, '--nbd', '127.0.0.1:0', '--listen', '127.0.0.1:0'], { cwd });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^VDM_CLI_USAGE: disk vd0 needs 1G but the devices have 100M free \(dev0 100M\): start with --size 100M or less, or give a bigger --device$/m);
    assert.ok(existsSync(join(cwd, 'vdmap-data')), 'the data kept so far lets a second `up --size 100M` reuse it');
  });
});

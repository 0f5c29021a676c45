/**
 * One controller per data directory (controller.ts CT3, store/owner-lock.ts), with real `vdmap controller` and
 * `vdmap up` processes: a second one on the same --data exits 4 with VDM_STORE_LOCKED naming the owner and touches
 * nothing (the first one's socket still answers); a SIGKILLed owner's lock is taken over by the next start; two
 * starters racing on such a stale lock end with exactly one owner. Oracles: exit codes, stderr, the CLI's answers
 * through the first controller's socket, the socket's inode.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { cleanupDevices, tempDir } from '../support/devices.js';
import { killAll, startDaemon, vdmap } from '../support/processes.js';

after(() => { killAll(); cleanupDevices(); });

const controllerArgs = ['controller', '--listen', '127.0.0.1:0'];
const ready = /controller listening/;

describe('data directory ownership', () => {
  it('refuses a second controller on the same data directory with exit 4, and the first keeps serving', async () => {
    const cwd = tempDir();
    const first = await startDaemon(controllerArgs, ready, { cwd });
    const socketInode = statSync(join(cwd, 'vdmap-data', 'controller.sock')).ino;
    const second = await vdmap(controllerArgs, { cwd, timeoutMs: 30_000 });
    assert.equal(second.code, 4, second.stderr);
    assert.match(second.stderr, new RegExp(`^VDM_STORE_LOCKED: data directory vdmap-data is in use by process ${first.child.pid} `, 'm'));
    assert.match(second.stderr, /^hint: .*stop that process, or use another --data/m);
    assert.equal(statSync(join(cwd, 'vdmap-data', 'controller.sock')).ino, socketInode, 'the first controller\'s socket was not replaced');
    const listed = await vdmap(['disk', 'ls', '--json'], { cwd });
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(await first.stop(), 0, first.output());
  });

  it('refuses a second `vdmap up` on a data directory a controller owns, with exit 4', async () => {
    const cwd = tempDir();
    const first = await startDaemon(controllerArgs, ready, { cwd });
    const up = await vdmap(['up', '--nbd', '127.0.0.1:0', '--listen', '127.0.0.1:0'], { cwd, timeoutMs: 30_000 });
    assert.equal(up.code, 4, up.stderr);
    assert.match(up.stderr, /^VDM_STORE_LOCKED: /m);
    assert.equal((await vdmap(['device', 'ls', '--json'], { cwd })).stdout.trim(), '[]', 'up registered nothing');
    assert.equal(await first.stop(), 0, first.output());
  });

  it('starts on a data directory whose owner was killed with SIGKILL', async () => {
    const cwd = tempDir();
    const first = await startDaemon(controllerArgs, ready, { cwd });
    assert.notEqual(await first.stop('SIGKILL'), 0);
    const next = await startDaemon(controllerArgs, ready, { cwd });
    const listed = await vdmap(['disk', 'ls', '--json'], { cwd });
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(await next.stop(), 0, next.output());
  });

  it('lets exactly one of two controllers racing on a stale lock take it over', async () => {
    const cwd = tempDir();
    const data = join(cwd, 'vdmap-data');
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(gone.stdout);
    mkdirSync(data, { mode: 0o700 });
    writeFileSync(join(data, 'owner.lock'), JSON.stringify({ pid: deadPid, startTime: null, hostname: hostname(), command: 'gone', since: new Date().toISOString() }));
    const racers = await Promise.allSettled([0, 1].map(() => startDaemon(controllerArgs, ready, { cwd })));
    const winners = racers.filter((r) => r.status === 'fulfilled');
    const losers = racers.filter((r) => r.status === 'rejected');
    assert.equal(winners.length, 1, `expected one owner:\n${losers.map((r) => String(r.reason)).join('\n')}`);
    assert.match(String(losers[0].reason), /exited with 4:[\s\S]*VDM_STORE_LOCKED: data directory vdmap-data is in use by process \d+/);
    assert.equal(await winners[0].value.stop(), 0);
  });
});

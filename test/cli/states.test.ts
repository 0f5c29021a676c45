/**
 * Entry states and drains driven from the CLI on a running `vdmap up`: a NOWRITE range holds a real client's
 * write until it is cleared; a drain blocks the disk on the agent until resume. Oracles: whether qemu-io has
 * finished, the data read back, and the agent's live table header (`vdmap agent inspect`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { converged } from '../controller/fixtures/daemons.js';
import { tempDir, cleanupDevices } from '../support/devices.js';
import { type Daemon, killAll, startDaemon, vdmap } from '../support/processes.js';
import { requireTool, runToolOk, TOOL_PATH } from '../support/tools.js';
import { tcpUri } from './fixtures/banner.js';

describe('entry states from the CLI', () => {
  let cwd: string;
  let up: Daemon;
  let uri: string;

  before(async () => {
    cwd = tempDir();
    up = await startDaemon(['up', '--nbd', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--size', '64M'], /Ctrl-C flushes and stops/, { cwd });
    uri = tcpUri(up.output());
  });

  after(async () => {
    await up.stop();
    killAll();
    cleanupDevices();
  });

  it('holds a client write to a NOWRITE extent until the state is cleared', async () => {
    requireTool('qemu-io');
    const set = await vdmap(['table', 'set-state', 'vd0', '2', '--set', 'NOWRITE', '--json'], { cwd });
    assert.equal(set.code, 0, set.stderr);
    // set-state answers once the epoch is committed and sent, not applied: the client's write must come after.
    await converged(join(cwd, 'vdmap-data', 'controller.sock'), 'vd0', JSON.parse(set.stdout).epoch, ['local']);
    const writer = spawn('qemu-io', ['-f', 'raw', '-c', `write -P 0x77 ${2 * 1024 * 1024} 4096`, uri], { env: { ...process.env, PATH: TOOL_PATH }, stdio: 'ignore' });
    let finished = false;
    const done = new Promise<number>((resolve) => writer.on('close', (code) => { finished = true; resolve(code ?? -1); }));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(finished, false, 'the write must be held while the extent is NOWRITE');
    assert.equal((await vdmap(['table', 'set-state', 'vd0', '2', '--clear', 'NOWRITE'], { cwd })).code, 0);
    assert.equal(await done, 0);
    await runToolOk('qemu-io', ['-f', 'raw', '-c', `read -P 0x77 ${2 * 1024 * 1024} 4096`, uri]);
  });

  it('blocks the disk on the agent during a drain and unblocks it on resume', async () => {
    const drained = await vdmap(['disk', 'drain', 'vd0', '--json'], { cwd });
    assert.equal(drained.code, 0, drained.stdout + drained.stderr);
    const blocked = JSON.parse((await vdmap(['agent', 'inspect', 'local', '--json'], { cwd })).stdout);
    assert.equal(blocked.disks[0].blocking, true);
    assert.equal((await vdmap(['disk', 'resume', 'vd0'], { cwd })).code, 0);
    const resumed = JSON.parse((await vdmap(['agent', 'inspect', 'local', '--json'], { cwd })).stdout);
    assert.equal(resumed.disks[0].blocking, false);
  });

  it('refuses an unknown state with exit 2', async () => {
    assert.equal((await vdmap(['table', 'set-state', 'vd0', '0-3', '--set', 'SHINY'], { cwd })).code, 2);
  });
});


/**
 * `vdmap up`, the one-command single-node system, driven as an operator would: start it in an empty directory,
 * use the disk with clients nobody here wrote, use the CLI with no flags, stop it with Ctrl-C, start it again.
 * Oracles: qemu-img's view of the export, data read back after a restart, CLI output and exit codes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, cleanupDevices } from '../support/devices.js';
import { killAll, startDaemon, vdmap } from '../support/processes.js';
import { requireTool, runToolOk } from '../support/tools.js';
import { tcpUri } from './fixtures/banner.js';
import { RawClient } from '../nbd/fixtures/raw-client.js';
import { until } from '../support/wait.js';

after(() => { killAll(); cleanupDevices(); });

describe('vdmap up', () => {
  it('serves vd0 to qemu-img from an empty directory, answers the CLI without flags, and keeps data across a restart', async () => {
    requireTool('qemu-img');
    requireTool('qemu-io');
    const cwd = tempDir();
    const args = ['up', '--nbd', '127.0.0.1:0', '--listen', '127.0.0.1:0'];
    const up = await startDaemon(args, /Ctrl-C flushes and stops/, { cwd });
    const uri = tcpUri(up.output());
    const info = await runToolOk('qemu-img', ['info', '--output=json', uri]);
    assert.equal(JSON.parse(info)['virtual-size'], 1024 ** 3);
    await runToolOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x3c 1048576 65536', uri]);
    const disks = await vdmap(['disk', 'ls', '--json'], { cwd });
    assert.equal(disks.code, 0, disks.stderr);
    assert.equal(JSON.parse(disks.stdout)[0].name, 'vd0');
    const epoch = await vdmap(['epoch', 'vd0'], { cwd });
    assert.match(epoch.stdout, /local\s+yes\s+\d+\s+0\s+no/);
    assert.equal(await up.stop('SIGINT'), 0, up.output());

    const again = await startDaemon(args, /Ctrl-C flushes and stops/, { cwd });
    await runToolOk('qemu-io', ['-f', 'raw', '-c', 'read -P 0x3c 1048576 65536', tcpUri(again.output())]);
    const listed = await vdmap(['disk', 'ls', '--json'], { cwd });
    assert.equal(JSON.parse(listed.stdout).length, 1, 'starting again reuses the data: still one disk');
    assert.equal(await again.stop('SIGTERM'), 0, again.output());
  });

  it('leaves disks attached or detached as the operator set them when it starts again', async () => {
    const cwd = tempDir();
    const args = ['up', '--nbd', '127.0.0.1:0', '--listen', '127.0.0.1:0'];
    const up = await startDaemon(args, /Ctrl-C flushes and stops/, { cwd });
    const created = await vdmap(['disk', 'create', 'aside', '--size', '64M', '--thin'], { cwd });
    assert.equal(created.code, 0, created.stderr);
    assert.equal(await up.stop('SIGINT'), 0, up.output());

    const again = await startDaemon(args, /Ctrl-C flushes and stops/, { cwd });
    tcpUri(again.output()); // the banner still leads with vd0, not the first name in order
    const listed = await vdmap(['disk', 'ls', '--json'], { cwd });
    const agents = Object.fromEntries((JSON.parse(listed.stdout) as Array<{ name: string; agents: string[] }>).map((d) => [d.name, d.agents]));
    assert.deepEqual(agents, { aside: [], vd0: ['local'] });
    assert.equal(await again.stop('SIGINT'), 0, again.output());
  });

  it('tells the operator what to do when no controller is running (exit 6)', async () => {
    const result = await vdmap(['disk', 'ls'], { cwd: tempDir() });
    assert.equal(result.code, 6, result.stderr);
    assert.match(result.stderr, /^VDM_CLI_UNREACHABLE: nothing is listening at vdmap-data\/controller.sock \(ENOENT\)\nhint: Start the controller/m);
  });

  it('tells the operator to start the agent or give --socket when `agent inspect` finds no agent (exit 6)', async () => {
    const result = await vdmap(['agent', 'inspect', 'local'], { cwd: tempDir() });
    assert.equal(result.code, 6, result.stderr);
    assert.match(result.stderr, /^VDM_CLI_AGENT_UNREACHABLE: nothing is listening at vdmap-data\/agent.sock \(ENOENT\)\nhint: Start the agent .*point --socket at/m);
    assert.doesNotMatch(result.stderr, /--controller/);
  });

  it('says once, when it stops, that it waits up to 5 s for an idle NBD client to disconnect', async () => {
    const cwd = tempDir();
    const up = await startDaemon(['up', '--nbd', '127.0.0.1:0', '--listen', '127.0.0.1:0'], /Ctrl-C flushes and stops/, { cwd });
    const client = await RawClient.connect({ host: '127.0.0.1', port: Number(new URL(tcpUri(up.output())).port) });
    await client.open('vd0');
    const stopped = up.stop('SIGINT');
    const waitLine = 'waiting up to 5 s for 1 NBD client to disconnect';
    await until(() => up.output().includes(waitLine), 'the line saying what shutdown waits for');
    client.destroy();
    assert.equal(await stopped, 0, up.output());
    assert.equal(up.output().split(waitLine).length - 1, 1, 'said once');
  });
});

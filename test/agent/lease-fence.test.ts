/**
 * Proves the lease fence with real processes (controller and two agents, leases of 1.5 s): an agent cut off
 * from its controller past its lease stops completing I/O on a disk attached to more than one agent, keeps
 * serving a disk only it holds, and after it reconnects and resyncs the held write completes; and the
 * controller treats an unreachable agent as gone only once that agent's lease has expired.
 * The cut-off is SIGSTOP of the other process: its sockets stay open but nothing answers.
 * Oracles: qemu-io processes that do or do not finish (and verify the pattern they wrote), the agent's own
 * agent.inspect (blocking flag), its log (VDM_LEASE_EXPIRED), and the controller's epoch.show over time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EpochView } from '../../src/controller/admin-api.js';
import { cleanupDevices, sparseFile, tempDir } from '../support/devices.js';
import { runTool, runToolOk } from '../support/tools.js';
import {
  admin, converged, enroll, startAgentProcess, startControllerProcess, stopAll,
} from '../controller/fixtures/daemons.js';
import { eventually } from '../support/wait.js';

const MiB = 1024 * 1024;
const LEASE_MS = 1500;

describe('lease fence', () => {
  let controller: Awaited<ReturnType<typeof startControllerProcess>>;
  let hostA: Awaited<ReturnType<typeof startAgentProcess>>;
  let hostB: Awaited<ReturnType<typeof startAgentProcess>>;

  before(async () => {
    controller = await startControllerProcess({ dataDir: tempDir('vdmap-controller-'), leaseMs: LEASE_MS });
    const device = sparseFile(32 * MiB);
    await admin(controller.socket, 'device.add', { id: 'dev0', size: 32 * MiB, logicalBlockSize: 512, paths: ['host-a', 'host-b'].map((agent) => ({ agent, path: device })) });
    await admin(controller.socket, 'disk.create', { name: 'shared', size: 4 * MiB, extentSize: MiB });
    await admin(controller.socket, 'disk.create', { name: 'own', size: 4 * MiB, extentSize: MiB });
    const credentials = { a: await enroll(controller.socket, 'host-a'), b: await enroll(controller.socket, 'host-b') };
    for (const [disk, agent] of [['shared', 'host-a'], ['shared', 'host-b'], ['own', 'host-a']]) await admin(controller.socket, 'disk.attach', { disk, agent });
    hostA = await startAgentProcess({ controller: controller.tcp, name: 'host-a', credential: credentials.a });
    hostB = await startAgentProcess({ controller: controller.tcp, name: 'host-b', credential: credentials.b });
    await converged(controller.socket, 'shared', 1, ['host-a', 'host-b']);
    await converged(controller.socket, 'own', 1, ['host-a']);
  });

  after(async () => {
    controller?.signal('SIGCONT');
    hostB?.signal('SIGCONT');
    await stopAll();
    cleanupDevices();
  });

  const uri = (disk: string, socket: string): string => `nbd+unix:///${disk}?socket=${socket}`;

  it('stops completing I/O on a shared disk once the lease lapses, serves its own disk, and completes after resync', async () => {
    controller.signal('SIGSTOP');
    try {
      await hostA.waitForLog({ code: 'VDM_LEASE_EXPIRED', disk: 'shared' }, LEASE_MS * 4);
      const inspect = await admin<{ disks: Array<{ disk: string; blocking: boolean }> }>(hostA.adminSocket, 'agent.inspect');
      assert.deepEqual(inspect.disks.map((disk) => [disk.disk, disk.blocking]).sort(), [['own', false], ['shared', true]]);
      let finished = false;
      const held = runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x6b 8192 4096', uri('shared', hostA.nbdSocket)], 30_000)
        .finally(() => { finished = true; });
      await runToolOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x2d 0 4096', '-c', 'read -P 0x2d 0 4096', uri('own', hostA.nbdSocket)]);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(finished, false, 'the write to the shared disk must not complete while fenced');
      controller.signal('SIGCONT');
      const result = await held;
      assert.equal(result.code, 0, result.stderr);
      await hostA.waitForLog({ msg: 'resynced: the fence is lifted', disk: 'shared' });
      await runToolOk('qemu-io', ['-f', 'raw', '-c', 'read -P 0x6b 8192 4096', uri('shared', hostB.nbdSocket)]);
    } finally {
      controller.signal('SIGCONT');
    }
  });

  it('treats an unreachable agent as gone only once its lease has expired', async () => {
    await converged(controller.socket, 'shared', 1, ['host-a', 'host-b']);
    hostB.signal('SIGSTOP');
    try {
      const stoppedAt = Date.now();
      const stillThere = await admin<EpochView>(controller.socket, 'epoch.show', { disk: 'shared' });
      const entry = stillThere.agents.find((agent) => agent.agent === 'host-b')!;
      assert.equal(entry.connected, true, 'right after the cut the agent still holds its lease');
      const expiresAt = entry.leaseExpiresAt!;
      const gone = await eventually('host-b gone', async () => {
        const view = await admin<EpochView>(controller.socket, 'epoch.show', { disk: 'shared' });
        const b = view.agents.find((agent) => agent.agent === 'host-b')!;
        return b.connected ? undefined : { at: Date.now(), b };
      }, LEASE_MS * 6);
      assert.ok(gone.at >= expiresAt, `declared gone at ${gone.at}, lease ran to ${expiresAt}`);
      assert.ok(gone.at - stoppedAt >= LEASE_MS / 3, 'not before a heartbeat could have been missed');
      assert.equal(gone.b.blocking, true, 'a shared disk on an agent whose lease expired counts as fenced');
      await controller.waitForLog({ code: 'VDM_LEASE_EXPIRED', agent: 'host-b' });
    } finally {
      hostB.signal('SIGCONT');
    }
    await hostB.waitForLog({ code: 'VDM_LEASE_EXPIRED', disk: 'shared' }, LEASE_MS * 4);
    await eventually('host-b back', async () => {
      const view = await admin<EpochView>(controller.socket, 'epoch.show', { disk: 'shared' });
      const b = view.agents.find((agent) => agent.agent === 'host-b')!;
      return b.connected && !b.blocking ? true : undefined;
    });
    await hostB.waitForLog({ msg: 'resynced: the fence is lifted', disk: 'shared' });
  });
});

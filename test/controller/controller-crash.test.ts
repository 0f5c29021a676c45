/**
 * Proves controller.ts CT1 with real processes: the controller is SIGKILLed in the middle of a stream of
 * pushes from an admin client while two agents are attached; restarted on the same data directory and port,
 * it still holds every push it acknowledged, each at the epoch it was acknowledged with and with the table
 * that was pushed, and both agents reconnect on their own and converge on its latest epoch.
 * Oracles: the list of acknowledgements the client received before the kill, table.show of each acknowledged
 * epoch after the restart, epoch.show and each agent's agent.inspect.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TableJson } from '../../src/table/codec.js';
import { cleanupDevices, sparseFile, tempDir } from '../support/devices.js';
import {
  admin, agentEpoch, converged, enroll, openAdmin, startAgentProcess, startControllerProcess, stopAll,
} from './fixtures/daemons.js';

const MiB = 1024 * 1024;
const agents = ['host-a', 'host-b'];

describe('controller killed during a stream of pushes', () => {
  const dataDir = tempDir('vdmap-controller-');
  let controller: Awaited<ReturnType<typeof startControllerProcess>>;
  let port: number;
  const agentProcesses: Array<Awaited<ReturnType<typeof startAgentProcess>>> = [];
  const acknowledged: Array<{ epoch: number; entries: TableJson['entries'] }> = [];

  before(async () => {
    controller = await startControllerProcess({ dataDir, leaseMs: 3000, keepVersions: 10_000 });
    port = Number(controller.tcp.split(':')[1]);
    const device = sparseFile(64 * MiB);
    await admin(controller.socket, 'device.add', { id: 'dev0', size: 64 * MiB, logicalBlockSize: 512, paths: agents.map((agent) => ({ agent, path: device })) });
    await admin(controller.socket, 'disk.create', { name: 'vol', size: 8 * MiB, extentSize: MiB });
    for (const agent of agents) {
      const credential = await enroll(controller.socket, agent);
      await admin(controller.socket, 'disk.attach', { disk: 'vol', agent });
      agentProcesses.push(await startAgentProcess({ controller: controller.tcp, name: agent, credential }));
    }
    await converged(controller.socket, 'vol', 1, agents);
  });

  after(async () => {
    await stopAll();
    cleanupDevices();
  });

  it('loses no acknowledged push across SIGKILL and restart', async () => {
    const header = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' });
    const client = await openAdmin(controller.tcp);
    const stream = (async () => {
      for (let push = 0; ; push++) {
        const entries = [{ extent: 0, count: 8, device: 'dev0', physical: 8 + (push % 48) }];
        const { epoch } = await client.call('table.push', { disk: 'vol', table: { ...header, entries } });
        acknowledged.push({ epoch, entries });
        if (acknowledged.length === 25) controller.signal('SIGKILL'); // the next push is in flight or about to be
      }
    })();
    await assert.rejects(stream, (error: Error & { code?: string }) => error.code === 'VDM_WIRE_CLOSED' || error.code === 'VDM_WIRE_TRUNCATED');
    await controller.exited;
    await client.close().catch(() => undefined);
    assert.ok(acknowledged.length >= 25);

    controller = await startControllerProcess({ dataDir, port, leaseMs: 3000, keepVersions: 10_000 });
    for (const { epoch, entries } of acknowledged) {
      const stored = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol', epoch });
      assert.deepEqual(stored.entries, entries, `epoch ${epoch} as acknowledged`);
    }
    const latest = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' });
    assert.ok(latest.epoch >= acknowledged[acknowledged.length - 1].epoch);
    assert.deepEqual(acknowledged.map((ack) => ack.epoch), acknowledged.map((_, index) => index + 2), 'epochs were consecutive');
  });

  it('lets the agents reconnect and converge on the latest epoch', async () => {
    const latest = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' });
    await converged(controller.socket, 'vol', latest.epoch, agents, 20_000);
    for (const agent of agentProcesses) assert.equal(await agentEpoch(agent.adminSocket, 'vol'), latest.epoch);
    const { epoch } = await admin<{ epoch: number }>(controller.socket, 'table.push', {
      disk: 'vol', table: { ...latest, entries: [{ extent: 0, count: 8, device: 'dev0', physical: 0 }] },
    });
    await converged(controller.socket, 'vol', epoch, agents);
  });
});

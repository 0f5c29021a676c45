/**
 * Proves, with real processes on loopback (one controller, three agents), that a table push reaches every
 * attached agent and they converge: each acknowledges the new epoch (epoch.show) and holds it live in its own
 * shared table (agent.inspect on its admin socket); data written through one agent's NBD export lands where the
 * pushed table says and is read back through another agent after a remap; attaching and detaching a disk
 * starts and stops its service on that agent; both daemons expose their counts on /metrics.
 * Oracles: the agents' own reports, qemu-io's pattern verification, the device file's bytes at the mapped
 * offset, and the Prometheus text.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DiskView, EpochView } from '../../src/controller/admin-api.js';
import type { TableJson } from '../../src/table/codec.js';
import { cleanupDevices, deviceBytes, sparseFile, tempDir } from '../support/devices.js';
import { runToolOk } from '../support/tools.js';
import {
  admin, agentEpoch, converged, enroll, startAgentProcess, startControllerProcess, stopAll,
} from './fixtures/daemons.js';
import { eventually } from '../support/wait.js';

const MiB = 1024 * 1024;
const agents = ['host-a', 'host-b', 'host-c'];

describe('table push to several agents', () => {
  let controller: Awaited<ReturnType<typeof startControllerProcess>>;
  const agentProcesses = new Map<string, Awaited<ReturnType<typeof startAgentProcess>>>();
  let device: string;

  before(async () => {
    controller = await startControllerProcess({ dataDir: tempDir('vdmap-controller-'), leaseMs: 3000, metricsPort: 0 });
    device = sparseFile(64 * MiB);
    await admin(controller.socket, 'device.add', {
      id: 'dev0', size: 64 * MiB, logicalBlockSize: 512, paths: agents.map((agent) => ({ agent, path: device })),
    });
    await admin(controller.socket, 'disk.create', { name: 'vol', size: 8 * MiB, extentSize: MiB, devices: ['dev0'] });
    for (const agent of agents) {
      const credential = await enroll(controller.socket, agent);
      await admin(controller.socket, 'disk.attach', { disk: 'vol', agent });
      agentProcesses.set(agent, await startAgentProcess({ controller: controller.tcp, name: agent, credential, metricsPort: 0 }));
    }
    await converged(controller.socket, 'vol', 1, agents);
  });

  after(async () => {
    await stopAll();
    cleanupDevices();
  });

  it('brings every attached agent to the pushed epoch', async () => {
    const table = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' });
    table.entries = [{ extent: 0, count: 8, device: 'dev0', physical: 40 }];
    const pushed = await admin<{ epoch: number }>(controller.socket, 'table.push', { disk: 'vol', table, expectedEpoch: 1 });
    assert.equal(pushed.epoch, 2);
    const view = await converged(controller.socket, 'vol', 2, agents);
    assert.deepEqual(view.agents.map((agent) => [agent.agent, agent.lag, agent.blocking]), agents.map((agent) => [agent, 0, false]));
    for (const agent of agents) assert.equal(await agentEpoch(agentProcesses.get(agent)!.adminSocket, 'vol'), 2, `${agent}'s live table`);
  });

  it('lands a write through one agent at the mapped offset and reads it back through another after a remap', async () => {
    const a = agentProcesses.get('host-a')!;
    const b = agentProcesses.get('host-b')!;
    const uri = (socket: string): string => `nbd+unix:///vol?socket=${socket}`;
    await runToolOk('qemu-io', ['-f', 'raw', '-c', `write -P 0x3c ${MiB + 8192} 4096`, uri(a.nbdSocket)]);
    const mapped = (await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' })).entries[0].physical!;
    assert.deepEqual(deviceBytes(device, (mapped + 1) * MiB + 8192, 4096), new Uint8Array(4096).fill(0x3c));
    // Swap extents 0 and 1: the bytes written at virtual extent 1 are now read at virtual extent 0.
    const table = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' });
    table.entries = [
      { extent: 0, device: 'dev0', physical: mapped + 1 }, { extent: 1, device: 'dev0', physical: mapped },
      { extent: 2, count: 6, device: 'dev0', physical: mapped + 2 },
    ];
    const { epoch } = await admin<{ epoch: number }>(controller.socket, 'table.push', { disk: 'vol', table });
    await converged(controller.socket, 'vol', epoch, agents);
    await runToolOk('qemu-io', ['-f', 'raw', '-c', `read -P 0x3c 8192 4096`, uri(b.nbdSocket)]);
  });

  it('serves a disk on an agent once it is attached there, and stops when it is detached', async () => {
    await admin(controller.socket, 'disk.create', { name: 'solo', size: 4 * MiB, extentSize: MiB, devices: ['dev0'] });
    await admin(controller.socket, 'disk.attach', { disk: 'solo', agent: 'host-c' });
    const c = agentProcesses.get('host-c')!;
    await eventually('solo served on host-c', async () => ((await agentEpoch(c.adminSocket, 'solo')) === 1 ? true : undefined));
    await runToolOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 4096', `nbd+unix:///solo?socket=${c.nbdSocket}`]);
    const disks = await admin<DiskView[]>(controller.socket, 'disk.list');
    assert.deepEqual(disks.find((disk) => disk.name === 'solo')?.agents, ['host-c']);
    await admin(controller.socket, 'disk.detach', { disk: 'solo', agent: 'host-c' });
    await eventually('solo dropped by host-c', async () => ((await agentEpoch(c.adminSocket, 'solo')) === undefined ? true : undefined));
    const view = await admin<EpochView>(controller.socket, 'epoch.show', { disk: 'solo' });
    assert.deepEqual(view.agents, []);
  });

  it('exposes epochs, pushes and I/O counts on both daemons\' /metrics', async () => {
    const controllerMetrics = await scrape(controller.addresses.metrics as { port: number });
    assert.match(controllerMetrics, /vdmap_controller_epoch\{disk="vol"\} [3-9]/);
    assert.match(controllerMetrics, /vdmap_controller_pushes_total\{source="admin",result="committed"\} [2-9]/);
    assert.match(controllerMetrics, /vdmap_controller_agent_applied_epoch\{agent="host-b",disk="vol"\} [3-9]/);
    assert.match(controllerMetrics, /vdmap_controller_push_applied_seconds_count [1-9]/);
    const a = agentProcesses.get('host-a')!;
    const agentMetrics = await eventually('host-a to publish its write', async () => {
      const text = await scrape(a.addresses.metrics as { port: number });
      return /vdmap_agent_io_requests_total\{disk="vol",operation="write"\} [1-9]/.test(text) ? text : undefined;
    }, 5000, 250);
    assert.match(agentMetrics, /vdmap_agent_io_seconds_bucket\{disk="vol",operation="write",le="\+Inf"\} [1-9]/);
    assert.match(agentMetrics, /vdmap_agent_epoch\{disk="vol"\} [3-9]/);
    assert.match(agentMetrics, /vdmap_agent_applies_total\{kind="(full|delta)",result="ok"\} [1-9]/);
  });
});

async function scrape(address: { port: number }): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${address.port}/metrics`);
  assert.equal(response.status, 200);
  return response.text();
}

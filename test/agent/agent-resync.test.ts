/**
 * Proves that an agent killed (SIGKILL) and restarted resyncs its full table: pushes committed while it was
 * down are all in the table it serves after the restart, at the controller's latest epoch, and its NBD export
 * reads through that table. Real controller and agent processes; the disk's device is a sparse file.
 * Oracles: the agent's own agent.inspect (live epoch), epoch.show, bytes planted in the device file at the
 * physical extent only the newest table names, read back with qemu-io's pattern check.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import type { TableJson } from '../../src/table/codec.js';
import { cleanupDevices, sparseFile, tempDir } from '../support/devices.js';
import { runToolOk } from '../support/tools.js';
import {
  admin, agentEpoch, converged, enroll, startAgentProcess, startControllerProcess, stopAll,
} from '../controller/fixtures/daemons.js';

const MiB = 1024 * 1024;

describe('agent restart', () => {
  let controller: Awaited<ReturnType<typeof startControllerProcess>>;
  let agent: Awaited<ReturnType<typeof startAgentProcess>>;
  let credential: string;
  let device: string;

  before(async () => {
    controller = await startControllerProcess({ dataDir: tempDir('vdmap-controller-'), leaseMs: 3000 });
    device = sparseFile(32 * MiB);
    await admin(controller.socket, 'device.add', { id: 'dev0', size: 32 * MiB, logicalBlockSize: 512, paths: [{ agent: 'host-a', path: device }] });
    await admin(controller.socket, 'disk.create', { name: 'vol', size: 8 * MiB, extentSize: MiB });
    credential = await enroll(controller.socket, 'host-a');
    await admin(controller.socket, 'disk.attach', { disk: 'vol', agent: 'host-a' });
    agent = await startAgentProcess({ controller: controller.tcp, name: 'host-a', credential });
    await converged(controller.socket, 'vol', 1, ['host-a']);
  });

  after(async () => {
    await stopAll();
    cleanupDevices();
  });

  it('serves the latest full table after a SIGKILL and restart, including pushes made while it was down', async () => {
    await agent.kill();
    const header = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' });
    let epoch = header.epoch;
    for (const physical of [10, 12, 20]) {
      ({ epoch } = await admin<{ epoch: number }>(controller.socket, 'table.push', {
        disk: 'vol', table: { ...header, entries: [{ extent: 0, count: 8, device: 'dev0', physical }] },
      }));
    }
    plant(device, 20 * MiB + 4096, 4096, 0x7e); // where virtual offset 4096 lives only in the newest table
    agent = await startAgentProcess({ controller: controller.tcp, name: 'host-a', credential, dataDir: agent.dataDir });
    const view = await converged(controller.socket, 'vol', epoch, ['host-a']);
    assert.equal(view.agents[0].lag, 0);
    assert.equal(await agentEpoch(agent.adminSocket, 'vol'), epoch);
    await runToolOk('qemu-io', ['-f', 'raw', '-c', 'read -P 0x7e 4096 4096', `nbd+unix:///vol?socket=${agent.nbdSocket}`]);
    assert.ok(agent.logsMatching({ msg: 'serving the disk', disk: 'vol' }).length === 1);
  });
});

function plant(path: string, offset: number, length: number, byte: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, new Uint8Array(length).fill(byte), 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

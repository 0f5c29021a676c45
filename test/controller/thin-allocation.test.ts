/**
 * Proves the 'unallocated' fault path end to end (fault-handler.ts FH1, FH2) with real processes: a write to
 * a thin disk through the agent's NBD export is held, faulted to the controller, which allocates a free extent
 * on the disk's device (never one another disk maps), commits and pushes it; the write then completes where
 * the new table says. Unwritten extents stay unallocated and read as zeroes; a write over several fresh
 * extents allocates each once; when no extent is free the fault is logged with VDM_DISK_NO_SPACE and the
 * write fails instead of hanging.
 * Oracles: qemu-io's pattern verification, table.show before and after, the device file's bytes at the
 * allocated offset, and the controller's log lines.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EntryJson, TableJson } from '../../src/table/codec.js';
import { cleanupDevices, deviceBytes, sparseFile, tempDir } from '../support/devices.js';
import { runTool, runToolOk } from '../support/tools.js';
import { admin, converged, enroll, startAgentProcess, startControllerProcess, stopAll } from './fixtures/daemons.js';

const MiB = 1024 * 1024;

/** The entry covering `extent` in a table's runs, with that extent's own physical extent. */
function entryAt(table: TableJson, extent: number): EntryJson & { physicalOfExtent?: number } {
  const entry = table.entries.find((candidate) => candidate.extent <= extent && extent < candidate.extent + (candidate.count ?? 1))!;
  return { ...entry, physicalOfExtent: entry.device === undefined ? undefined : entry.physical! + (extent - entry.extent) };
}

describe('thin provisioning through the agent data path', () => {
  let controller: Awaited<ReturnType<typeof startControllerProcess>>;
  let agent: Awaited<ReturnType<typeof startAgentProcess>>;
  let device: string;
  const uri = (disk: string): string => `nbd+unix:///${disk}?socket=${agent.nbdSocket}`;

  before(async () => {
    controller = await startControllerProcess({ dataDir: tempDir('vdmap-controller-') });
    device = sparseFile(16 * MiB);
    const small = sparseFile(2 * MiB);
    await admin(controller.socket, 'device.add', { id: 'dev0', size: 16 * MiB, logicalBlockSize: 512, paths: [{ agent: 'host-a', path: device }] });
    await admin(controller.socket, 'device.add', { id: 'tiny', size: 2 * MiB, logicalBlockSize: 512, paths: [{ agent: 'host-a', path: small }] });
    await admin(controller.socket, 'disk.create', { name: 'fat', size: 8 * MiB, extentSize: MiB, devices: ['dev0'] });
    await admin(controller.socket, 'disk.create', { name: 'thin', size: 64 * MiB, extentSize: MiB, thin: true, devices: ['dev0'] });
    await admin(controller.socket, 'disk.create', { name: 'cramped', size: 8 * MiB, extentSize: MiB, thin: true, devices: ['tiny'] });
    const credential = await enroll(controller.socket, 'host-a');
    for (const disk of ['thin', 'cramped']) await admin(controller.socket, 'disk.attach', { disk, agent: 'host-a' });
    agent = await startAgentProcess({ controller: controller.socket, name: 'host-a', credential, holdTimeoutMs: 3000 });
    await converged(controller.socket, 'thin', 1, ['host-a']);
    await converged(controller.socket, 'cramped', 1, ['host-a']);
  });

  after(async () => {
    await stopAll();
    cleanupDevices();
  });

  it('starts with every extent unallocated and reading as zeroes', async () => {
    const table = await admin<TableJson>(controller.socket, 'table.show', { disk: 'thin' });
    assert.deepEqual(table.entries, [{ extent: 0, count: 64, state: ['ZERO'] }]);
    await runToolOk('qemu-io', ['-f', 'raw', '-c', 'read -P 0 0 65536', uri('thin')]);
  });

  it('completes a write to an unallocated extent once the controller allocated it', async () => {
    await runToolOk('qemu-io', ['-f', 'raw', '-c', `write -P 0x4d ${5 * MiB + 4096} 8192`, '-c', `read -P 0x4d ${5 * MiB + 4096} 8192`, uri('thin')]);
    const table = await admin<TableJson>(controller.socket, 'table.show', { disk: 'thin' });
    assert.equal(table.epoch, 2, 'one allocation, one commit');
    const entry = entryAt(table, 5);
    assert.equal(entry.device, 'dev0');
    assert.equal(entry.state, undefined, 'VALID');
    assert.ok(entry.physicalOfExtent! >= 8, `physical extent ${entry.physicalOfExtent} is not one of disk 'fat' (0-7)`);
    assert.deepEqual(entryAt(table, 4).state, ['ZERO']);
    assert.deepEqual(deviceBytes(device, entry.physicalOfExtent! * MiB + 4096, 8192), new Uint8Array(8192).fill(0x4d));
    await controller.waitForLog({ code: 'VDM_STATE_UNALLOCATED_HELD', disk: 'thin', extent: 5 });
  });

  it('allocates each fresh extent of a write that spans several of them, each to its own physical extent', async () => {
    await runToolOk('qemu-io', ['-f', 'raw', '-c', `write -P 0x5e ${20 * MiB} ${3 * MiB}`, '-c', `read -P 0x5e ${20 * MiB} ${3 * MiB}`, uri('thin')]);
    const table = await admin<TableJson>(controller.socket, 'table.show', { disk: 'thin' });
    const physicals = [5, 20, 21, 22].map((extent) => entryAt(table, extent).physicalOfExtent);
    assert.ok(physicals.every((physical) => physical !== undefined && physical >= 8 && physical < 16), physicals.join(','));
    assert.equal(new Set(physicals).size, 4);
  });

  it('fails the write and logs VDM_DISK_NO_SPACE when the devices are full', async () => {
    await runToolOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x01 0 4096', '-c', `write -P 0x02 ${MiB} 4096`, uri('cramped')]);
    const result = await runTool('qemu-io', ['-f', 'raw', '-c', `write -P 0x03 ${2 * MiB} 4096`, uri('cramped')]);
    assert.match(result.stdout + result.stderr, /error|failed/i);
    await controller.waitForLog({ code: 'VDM_DISK_NO_SPACE', disk: 'cramped' });
    const table = await admin<TableJson>(controller.socket, 'table.show', { disk: 'cramped' });
    assert.deepEqual(entryAt(table, 2).state, ['ZERO'], 'nothing was half-allocated');
  });
});


/**
 * Proves that an invalid push is refused whole and changes nothing (table-commit.ts TC1, admin-handlers.ts
 * AH2), with a real controller process and a real agent: overlapping, out-of-bounds, unregistered-device,
 * malformed, wrong-disk, stale and cross-disk-overlapping tables each get VDM_TABLE_INVALID (or
 * VDM_TABLE_EPOCH_STALE) whose details.problems name every bad entry and why; afterwards the stored table,
 * its epoch and the agent's live epoch are exactly what they were.
 * Oracles: the error records the admin client receives, table.show before and after, the agent's own
 * agent.inspect.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VdmapError } from '../../src/errors/error.js';
import type { EntryJson, TableJson } from '../../src/table/codec.js';
import { cleanupDevices, sparseFile, tempDir } from '../support/devices.js';
import {
  admin, agentEpoch, converged, enroll, startAgentProcess, startControllerProcess, stopAll,
} from './fixtures/daemons.js';

const MiB = 1024 * 1024;

interface Problem { extent: number | null; code: string; message: string }

describe('invalid table pushes', () => {
  let controller: Awaited<ReturnType<typeof startControllerProcess>>;
  let agent: Awaited<ReturnType<typeof startAgentProcess>>;
  let original: TableJson;

  before(async () => {
    controller = await startControllerProcess({ dataDir: tempDir('vdmap-controller-') });
    const device = sparseFile(32 * MiB); // vol maps extents 0-7, other 8-11
    await admin(controller.socket, 'device.add', { id: 'dev0', size: 32 * MiB, logicalBlockSize: 512, paths: [{ agent: 'host-a', path: device }] });
    await admin(controller.socket, 'disk.create', { name: 'vol', size: 8 * MiB, extentSize: MiB });
    await admin(controller.socket, 'disk.create', { name: 'other', size: 4 * MiB, extentSize: MiB });
    const credential = await enroll(controller.socket, 'host-a');
    await admin(controller.socket, 'disk.attach', { disk: 'vol', agent: 'host-a' });
    agent = await startAgentProcess({ controller: controller.socket, name: 'host-a', credential });
    await converged(controller.socket, 'vol', 1, ['host-a']);
    original = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' });
  });

  after(async () => {
    await stopAll();
    cleanupDevices();
  });

  /** Pushes `entries` (over vol's current header) and returns the refusal. */
  async function refusal(change: Partial<TableJson>, params: Record<string, unknown> = {}): Promise<VdmapError> {
    try {
      await admin(controller.socket, 'table.push', { disk: 'vol', table: { ...original, ...change }, ...params });
    } catch (error) {
      assert.ok(error instanceof VdmapError, String(error));
      return error;
    }
    return assert.fail('the push was accepted');
  }

  async function assertUnchanged(): Promise<void> {
    assert.deepEqual(await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' }), original);
    assert.equal(await agentEpoch(agent.adminSocket, 'vol'), original.epoch);
  }

  function problems(error: VdmapError): Problem[] {
    return (error.details?.problems ?? []) as Problem[];
  }

  const valid = (extent: number, physical: number, extra: Partial<EntryJson> = {}): EntryJson => ({ extent, device: 'dev0', physical, ...extra });

  it('refuses two extents mapping one physical extent, naming both, when they are not NOWRITE', async () => {
    const error = await refusal({ entries: [valid(0, 12), valid(1, 12), { extent: 2, count: 6, device: 'dev0', physical: 13 }] });
    assert.equal(error.code, 'VDM_TABLE_INVALID');
    assert.deepEqual(problems(error).map((problem) => [problem.extent, problem.code]), [[0, 'VDM_TABLE_OVERLAP'], [1, 'VDM_TABLE_OVERLAP']]);
    await assertUnchanged();
  });

  it('names every bad entry of a table with several problems at once', async () => {
    const error = await refusal({
      entries: [valid(0, 31), valid(1, 32), valid(2, 40), { extent: 3, state: [] }, { extent: 4, count: 4, device: 'dev0', physical: 4 }],
    });
    assert.equal(error.code, 'VDM_TABLE_INVALID');
    assert.deepEqual(problems(error).map((problem) => [problem.extent, problem.code]),
      [[1, 'VDM_TABLE_OUT_OF_BOUNDS'], [2, 'VDM_TABLE_OUT_OF_BOUNDS'], [3, 'VDM_TABLE_INVALID']]);
    assert.equal(error.details?.problemCount, 3);
    assert.match(problems(error)[0].message, /past the end of device 'dev0'/);
    await assertUnchanged();
  });

  it('refuses a table naming an unregistered device', async () => {
    const error = await refusal({ devices: ['dev0', 'ghost'], entries: [valid(0, 12), { extent: 1, count: 7, device: 'ghost', physical: 0 }] });
    assert.ok(problems(error).some((problem) => problem.extent === null && problem.code === 'VDM_TABLE_UNKNOWN_DEVICE'));
    assert.deepEqual(problems(error).filter((problem) => problem.extent !== null).map((problem) => problem.extent), [1, 2, 3, 4, 5, 6, 7]);
    await assertUnchanged();
  });

  it('refuses malformed entries before anything is staged', async () => {
    const error = await refusal({ entries: [{ extent: 0, count: 4, device: 'dev0' }, { extent: 5, count: 3, device: 'nowhere' } as EntryJson] });
    assert.equal(error.code, 'VDM_TABLE_INVALID');
    assert.ok(problems(error).some((problem) => /starts at extent 5, expected 4/.test(problem.message)));
    assert.ok(problems(error).some((problem) => /device "nowhere" is not in the devices list/.test(problem.message)));
    await assertUnchanged();
  });

  it('refuses a table for another disk', async () => {
    const error = await refusal({ disk: 'other' });
    assert.ok(problems(error).some((problem) => /names disk 'other', not 'vol'/.test(problem.message)));
    await assertUnchanged();
  });

  it('refuses a change built on an older epoch with VDM_TABLE_EPOCH_STALE', async () => {
    const error = await refusal({ entries: [{ extent: 0, count: 8, device: 'dev0', physical: 12 }] }, { expectedEpoch: 0 });
    assert.equal(error.code, 'VDM_TABLE_EPOCH_STALE');
    await assertUnchanged();
  });

  it('refuses a table that maps extents another disk already maps', async () => {
    const other = await admin<TableJson>(controller.socket, 'table.show', { disk: 'other' });
    const taken = other.entries[0].physical!;
    const error = await refusal({ entries: [{ extent: 0, count: 2, device: 'dev0', physical: taken }, { extent: 2, count: 6, device: 'dev0', physical: 12 }] });
    assert.deepEqual(problems(error).map((problem) => [problem.extent, problem.code]), [[0, 'VDM_TABLE_OVERLAP'], [1, 'VDM_TABLE_OVERLAP']]);
    await assertUnchanged();
  });

  it('names the disk and the epoch it stays at, not the epoch the table states, when refusing a push', async () => {
    const error = await refusal({ epoch: original.epoch + 40, entries: [valid(0, 12), valid(1, 12), { extent: 2, count: 6, device: 'dev0', physical: 13 }] });
    assert.match(error.message, new RegExp(`^table for disk 'vol' refused, nothing changed \\(the disk stays at epoch ${original.epoch}\\): 2 problem`));
    assert.doesNotMatch(error.message, new RegExp(`epoch ${original.epoch + 40}`));
    assert.equal(error.details?.currentEpoch, original.epoch);
    await assertUnchanged();
  });

  it('names the epoch the disk stays at when refusing a malformed table too', async () => {
    const error = await refusal({ entries: [{ extent: 0, count: 8, device: 3 } as unknown as EntryJson] });
    assert.match(error.message, new RegExp(`the disk stays at epoch ${original.epoch}\\): 1 problem.*device 3 is not in the devices list`));
    await assertUnchanged();
  });

  it('refuses table values of any malformed shape with VDM_TABLE_INVALID or VDM_ADMIN_INVALID_PARAMS, and keeps serving', async () => {
    const shapes: unknown[] = [{}, { ...original, entries: 'all' }, { ...original, devices: [1] }, { ...original, extentCount: -1 },
      { ...original, entries: [null, [], 7, { extent: 'x', count: {} }] }, { ...original, entries: Array.from({ length: 20000 }, () => ({})) }];
    for (const table of shapes) {
      const error = await admin(controller.socket, 'table.push', { disk: 'vol', table }).then(() => assert.fail('accepted'), (e: unknown) => e);
      assert.ok(error instanceof VdmapError && error.code === 'VDM_TABLE_INVALID', String(error));
    }
    for (const table of [null, [], 42, 'table']) {
      const error = await admin(controller.socket, 'table.push', { disk: 'vol', table }).then(() => assert.fail('accepted'), (e: unknown) => e);
      assert.ok(error instanceof VdmapError && error.code === 'VDM_ADMIN_INVALID_PARAMS', String(error));
    }
    await assertUnchanged();
  });

  it('still accepts a valid push afterwards', async () => {
    const { epoch } = await admin<{ epoch: number }>(controller.socket, 'table.push', {
      disk: 'vol', table: { ...original, entries: [{ extent: 0, count: 8, device: 'dev0', physical: 12 }] }, expectedEpoch: original.epoch,
    });
    assert.equal(epoch, original.epoch + 1);
    await converged(controller.socket, 'vol', epoch, ['host-a']);
  });
});

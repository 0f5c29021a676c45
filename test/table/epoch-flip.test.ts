/**
 * The epoch flip (src/table/epoch-flip.ts), single-threaded behaviours: stage -> commit, delta levelling,
 * drain waits and timeouts, block/unblock. Oracle: a plain JS model of the table, and the header words.
 * The multi-threaded torn-read hunt is test/race/flip-stress.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExtentState, NoDevice, emptyDocument } from '../../src/table/document.js';
import { Blocked, TableReader, TableWriter } from '../../src/table/epoch-flip.js';
import { stageDelta, stageDocument } from '../../src/table/apply.js';
import { createTableBuffer, entryDevice, entryPhysicalExtent, entryState, entryWord, Header, type TableViews, type CopyIndex } from '../../src/table/layout.js';
import { VdmapError } from '../../src/errors/error.js';

function geometry(epoch: number, extentCount = 64) {
  return { epoch, extentSizeLog2: 20, extentCount, deviceFds: [100, 101] };
}

function physicalOf(views: TableViews, copy: CopyIndex, extent: number): number {
  return entryPhysicalExtent(views, entryWord(views, copy, extent));
}

function deltaOf(fromEpoch: number, changes: Array<[number, number, number, number]>) {
  return {
    disk: 'vd0', fromEpoch, toEpoch: fromEpoch + 1, devices: ['a', 'b'],
    extent: Uint32Array.from(changes.map((c) => c[0])),
    device: Int32Array.from(changes.map((c) => c[1])),
    physicalExtent: Uint32Array.from(changes.map((c) => c[2])),
    state: Uint8Array.from(changes.map((c) => c[3])),
  };
}

describe('epoch flip', () => {
  it('publishes a staged version and its epoch in one generation step', async () => {
    const views = createTableBuffer(64, 2);
    const writer = new TableWriter(views);
    const stage = writer.stage(geometry(7));
    stage.set(3, 1, 33, ExtentState.Valid);
    await writer.commit(stage);
    const reader = new TableReader(views, 0);
    const copy = reader.enter();
    assert.notEqual(copy, Blocked);
    assert.equal(reader.epochOf(copy as CopyIndex), 7);
    assert.equal(physicalOf(views, copy as CopyIndex, 3), 33);
    reader.exit();
    assert.equal(Atomics.load(views.header, Header.Generation), 1);
  });

  it('leaves readers on the old version until commit', () => {
    const views = createTableBuffer(64, 2);
    const writer = new TableWriter(views);
    const stage = writer.stage(geometry(1));
    stage.set(0, 0, 99, 0);
    const reader = new TableReader(views, 0);
    const copy = reader.enter() as CopyIndex;
    assert.equal(physicalOf(views, copy, 0), 0);
    assert.equal(reader.epochOf(copy), 0);
    reader.exit();
  });

  it('levels the inactive copy so successive deltas accumulate exactly (model check over 200 flips)', async () => {
    const extents = 512;
    const views = createTableBuffer(extents, 1);
    const writer = new TableWriter(views);
    const model = new Array<number>(extents).fill(0);
    let random = 12345;
    const next = () => (random = (random * 1103515245 + 12345) >>> 0) % extents;
    await writer.commit(stageDocument(writer, { ...emptyDocument('vd0', 1, 1 << 20, extents), devices: ['a', 'b'] }, [10, 11]));
    model.fill(0);
    for (let epoch = 1; epoch <= 200; epoch++) {
      const changes: Array<[number, number, number, number]> = [];
      for (let k = 0; k < 1 + (epoch % 7); k++) {
        const extent = next();
        changes.push([extent, 0, epoch * 1000 + k, 0]);
      }
      for (const [extent, , physical] of changes) model[extent] = physical;
      await writer.commit(stageDelta(writer, deltaOf(epoch, changes), [10, 11]));
      const active = writer.activeCopy;
      for (let extent = 0; extent < extents; extent++) assert.equal(physicalOf(views, active, extent), model[extent], `extent ${extent} at epoch ${epoch + 1}`);
    }
  });

  it('applies a full document then deltas on top of it', async () => {
    const views = createTableBuffer(8, 1);
    const writer = new TableWriter(views);
    const doc = emptyDocument('vd0', 5, 1 << 20, 8);
    doc.devices = ['a'];
    for (let i = 0; i < 8; i++) { doc.device[i] = 0; doc.physicalExtent[i] = 10 + i; doc.state[i] = 0; }
    await writer.commit(stageDocument(writer, doc, [3]));
    await writer.commit(stageDelta(writer, deltaOf(5, [[2, NoDevice, 0, ExtentState.Invalid]]), [3, 4]));
    const word = entryWord(views, writer.activeCopy, 2);
    assert.equal(entryState(views, word), ExtentState.Invalid);
    assert.equal(entryDevice(views, word), NoDevice);
    assert.equal(physicalOf(views, writer.activeCopy, 7), 17);
    assert.equal(writer.epoch, 6);
  });

  it('refuses a delta that does not follow the active epoch and stages nothing', async () => {
    const views = createTableBuffer(8, 1);
    const writer = new TableWriter(views);
    await writer.commit(writer.stage(geometry(3, 8)));
    assert.throws(() => stageDelta(writer, deltaOf(5, [[1, 0, 1, 0]]), [1, 2]), (e: unknown) => e instanceof VdmapError && e.code === 'VDM_TABLE_EPOCH_STALE');
    assert.equal(writer.epoch, 3);
  });

  it('refuses a delta naming an extent past the table or an unknown device slot', async () => {
    const views = createTableBuffer(8, 1);
    const writer = new TableWriter(views);
    await writer.commit(writer.stage(geometry(0, 8)));
    assert.throws(() => stageDelta(writer, deltaOf(0, [[8, 0, 1, 0]]), [1, 2]), /past the table/);
    assert.throws(() => stageDelta(writer, deltaOf(0, [[1, 2, 1, 0]]), [1, 2]), /device slot 2/);
    assert.throws(() => stageDelta(writer, deltaOf(0, [[1, 0, 1, 0x80]]), [1, 2]), /unknown state bits/);
  });

  it('waits for in-flight I/O to drain before flipping', async () => {
    const views = createTableBuffer(8, 2);
    const writer = new TableWriter(views);
    const reader = new TableReader(views, 1);
    assert.equal(reader.enter(), 0);
    let flipped = false;
    const commit = writer.commit(writer.stage(geometry(1, 8))).then(() => { flipped = true; });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(flipped, false, 'flip must wait for the in-flight request');
    assert.equal(reader.enter(), Blocked, 'new I/O must wait while the flip drains');
    reader.exit();
    await commit;
    assert.equal(flipped, true);
    assert.equal(Atomics.load(views.header, Header.Blocking), 0);
  });

  it('gives up after the drain timeout, lowers the flag and keeps the old version', async () => {
    const views = createTableBuffer(8, 1);
    const writer = new TableWriter(views);
    const reader = new TableReader(views, 0);
    reader.enter();
    const stage = writer.stage(geometry(9, 8));
    stage.set(0, 0, 77, 0);
    await assert.rejects(writer.commit(stage, { drainTimeoutMs: 30 }), (e: unknown) => e instanceof VdmapError && e.code === 'VDM_TABLE_DRAIN_TIMEOUT');
    assert.equal(Atomics.load(views.header, Header.Blocking), 0);
    assert.equal(Atomics.load(views.header, Header.DrainTimeouts), 1);
    assert.equal(writer.epoch, 0);
    assert.equal(physicalOf(views, writer.activeCopy, 0), 0);
    reader.exit();
  });

  it('levels a copy left staged by a failed flip before the next change', async () => {
    const views = createTableBuffer(8, 1);
    const writer = new TableWriter(views);
    const reader = new TableReader(views, 0);
    reader.enter();
    const failed = writer.stage(geometry(1, 8));
    failed.set(4, 0, 444, 0);
    await assert.rejects(writer.commit(failed, { drainTimeoutMs: 10 }));
    reader.exit();
    const stage = writer.stage(geometry(1, 8));
    stage.set(5, 0, 555, 0);
    await writer.commit(stage);
    assert.equal(physicalOf(views, writer.activeCopy, 4), 0, 'the failed change must not leak into the next version');
    assert.equal(physicalOf(views, writer.activeCopy, 5), 555);
  });

  it('blocks new I/O on a drain request until unblock, and commits may happen while blocked', async () => {
    const views = createTableBuffer(8, 1);
    const writer = new TableWriter(views);
    const reader = new TableReader(views, 0);
    await writer.block(100);
    assert.equal(reader.enter(), Blocked);
    await writer.commit(writer.stage(geometry(1, 8)));
    assert.equal(reader.enter(), Blocked, 'a commit during a drain request keeps the table blocked');
    let released = false;
    const waiting = reader.whenUnblocked().then(() => { released = true; });
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(released, false);
    writer.unblock();
    await waiting;
    assert.equal(reader.enter(), 1);
    reader.exit();
  });

  it('wakes a reader waiting for the next generation when a flip lands', async () => {
    const views = createTableBuffer(8, 1);
    const writer = new TableWriter(views);
    const reader = new TableReader(views, 0);
    const waiting = reader.whenGenerationPasses(0, 5000);
    await writer.commit(writer.stage(geometry(1, 8)));
    assert.equal(await waiting, true);
    assert.equal(await reader.whenGenerationPasses(1, 10), false);
  });
});

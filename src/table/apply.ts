/**
 * Applying documents and deltas to a shared table: turns the controller's TableDocument / TableDelta
 * (document.ts) into a staged version of the agent's table (epoch-flip.ts).
 *
 * Owns: the translation from device slots of a document to the fds of the agent's open devices. Does not
 * validate device bounds or overlaps (the controller did, src/table/validate.ts) but refuses anything that
 * would make the shared table inconsistent: wrong disk, wrong epoch sequence, unknown slots, bad sizes.
 *
 * Invariants:
 *   A1. stageDelta costs O(delta entries) (plus the writer's O(last change) levelling), never O(table).
 *   A2. Nothing is staged unless the whole document or delta was checked first: a bad one leaves the
 *       writer's inactive copy untouched (I1 of epoch-flip.ts keeps readers away from it regardless).
 * Thread: the table's writer thread. Errors: VDM_TABLE_INVALID, VDM_TABLE_EPOCH_STALE, VDM_TABLE_TOO_LARGE.
 */
import { VdmapError } from '../errors/error.js';
import { KnownStateBits, NoDevice, type TableDelta, type TableDocument } from './document.js';
import { type StagedTable, type TableWriter } from './epoch-flip.js';
import { copyExtentCount, copyExtentSizeLog2 } from './layout.js';

/** Stages a whole document (a full replacement); deviceFds[i] is the fd of doc.devices[i]. */
export function stageDocument(writer: TableWriter, doc: TableDocument, deviceFds: readonly number[]): StagedTable {
  const extentSizeLog2 = Math.log2(doc.extentSize);
  if (!Number.isInteger(extentSizeLog2)) throw new VdmapError('VDM_TABLE_INVALID', `extent size ${doc.extentSize} is not a power of two`);
  checkColumns(doc.extentCount, doc, doc.devices.length, deviceFds.length);
  const geometry = { epoch: doc.epoch, extentSizeLog2, extentCount: doc.extentCount, deviceFds };
  return writer.stageFull(geometry, (stage) => {
    for (let extent = 0; extent < doc.extentCount; extent++) {
      stage.set(extent, doc.device[extent], doc.physicalExtent[extent], doc.state[extent]);
    }
  });
}

/** Stages a delta on top of the writer's active version; it must go from the active epoch to the next. */
export function stageDelta(writer: TableWriter, delta: TableDelta, deviceFds: readonly number[]): StagedTable {
  const activeEpoch = writer.epoch;
  if (delta.fromEpoch !== activeEpoch || delta.toEpoch !== activeEpoch + 1) {
    throw new VdmapError('VDM_TABLE_EPOCH_STALE',
      `delta ${delta.fromEpoch}->${delta.toEpoch} does not follow the active epoch ${activeEpoch}`, { activeEpoch, fromEpoch: delta.fromEpoch });
  }
  const active = writer.activeCopy;
  const extentCount = copyExtentCount(writer.views, active);
  const count = delta.extent.length;
  checkColumns(count, delta, delta.devices.length, deviceFds.length);
  for (let i = 0; i < count; i++) {
    if (delta.extent[i] >= extentCount) throw new VdmapError('VDM_TABLE_INVALID', `delta entry ${i} names extent ${delta.extent[i]}, past the table's ${extentCount} extents`);
  }
  const stage = writer.stage({ epoch: delta.toEpoch, extentSizeLog2: copyExtentSizeLog2(writer.views, active), extentCount, deviceFds });
  for (let i = 0; i < count; i++) stage.set(delta.extent[i], delta.device[i], delta.physicalExtent[i], delta.state[i]);
  return stage;
}

interface Columns { device: Int32Array; physicalExtent: Uint32Array; state: Uint8Array }

function checkColumns(count: number, columns: Columns, deviceCount: number, fdCount: number): void {
  if (deviceCount !== fdCount) throw new VdmapError('VDM_TABLE_INVALID', `${deviceCount} devices listed but ${fdCount} opened`);
  if (columns.device.length !== count || columns.physicalExtent.length !== count || columns.state.length !== count) {
    throw new VdmapError('VDM_TABLE_INVALID', `columns do not all have ${count} entries`);
  }
  for (let i = 0; i < count; i++) {
    const device = columns.device[i];
    if (device !== NoDevice && (device < 0 || device >= deviceCount)) {
      throw new VdmapError('VDM_TABLE_INVALID', `entry ${i} names device slot ${device}, but the table has ${deviceCount} devices`);
    }
    if ((columns.state[i] & ~KnownStateBits) !== 0) throw new VdmapError('VDM_TABLE_INVALID', `entry ${i} has unknown state bits ${columns.state[i]}`);
  }
}

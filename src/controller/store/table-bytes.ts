/**
 * The stored form of one table version: a CBOR map with the header and binary columns, either the runs of
 * src/table/codec.ts (a thin or contiguous table is a few dozen bytes) or, when runs would be larger, the
 * plain columns (9 bytes per extent).
 *
 *   { format: 1, layout: 'runs' | 'columns', disk, epoch, extentSize, extentCount, devices,
 *     runs:    count: Uint32Array, device: Int32Array, physicalExtent: Uint32Array, state: Uint8Array (per run)
 *     columns: device: Int32Array, physicalExtent: Uint32Array, state: Uint8Array (per extent) }
 *
 * Owns: this byte format. Knows nothing about keys or which backend holds the bytes (both LMDB and a future
 * etcd store can use it).
 *
 * Invariants:
 *   TB1. decodeTableBytes(encodeTableBytes(d)) equals d column for column.
 *   TB2. Decoding checks every length; bytes that do not describe a table are VDM_STORE_CORRUPT, never a
 *        TypeError or a short column.
 *
 * Thread: controller main thread.
 * Errors leaving: VDM_STORE_CORRUPT.
 */
import { Encoder } from 'cbor-x';
import { VdmapError } from '../../errors/error.js';
import { documentFromRuns, tableRuns, type TableRuns } from '../../table/codec.js';
import type { TableDocument } from '../../table/document.js';

const FORMAT = 1;
const RUN_BYTES = 13;
const EXTENT_BYTES = 9;
const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

export function encodeTableBytes(doc: TableDocument): Uint8Array {
  const header = {
    format: FORMAT, disk: doc.disk, epoch: doc.epoch, extentSize: doc.extentSize, extentCount: doc.extentCount,
    devices: doc.devices,
  };
  const runs = tableRuns(doc);
  const body = runs.count.length * RUN_BYTES < doc.extentCount * EXTENT_BYTES
    ? { layout: 'runs', ...runs }
    : { layout: 'columns', device: doc.device, physicalExtent: doc.physicalExtent, state: doc.state };
  // A copy: cbor-x returns a view of its reusable buffer.
  return new Uint8Array(encoder.encode({ ...header, ...body }));
}

/** The table in `bytes`; `where` names the key in a VDM_STORE_CORRUPT error (TB2). */
export function decodeTableBytes(bytes: Uint8Array, where: string): TableDocument {
  const corrupt = (reason: string): VdmapError =>
    new VdmapError('VDM_STORE_CORRUPT', `stored table ${where} is unreadable: ${reason}`, { key: where, reason });
  let value: Record<string, unknown>;
  try {
    value = encoder.decode(bytes) as Record<string, unknown>;
  } catch (error) {
    throw corrupt(`not CBOR (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || value.format !== FORMAT) throw corrupt('unknown format');
  const header = {
    disk: value.disk, epoch: value.epoch, extentSize: value.extentSize, extentCount: value.extentCount, devices: value.devices,
  };
  if (typeof header.disk !== 'string' || !isUint(header.epoch) || !isUint(header.extentSize) ||
    !isUint(header.extentCount) || !Array.isArray(header.devices) || !header.devices.every((id) => typeof id === 'string')) {
    throw corrupt('bad header');
  }
  const typed = header as Pick<TableDocument, 'disk' | 'epoch' | 'extentSize' | 'extentCount' | 'devices'>;
  if (value.layout === 'runs') {
    const runs = columnsOf(value, ['count', 'device', 'physicalExtent', 'state'], corrupt) as unknown as TableRuns;
    try {
      return documentFromRuns(typed, runs);
    } catch (error) {
      throw corrupt((error as Error).message);
    }
  }
  if (value.layout !== 'columns') throw corrupt('unknown layout');
  const columns = columnsOf(value, ['device', 'physicalExtent', 'state'], corrupt);
  if (columns.device.length !== typed.extentCount) throw corrupt('column length differs from extentCount');
  return { ...typed, ...columns } as unknown as TableDocument;
}

const COLUMN_KINDS: Record<string, Function> = {
  count: Uint32Array, device: Int32Array, physicalExtent: Uint32Array, state: Uint8Array,
};

/** Copies each named column out of the decoded value (so it owns aligned memory) after checking its type and length. */
function columnsOf(value: Record<string, unknown>, names: string[], corrupt: (reason: string) => VdmapError):
  Record<string, Int32Array | Uint32Array | Uint8Array> {
  const result: Record<string, Int32Array | Uint32Array | Uint8Array> = {};
  let length: number | undefined;
  for (const name of names) {
    const column = value[name];
    if (!(column instanceof (COLUMN_KINDS[name] as typeof Uint8Array))) throw corrupt(`column ${name} has the wrong type`);
    if (length !== undefined && column.length !== length) throw corrupt(`column ${name} differs in length`);
    length = column.length;
    const Kind = COLUMN_KINDS[name] as Uint8ArrayConstructor;
    result[name] = new Kind(column);
  }
  return result;
}

function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

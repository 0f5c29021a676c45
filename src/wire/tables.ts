/**
 * A full table on the wire: split into `table-begin`, bounded `table-chunk`s and `table-end`, and put back
 * together by a TableAssembler on the receiving side. Also the delta <-> message mapping.
 *
 * Owns: chunking, reassembly rules and the table digest. Knows nothing about sockets or authentication (each
 * message is sealed and framed like any other) and does not validate the table against devices (that is
 * src/table/validate.ts, which the receiver runs on the assembled document).
 *
 * Invariants:
 *   T1. A chunk holds at most WireLimits.maxChunkExtents extents, so a 1M-entry table is several frames, each
 *       far below MAX_FRAME_BYTES.
 *   T2. Chunks arrive in extent order and tile [0, extentCount) exactly; a gap, overlap, overrun, foreign
 *       transferId or missing chunk fails the transfer.
 *   T3. A transfer completes only when the digest in `table-end` equals tableDigest of the assembled columns.
 *   T4. Columns are allocated once, at `table-begin`, for an extentCount the codec already bounded
 *       (WireLimits.maxTableExtents).
 *   T5. After its first error an assembler refuses everything; the receiver drops it (and its copy of that
 *       table stays what it was).
 *
 * Thread: main thread of either daemon.
 * Errors leaving: VDM_WIRE_UNEXPECTED.
 */
import { createHash } from 'node:crypto';
import { VdmapError } from '../errors/error.js';
import type { TableDelta, TableDocument } from '../table/document.js';
import type {
  DeltaMessage, TableBeginMessage, TableChunkMessage, TableEndMessage,
} from './messages.js';
import { WireLimits } from './messages.js';

/** SHA-256 over the device, physicalExtent and state columns, in that order, little-endian (T3). */
export function tableDigest(doc: Pick<TableDocument, 'device' | 'physicalExtent' | 'state'>): Uint8Array {
  const hash = createHash('sha256');
  for (const column of [doc.device, doc.physicalExtent, doc.state]) {
    hash.update(new Uint8Array(column.buffer, column.byteOffset, column.byteLength));
  }
  return new Uint8Array(hash.digest());
}

export type TableTransferMessage = TableBeginMessage | TableChunkMessage | TableEndMessage;

/**
 * The messages that carry `doc` (T1); chunks are views of the document's columns, not copies. `digest`, when
 * given, must be tableDigest(doc) (a sender of one table to many peers computes it once).
 */
export function* tableMessages(doc: TableDocument, transferId: number,
  chunkExtents: number = WireLimits.maxChunkExtents, digest?: Uint8Array): Generator<TableTransferMessage> {
  const step = Math.max(1, Math.min(chunkExtents, WireLimits.maxChunkExtents));
  yield {
    type: 'table-begin', transferId, disk: doc.disk, epoch: doc.epoch, extentSize: doc.extentSize,
    extentCount: doc.extentCount, devices: [...doc.devices],
  };
  for (let first = 0; first < doc.extentCount; first += step) {
    const end = Math.min(doc.extentCount, first + step);
    yield {
      type: 'table-chunk', transferId, firstExtent: first,
      device: doc.device.subarray(first, end),
      physicalExtent: doc.physicalExtent.subarray(first, end),
      state: doc.state.subarray(first, end),
    };
  }
  yield { type: 'table-end', transferId, digest: digest ?? tableDigest(doc) };
}

/** Reassembles one transfer (T2-T5). Create it from the `table-begin`, feed it chunks, finish it with `table-end`. */
export class TableAssembler {
  readonly transferId: number;
  private readonly doc: TableDocument;
  private received = 0;
  private failure: VdmapError | undefined;

  constructor(begin: TableBeginMessage) {
    this.doc = {
      disk: begin.disk, epoch: begin.epoch, extentSize: begin.extentSize, extentCount: begin.extentCount,
      devices: [...begin.devices],
      device: new Int32Array(begin.extentCount),
      physicalExtent: new Uint32Array(begin.extentCount),
      state: new Uint8Array(begin.extentCount),
    };
    this.transferId = begin.transferId;
  }

  get disk(): string {
    return this.doc.disk;
  }

  get epoch(): number {
    return this.doc.epoch;
  }

  /** Copies one chunk in; an error fails the transfer for good (T5). */
  addChunk(chunk: TableChunkMessage): VdmapError | undefined {
    if (this.failure !== undefined) return this.failure;
    const problem = this.chunkProblem(chunk);
    if (problem !== undefined) return this.fail(problem, { firstExtent: chunk.firstExtent, count: chunk.device.length });
    this.doc.device.set(chunk.device, chunk.firstExtent);
    this.doc.physicalExtent.set(chunk.physicalExtent, chunk.firstExtent);
    this.doc.state.set(chunk.state, chunk.firstExtent);
    this.received += chunk.device.length;
    return undefined;
  }

  /** The assembled document, once every extent arrived and the digest matches. */
  finish(end: TableEndMessage): TableDocument | VdmapError {
    if (this.failure !== undefined) return this.failure;
    if (end.transferId !== this.transferId) return this.fail(`table-end is for transfer ${end.transferId}`, {});
    if (this.received !== this.doc.extentCount) {
      return this.fail(`table-end after ${this.received} of ${this.doc.extentCount} extents`, { received: this.received });
    }
    if (!Buffer.from(tableDigest(this.doc)).equals(end.digest)) {
      return this.fail('the assembled table does not match the digest in table-end', {});
    }
    this.failure = new VdmapError('VDM_WIRE_UNEXPECTED', `table transfer ${this.transferId} already finished`,
      { transferId: this.transferId });
    return this.doc;
  }

  private chunkProblem(chunk: TableChunkMessage): string | undefined {
    if (chunk.transferId !== this.transferId) return `table-chunk is for transfer ${chunk.transferId}`;
    if (chunk.firstExtent !== this.received) {
      return `table-chunk starts at extent ${chunk.firstExtent}, expected ${this.received}`;
    }
    if (chunk.firstExtent + chunk.device.length > this.doc.extentCount) {
      return `table-chunk reaches extent ${chunk.firstExtent + chunk.device.length}, past the table's ${this.doc.extentCount}`;
    }
    return undefined;
  }

  private fail(reason: string, details: Record<string, unknown>): VdmapError {
    this.failure = new VdmapError('VDM_WIRE_UNEXPECTED', `table transfer ${this.transferId} for disk '${this.doc.disk}' failed: ${reason}`, {
      transferId: this.transferId, disk: this.doc.disk, epoch: this.doc.epoch, ...details,
    });
    return this.failure;
  }
}

/** A delta as a message, or undefined when it is too large for one and must go as a full table. */
export function deltaMessage(delta: TableDelta): DeltaMessage | undefined {
  if (delta.extent.length > WireLimits.maxDeltaEntries) return undefined;
  return { type: 'delta', ...delta, devices: [...delta.devices] };
}

export function deltaFromMessage(message: DeltaMessage): TableDelta {
  const { type: _type, ...delta } = message;
  return delta;
}

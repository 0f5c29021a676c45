/**
 * VirtualDisk: byte-addressed I/O on one virtual disk, mapped through the shared table and issued on the
 * calling thread's ring. It is the Export the NBD server serves (src/nbd/export.ts).
 *
 * Owns: request policy: range checks, alignment of edges (read-modify-write), holds on INVALID / NOWRITE /
 * unallocated entries with faults and timeouts, splitting across extents, and turning completions into
 * results. It does not know the table's bytes (extent-map.ts and src/table do) nor the ring (io-engine.ts).
 *
 * A request, in steps:
 *   1. Check the range (VDM_IO_OUT_OF_RANGE) and, for writes, that the disk is writable.
 *   2. Take an aligned buffer from the pool covering the request widened to whole blocks.
 *   3. Writes only: take write locks (write-locks.ts): edge blocks exclusively for a partial write, else shared.
 *   4. Enter the table (R1..R3 of epoch-flip.ts); while it is blocked, wait for it to unblock.
 *   5. Plan the range (extent-map.ts). A hold: leave the table, report a fault once, wait for the next
 *      generation, and start again at 4 until the hold timeout (VDM_STATE_*_TIMEOUT).
 *   6. Issue every piece in this tick (one submission); a partial write first reads its edge blocks.
 *   7. When the last piece completed, leave the table (R5) and resolve, or reject with the first error.
 * Fast path (performance only, same steps): when the pool has a block at hand, the table is not blocked, and the
 * range lies inside one extent that maps to a device, steps 2..6 of a read, and 3..6 of a whole-block write, run
 * synchronously in the call and the request is carried by one object of single-piece-io.ts (no promise); otherwise
 * the general path above runs. writeBuffer() (X6 of src/nbd/export.ts) hands the NBD server the block itself for a
 * whole-block write, so the payload is copied once, from the socket. read(), write() and WriteBuffer.commit()
 * report to a Completion (X7 of export.ts): never before they returned.
 *
 * Invariants:
 *   V1. A request completes against one epoch's mapping: all its pieces come from one plan made while entered,
 *       and it stays entered until the last piece completed (so the flip waits for it: I2).
 *   V2. A write resolves only after the device completed it; with fua (or after flush) it is durable.
 *   V3. A held request is not in flight: it never delays a flip, and never blocks other requests.
 *   V4. Writes whose byte ranges do not overlap never lose each other's data, even when both are partial
 *       writes of the same block, from any threads (write locks).
 *   V5. No request hangs: holds end at the hold timeout, drains have their own timeout, close() fails held
 *       requests with VDM_IO_CLOSED.
 * Thread: the thread that owns `engine`; several threads may each have a VirtualDisk over the same table.
 * Errors leaving: VDM_IO_OUT_OF_RANGE, VDM_IO_READ_ONLY, VDM_IO_DEVICE, VDM_IO_NOSPACE, VDM_IO_TOO_LARGE,
 * VDM_IO_CLOSED, VDM_IO_FAST_ZERO_UNSUPPORTED, VDM_STATE_INVALID_TIMEOUT, VDM_STATE_NOWRITE_TIMEOUT.
 */
import { constants } from 'node:os';
import { VdmapError } from '../errors/error.js';
import { deviceError } from '../errors/errno.js';
import { copyBytes } from '../native/index.js';
import type { AllocationExtent, Completion, Export, ExportCapabilities, ReadBuffer, WriteBuffer, WriteZeroesOptions } from '../nbd/export.js';
import { Blocked, TableReader } from '../table/epoch-flip.js';
import type { CopyIndex, TableViews } from '../table/layout.js';
import {
  type Access, allocationRuns, clipPieces, devicesOf, extentAt, type Hold, mapWithinExtent, type Piece, type PlanSite, planRange, ZeroPiece,
} from './extent-map.js';
import { type Fault, FaultReporter, type FaultSink } from './faults.js';
import { FallocateMode, type IoEngine, WriteFlag } from './io-engine.js';
import type { BufferPool, PoolBlock } from './buffer-pool.js';
import type { WriteLocks } from './write-locks.js';
import { type SinglePieceHost, SinglePieceRead, SinglePieceWrite } from './single-piece-io.js';

export interface VirtualDiskOptions {
  name: string;
  /** Size in bytes. */
  size: number;
  table: TableViews;
  /** This thread's reader slot in the table. */
  readerSlot: number;
  engine: IoEngine;
  /** Shared by every thread serving this disk. */
  locks: WriteLocks;
  /** Direct-I/O offset alignment of the disk's devices (a power of two, 512..4096). */
  blockSize: number;
  /** How long a request may be held by a table state before it fails; default 30 s. */
  holdTimeoutMs?: number;
  faults: FaultSink;
  readOnly?: boolean;
  description?: string;
}

export const DefaultHoldTimeoutMs = 30_000;
/** Largest single request (NBD_INFO_BLOCK_SIZE maximum). */
export const MaxRequestBytes = 32 * 1024 * 1024;
const MaxBlockStatusRuns = 1024;

export class VirtualDisk implements Export {
  readonly name: string;
  readonly description: string;
  readonly size: number;
  readonly capabilities: ExportCapabilities;
  private readonly reader: TableReader;
  private readonly faults: FaultReporter;
  private readonly holdTimeoutMs: number;
  private readonly blockSize: number;
  private closed = false;
  /** Device fds whose fallocate refused a zeroing mode: a fast zero touching them fails before any I/O. */
  private readonly slowZeroDevices = new Set<number>();
  /** What the fast path's requests need of this disk (single-piece-io.ts). */
  private readonly singlePieceHost: SinglePieceHost;
  /** mapWithinExtent's answer, read at once by the fast path (one thread: no sharing). */
  private readonly scratchPiece: Piece = { fd: 0, fileOffset: 0, rangeOffset: 0, length: 0 };

  constructor(private readonly options: VirtualDiskOptions) {
    const { blockSize } = options;
    if (!Number.isInteger(Math.log2(blockSize)) || blockSize < 512 || blockSize > 4096) throw new RangeError(`block size ${blockSize} is not a power of two in 512..4096`);
    this.name = options.name;
    this.description = options.description ?? `vdmap virtual disk ${options.name}`;
    this.size = options.size;
    this.blockSize = blockSize;
    this.reader = new TableReader(options.table, options.readerSlot);
    this.faults = new FaultReporter(options.faults);
    this.holdTimeoutMs = options.holdTimeoutMs ?? DefaultHoldTimeoutMs;
    this.capabilities = {
      readOnly: options.readOnly ?? false,
      flush: true, fua: true, trim: true, writeZeroes: true, fastZero: true, cache: true,
      // flush() syncs every device of the disk, so it covers writes completed on any connection or thread.
      multiConn: true,
      minimumBlockSize: 1, preferredBlockSize: 4096, maximumBlockSize: MaxRequestBytes,
    };
    this.singlePieceHost = {
      engine: options.engine,
      locks: options.locks,
      exitTable: () => this.reader.exit(),
      pieceFailure: (result, piece, what, site) => this.pieceFailure(result, piece, what, site),
    };
  }

  read(offset: number, length: number, done: Completion<ReadBuffer>): void {
    const blockSize = this.blockSize;
    const start = offset - (offset % blockSize);
    const end = Math.ceil((offset + length) / blockSize) * blockSize;
    let block: PoolBlock | undefined;
    try {
      this.checkRange(offset, length, true);
      block = length === 0 ? undefined : this.options.engine.pool.tryAllocate(end - start);
    } catch (error) {
      queueMicrotask(() => done.failed(error));
      return;
    }
    if (block !== undefined && this.readNow(block, start, end - start, offset - start, length, done)) return;
    this.readInSteps(offset, length).then((buffer) => done.succeeded(buffer), (error) => done.failed(error));
  }

  /** The fast path of read(): false (nothing done, block released) unless the range is one mapped piece now. */
  private readNow(block: PoolBlock, start: number, span: number, from: number, length: number, done: Completion<ReadBuffer>): boolean {
    const copy = this.enterAsOnePiece(start, span, 'read');
    if (copy !== Blocked) {
      new SinglePieceRead(this.singlePieceHost, block, this.scratchPiece, start, copy, from, length, done).start();
      return true;
    }
    this.options.engine.pool.release(block);
    return false;
  }

  /**
   * Steps 4 and 5 of the fast path: enters the table and plans the range into scratchPiece when it is one mapped
   * piece now (returns the copy entered; the caller's request exits when it completes); otherwise Blocked, not
   * entered.
   */
  private enterAsOnePiece(start: number, span: number, access: Access): CopyIndex | typeof Blocked {
    const copy = this.reader.enter();
    if (copy === Blocked) return Blocked;
    if (mapWithinExtent(this.options.table, copy, start, span, access, this.scratchPiece)) return copy;
    this.reader.exit();
    return Blocked;
  }

  private async readInSteps(offset: number, length: number): Promise<ReadBuffer> {
    if (length === 0) return { bytes: new Uint8Array(0), release: () => {} };
    const { start, end } = this.widen(offset, length);
    const pool = this.options.engine.pool;
    const block = await pool.allocate(end - start);
    try {
      await this.mapped('read', start, end - start, (pieces, site) => this.readPieces(pieces, block, 'read', site));
    } catch (error) {
      pool.release(block);
      throw error;
    }
    return new PoolReadBuffer(pool, block, offset - start, length);
  }

  write(offset: number, data: Uint8Array, fua: boolean, done: Completion<void>): void {
    // Whole blocks with a block at hand: the payload goes into it and takes the write-buffer path (fast when it can).
    const buffer = data.length > 0 ? this.writeBuffer(offset, data.length) : undefined;
    if (buffer !== undefined) {
      copyBytes(buffer.bytes, 0, data, 0, data.length);
      buffer.commit(fua, done);
      return;
    }
    this.writeInSteps(offset, data, fua).then(() => done.succeeded(undefined), (error) => done.failed(error));
  }

  /** The general path of a write: any range, partial blocks by read-modify-write under exclusive stripes. */
  private async writeInSteps(offset: number, data: Uint8Array, fua: boolean): Promise<void> {
    this.checkWritable();
    this.checkRange(offset, data.length, true);
    if (data.length === 0) return;
    const { start, end } = this.widen(offset, data.length);
    const edges = this.partialEdges(offset, offset + data.length, start, end);
    const pool = this.options.engine.pool;
    const block = await pool.allocate(end - start);
    if (edges.length === 0) {
      copyBytes(block.bytes, 0, data, 0, data.length);
      return this.writeWholeBlocksInSteps(start, end, block, fua ? WriteFlag.DATASYNC : 0);
    }
    try {
      const hold = await this.options.locks.exclusive(edges);
      try {
        await this.mapped('write', start, end - start, async (pieces, site) => {
          await this.readEdges(pieces, block, edges.map((edge) => edge - start), site);
          copyBytes(block.bytes, offset - start, data, 0, data.length);
          await this.writePieces(pieces, block, fua ? WriteFlag.DATASYNC : 0, site);
        });
      } finally {
        hold.release();
      }
    } finally {
      pool.release(block);
    }
  }

  /**
   * X6 of export.ts: the pool block itself, for a write of whole blocks, when one is at hand now; undefined
   * otherwise (a partial-block write, no free block, a read-only or closed disk, a bad range: write() then says why).
   */
  writeBuffer(offset: number, length: number): WriteBuffer | undefined {
    const blockSize = this.blockSize;
    if (this.closed || this.capabilities.readOnly || length <= 0 || length > MaxRequestBytes ||
      !Number.isSafeInteger(offset) || offset < 0 || offset + length > this.size || offset % blockSize !== 0 || length % blockSize !== 0) {
      return undefined;
    }
    let block: PoolBlock | undefined;
    try {
      block = this.options.engine.pool.tryAllocate(length);
    } catch {
      return undefined; // larger than the pool: write() reports it
    }
    return block === undefined ? undefined : new PoolWriteBuffer(this, block, offset, length);
  }

  /**
   * Steps 3..7 for whole blocks already in `block` (the fast path when it applies, else shared write locks, the
   * table, the device). Releases `block` when it settles, whatever the outcome.
   * @internal (PoolWriteBuffer)
   */
  writeWholeBlocks(start: number, end: number, block: PoolBlock, fua: boolean, done: Completion<void>): void {
    const flags = fua ? WriteFlag.DATASYNC : 0;
    if (this.writeNow(start, end - start, block, flags, done)) return;
    this.writeWholeBlocksInSteps(start, end, block, flags).then(() => done.succeeded(undefined), (error) => done.failed(error));
  }

  /** The fast path of steps 3..7 of a whole-block write: false (nothing taken) unless it is one mapped piece now. */
  private writeNow(start: number, span: number, block: PoolBlock, flags: number, done: Completion<void>): boolean {
    if (this.closed) return false;
    const locks = this.options.locks;
    const stripe = locks.tryShareOne(start, start + span);
    if (stripe < 0) return false;
    const copy = this.enterAsOnePiece(start, span, 'write');
    if (copy !== Blocked) {
      new SinglePieceWrite(this.singlePieceHost, block, this.scratchPiece, start, copy, flags, stripe, done).start();
      return true;
    }
    locks.releaseSharedStripe(stripe);
    return false;
  }

  private async writeWholeBlocksInSteps(start: number, end: number, block: PoolBlock, flags: number): Promise<void> {
    try {
      const hold = await this.options.locks.shared(start, end);
      try {
        await this.mapped('write', start, end - start, (pieces, site) => this.writePieces(pieces, block, flags, site));
      } finally {
        hold.release();
      }
    } finally {
      this.options.engine.pool.release(block);
    }
  }

  /** Makes every write completed before the call durable: fdatasync on every device the disk maps into. */
  async flush(): Promise<void> {
    if (this.closed) throw this.closedError();
    await this.entered(async (copy) => this.syncDevices(devicesOf(this.options.table, copy)));
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions, fua: boolean): Promise<void> {
    this.checkWritable();
    this.checkRange(offset, length);
    const { inner, head, tail } = this.split(offset, length);
    if (options.fastZero && (head || tail)) {
      // proto.md: a fast zero that cannot beat a write fails at once and SHOULD leave the data as it was.
      throw new VdmapError('VDM_IO_FAST_ZERO_UNSUPPORTED', `a partial block of ${this.name} can only be zeroed by a read-modify-write`);
    }
    if (head) await this.writeInSteps(head.offset, new Uint8Array(head.length), false);
    if (tail) await this.writeInSteps(tail.offset, new Uint8Array(tail.length), false);
    if (inner.length > 0) {
      const access: Access = options.noHole ? 'zero-allocated' : 'zero';
      const hold = await this.options.locks.shared(inner.offset, inner.offset + inner.length);
      try {
        await this.mapped(access, inner.offset, inner.length, (pieces, site) => this.zeroPieces(pieces, options, site));
      } finally {
        hold.release();
      }
    }
    if (fua) await this.flush();
  }

  /** Deallocates whole blocks in the range where the table allows it; partial blocks are left as they are. */
  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    this.checkWritable();
    this.checkRange(offset, length);
    const { inner } = this.split(offset, length);
    if (inner.length > 0) {
      const hold = await this.options.locks.shared(inner.offset, inner.offset + inner.length);
      try {
        await this.mapped('trim', inner.offset, inner.length, (pieces, site) => this.deallocatePieces(pieces, site));
      } finally {
        hold.release();
      }
    }
    if (fua) await this.flush();
  }

  /** discard(2)-style name for trim: deallocates whole blocks where the table allows it. */
  discard(offset: number, length: number): Promise<void> {
    return this.trim(offset, length, false);
  }

  /** Direct I/O has no cache to fill: the request is checked and acknowledged. */
  async cache(offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
  }

  async blockStatus(offset: number, length: number): Promise<AllocationExtent[]> {
    this.checkRange(offset, length);
    if (length === 0) throw new VdmapError('VDM_IO_OUT_OF_RANGE', 'block status of zero bytes');
    return this.entered(async (copy) => allocationRuns(this.options.table, copy, offset, length, MaxBlockStatusRuns)
      .map((run) => ({ length: run.length, hole: run.hole, zero: run.hole })));
  }

  /** Fails held and future requests with VDM_IO_CLOSED; in-flight I/O completes normally. */
  close(): void {
    this.closed = true;
    this.reader.wakeWaiters();
  }

  // ---- steps of a request ------------------------------------------------------------------------------

  /** Step 1. `carriesData`: the request moves `length` bytes through a buffer (read, write), so it is capped. */
  private checkRange(offset: number, length: number, carriesData = false): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new VdmapError('VDM_IO_OUT_OF_RANGE', `${length} bytes at offset ${offset} reach past the end of ${this.name} (${this.size} bytes)`, { offset, length, size: this.size });
    }
    if (carriesData && length > MaxRequestBytes) {
      throw new VdmapError('VDM_IO_TOO_LARGE', `a request of ${length} bytes exceeds the ${MaxRequestBytes}-byte maximum`, { length });
    }
    if (this.closed) throw this.closedError();
  }

  private checkWritable(): void {
    if (this.capabilities.readOnly) throw new VdmapError('VDM_IO_READ_ONLY', `${this.name} is attached read-only`);
  }

  private widen(offset: number, length: number): { start: number; end: number } {
    const mask = this.blockSize - 1;
    return { start: offset - (offset & mask), end: Math.ceil((offset + length) / this.blockSize) * this.blockSize };
  }

  /** Block-aligned start positions of the edge blocks a write covers only partly. */
  private partialEdges(from: number, to: number, start: number, end: number): number[] {
    const edges: number[] = [];
    if (from !== start) edges.push(start);
    if (to !== end && !(edges.length > 0 && end - this.blockSize === start)) edges.push(end - this.blockSize);
    return edges;
  }

  /** Splits a range into its whole blocks and the partial blocks at either end. */
  private split(offset: number, length: number) {
    const end = offset + length;
    const innerStart = Math.min(end, Math.ceil(offset / this.blockSize) * this.blockSize);
    const innerEnd = Math.max(innerStart, end - (end % this.blockSize));
    return {
      inner: { offset: innerStart, length: innerEnd - innerStart },
      head: innerStart > offset ? { offset, length: innerStart - offset } : undefined,
      tail: end > innerEnd ? { offset: innerEnd, length: end - innerEnd } : undefined,
    };
  }

  /** Steps 4..7: runs `execute` against one epoch's plan of the range, holding as the table says. */
  private async mapped(access: Access, start: number, length: number, execute: (pieces: Piece[], site: PlanSite) => Promise<void>): Promise<void> {
    const deadline = performance.now() + this.holdTimeoutMs;
    for (;;) {
      const copy = await this.enter();
      const generation = this.reader.generation();
      const plan = planRange(this.options.table, copy, start, length, access);
      if (plan.hold === undefined) {
        try {
          await execute(plan.pieces, { start, copy });
          return;
        } finally {
          this.reader.exit();
        }
      }
      const epoch = this.reader.epochOf(copy);
      this.reader.exit();
      this.reportHold(generation, epoch, access, plan.hold);
      await this.waitForFix(generation, deadline, plan.hold);
    }
  }

  /** Steps 4 and 7 for work that needs one epoch's view but no extent plan. */
  private async entered<T>(work: (copy: CopyIndex) => Promise<T>): Promise<T> {
    const copy = await this.enter();
    try {
      return await work(copy);
    } finally {
      this.reader.exit();
    }
  }

  private async enter(): Promise<CopyIndex> {
    for (;;) {
      if (this.closed) throw this.closedError();
      const copy = this.reader.enter();
      if (copy !== Blocked) return copy;
      await this.reader.whenUnblocked();
    }
  }

  private reportHold(generation: number, epoch: number, access: Access, hold: Hold): void {
    const fault: Fault = { disk: this.name, extent: hold.extent, operation: access === 'read' ? 'read' : 'write', epoch, kind: hold.kind };
    this.faults.report(generation, fault);
  }

  private async waitForFix(generation: number, deadline: number, hold: Hold): Promise<void> {
    const remaining = deadline - performance.now();
    const fixed = remaining > 0 && await this.reader.whenGenerationPasses(generation, remaining, () => this.closed);
    if (this.closed) throw this.closedError();
    if (fixed) return;
    const code = hold.kind === 'nowrite' ? 'VDM_STATE_NOWRITE_TIMEOUT' : 'VDM_STATE_INVALID_TIMEOUT';
    throw new VdmapError(code, `extent ${hold.extent} of ${this.name} stayed ${hold.kind.toUpperCase()} for ${this.holdTimeoutMs} ms`, { disk: this.name, extent: hold.extent, kind: hold.kind });
  }

  // ---- issuing pieces ----------------------------------------------------------------------------------

  private readPieces(pieces: readonly Piece[], block: PoolBlock, what: string, site: PlanSite): Promise<void> {
    return this.all(pieces, what, site, (piece, done) => this.readPiece(piece, block, done));
  }

  private readPiece(piece: Piece, block: PoolBlock, done: (result: number) => void): void {
    if (piece.fd === ZeroPiece) {
      block.bytes.fill(0, piece.rangeOffset, piece.rangeOffset + piece.length);
      done(piece.length);
    } else {
      this.options.engine.read(piece.fd, block, piece.rangeOffset, piece.length, piece.fileOffset, done);
    }
  }

  private readEdges(pieces: readonly Piece[], block: PoolBlock, edges: readonly number[], site: PlanSite): Promise<void> {
    const edgePieces = edges.flatMap((edge) => clipPieces(pieces, edge, this.blockSize));
    return this.readPieces(edgePieces, block, 'read of a partial block', site);
  }

  private writePieces(pieces: readonly Piece[], block: PoolBlock, flags: number, site: PlanSite): Promise<void> {
    const engine = this.options.engine;
    return this.all(pieces, 'write', site, (piece, done) => engine.write(piece.fd, block, piece.rangeOffset, piece.length, piece.fileOffset, flags, done));
  }

  private async zeroPieces(pieces: readonly Piece[], options: WriteZeroesOptions, site: PlanSite): Promise<void> {
    const mode = options.noHole ? FallocateMode.ZERO_RANGE | FallocateMode.KEEP_SIZE : FallocateMode.PUNCH_HOLE | FallocateMode.KEEP_SIZE;
    if (options.fastZero && pieces.some((piece) => this.slowZeroDevices.has(piece.fd))) throw this.noFastZero();
    const unsupported: Piece[] = [];
    await this.all(pieces, 'write zeroes', site, (piece, done) => this.options.engine.fallocate(piece.fd, mode, piece.fileOffset, piece.length, (result) => {
      if (result === -constants.errno.EOPNOTSUPP || result === -constants.errno.EINVAL || result === -constants.errno.ENODEV) {
        this.slowZeroDevices.add(piece.fd);
        unsupported.push(piece);
        done(piece.length);
      } else {
        done(result === 0 ? piece.length : result);
      }
    }));
    if (unsupported.length === 0) return;
    if (options.fastZero) throw this.noFastZero();
    await this.writeZeroBuffers(unsupported, site);
  }

  private noFastZero(): VdmapError {
    return new VdmapError('VDM_IO_FAST_ZERO_UNSUPPORTED', `the device under ${this.name} cannot zero a range quickly`);
  }

  /** Writes zero-filled buffers over pieces whose device cannot zero by fallocate. */
  private async writeZeroBuffers(pieces: readonly Piece[], site: PlanSite): Promise<void> {
    const chunk = 1024 * 1024;
    const block = await this.options.engine.pool.allocate(chunk);
    try {
      block.bytes.fill(0);
      for (const piece of pieces) {
        for (let done = 0; done < piece.length; done += chunk) {
          const length = Math.min(chunk, piece.length - done);
          await this.all([{ fd: piece.fd, fileOffset: piece.fileOffset + done, rangeOffset: piece.rangeOffset + done, length }], 'write zeroes', site,
            (part, complete) => this.options.engine.write(part.fd, block, 0, part.length, part.fileOffset, 0, complete));
        }
      }
    } finally {
      this.options.engine.pool.release(block);
    }
  }

  private deallocatePieces(pieces: readonly Piece[], site: PlanSite): Promise<void> {
    const mode = FallocateMode.PUNCH_HOLE | FallocateMode.KEEP_SIZE;
    // Trim is advisory: a device that cannot deallocate simply keeps the data.
    return this.all(pieces, 'trim', site, (piece, done) => this.options.engine.fallocate(piece.fd, mode, piece.fileOffset, piece.length,
      (result) => done(result === 0 || result === -constants.errno.EOPNOTSUPP ? piece.length : result)));
  }

  private syncDevices(fds: readonly number[]): Promise<void> {
    const pieces = fds.map((fd) => ({ fd, fileOffset: 0, rangeOffset: 0, length: 0 }));
    return this.all(pieces, 'flush', undefined, (piece, done) => this.options.engine.fsync(piece.fd, done));
  }

  /**
   * Issues every piece now and resolves when all completed with their full length, or rejects with the first
   * failure after all completed (the buffers stay in use until then, B3); each piece the device failed is reported
   * as a fault on its extent. A short transfer is continued for the rest of the piece, so a device that fills up
   * mid-write reports its -ENOSPC rather than a short count.
   * `site` says where the pieces lie in the disk (undefined for a flush, which is about devices, not extents).
   */
  private all(pieces: readonly Piece[], what: string, site: PlanSite | undefined, issue: (piece: Piece, done: (result: number) => void) => void): Promise<void> {
    if (pieces.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let remaining = pieces.length;
      let failure: VdmapError | undefined;
      const start = (piece: Piece) => issue(piece, (result) => {
        if (result > 0 && result < piece.length && failure === undefined) {
          start({ fd: piece.fd, fileOffset: piece.fileOffset + result, rangeOffset: piece.rangeOffset + result, length: piece.length - result });
          return;
        }
        // Every piece the device failed is reported (its extent's fault); the request rejects with the first.
        if (result !== piece.length && (failure === undefined || result < 0)) {
          const error = this.pieceFailure(result, piece, what, site);
          failure ??= error;
        }
        if (--remaining > 0) return;
        if (failure === undefined) resolve();
        else reject(failure);
      });
      for (const piece of pieces) start(piece);
    });
  }

  /**
   * The error for a failed or short transfer of `piece`, reported as a device-error fault on the extent the failure
   * hit (at `site`, read while the request is still entered: V1), or on no extent (-1) for a flush.
   */
  private pieceFailure(result: number, piece: Piece, what: string, site: PlanSite | undefined): VdmapError {
    const error = result < 0
      ? deviceError(result, `${what} of ${piece.length} bytes at device offset ${piece.fileOffset} of ${this.name}`)
      : new VdmapError('VDM_IO_DEVICE', `${what} of ${piece.length} bytes at device offset ${piece.fileOffset} of ${this.name} transferred only ${result} bytes`, { transferred: result });
    const extent = site === undefined ? -1 : extentAt(this.options.table, site, piece.rangeOffset);
    const epoch = site === undefined ? -1 : this.reader.epochOf(site.copy);
    this.faults.report(this.reader.generation(), {
      disk: this.name, extent, operation: what === 'read' ? 'read' : 'write', epoch, kind: 'device-error', error: error.toRecord(),
    });
    return error;
  }

  /** @internal (PoolWriteBuffer) */
  releaseBlock(block: PoolBlock): void {
    this.options.engine.pool.release(block);
  }

  private closedError(): VdmapError {
    return new VdmapError('VDM_IO_CLOSED', `${this.name} was closed`);
  }
}

/** A read's bytes in a pool block, released once (X4 of export.ts). */
class PoolReadBuffer implements ReadBuffer {
  readonly bytes: Uint8Array;
  private block: PoolBlock | undefined;

  constructor(private readonly pool: BufferPool, block: PoolBlock, from: number, length: number) {
    this.block = block;
    this.bytes = block.bytes.subarray(from, from + length);
  }

  release(): void {
    const block = this.block;
    if (block === undefined) return;
    this.block = undefined;
    this.pool.release(block);
  }
}

/** X6 of export.ts: a pool block the server fills with a whole-block payload; commit() or abandon() once. */
class PoolWriteBuffer implements WriteBuffer {
  readonly bytes: Uint8Array;
  private settled = false;

  constructor(private readonly disk: VirtualDisk, private readonly block: PoolBlock, private readonly offset: number, length: number) {
    this.bytes = block.bytes.subarray(0, length);
  }

  commit(fua: boolean, done: Completion<void>): void {
    if (this.settled) {
      queueMicrotask(() => done.failed(new VdmapError('VDM_INTERNAL', 'a write buffer was committed or abandoned twice')));
      return;
    }
    this.settled = true;
    this.disk.writeWholeBlocks(this.offset, this.offset + this.bytes.length, this.block, fua, done);
  }

  abandon(): void {
    if (this.settled) return;
    this.settled = true;
    this.disk.releaseBlock(this.block);
  }
}

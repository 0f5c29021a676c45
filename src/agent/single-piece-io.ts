/**
 * Single-piece I/O: the data path's fast path for the common request, one that lies inside one extent, whose
 * buffer is at hand, and whose table entry is neither blocked nor held (VirtualDisk decides that; this file
 * carries the request from the ring to its Completion).
 *
 * Owns: one request between its submission and its Completion: the pool block, the table section it entered,
 * the write stripe it holds, the continuation of short transfers.
 * Does not know: entry states, holds, what a fault looks like (the host's pieceFailure makes the error), NBD.
 *
 * Invariants:
 *   S1. The host entered the table for the request before start(); exitTable() is called exactly once, after
 *       the last byte completed or failed (V1 of virtual-disk.ts: the flip waits for the request).
 *   S2. A short transfer (0 < result < rest) continues with the rest, so a device that fills up mid-write reports
 *       its -ENOSPC rather than a short count (as VirtualDisk's general path does).
 *   S3. The Completion is called exactly once, from a ring completion, never inside start() (X7 of export.ts).
 *   S4. A read's block is released by release() (it is the ReadBuffer) or on failure; a write's block and its
 *       write-lock stripe when it settles, before the Completion hears of it.
 * Cost per request: this object and one bound callback; no promise, no plan, no piece array.
 * Thread: the host's I/O thread.
 */
import type { VdmapError } from '../errors/error.js';
import type { Completion, ReadBuffer } from '../nbd/export.js';
import type { PoolBlock } from './buffer-pool.js';
import type { CopyIndex } from '../table/layout.js';
import type { Piece, PlanSite } from './extent-map.js';
import type { IoEngine } from './io-engine.js';
import type { WriteLocks } from './write-locks.js';

/** What a single-piece request needs from the VirtualDisk that started it. */
export interface SinglePieceHost {
  readonly engine: IoEngine;
  readonly locks: WriteLocks;
  /** Leaves the table section entered for the request (R5 of epoch-flip.ts). */
  exitTable(): void;
  /** The error for a failed or short transfer of `piece`, planned at `site` (the host also reports the fault). */
  pieceFailure(result: number, piece: Piece, what: string, site: PlanSite): VdmapError;
}

/** The transfer of one device range into or out of the start of a pool block, continued until complete (S2). */
abstract class SinglePieceTransfer {
  protected block: PoolBlock | undefined;
  private transferred = 0;
  private readonly fd: number;
  private readonly fileOffset: number;
  private readonly span: number;
  /** Where the piece lies (its PlanSite, kept as two numbers: built only for a failure's fault). */
  private readonly diskOffset: number;
  private readonly copy: CopyIndex;
  private readonly completedBound = (result: number): void => this.completed(result);

  /** `diskOffset`, `copy`: where the piece starts in the disk and the table copy it was planned in. */
  constructor(protected readonly host: SinglePieceHost, block: PoolBlock, piece: Piece, diskOffset: number, copy: CopyIndex) {
    this.block = block;
    this.fd = piece.fd;
    this.fileOffset = piece.fileOffset;
    this.span = piece.length;
    this.diskOffset = diskOffset;
    this.copy = copy;
  }

  start(): void {
    this.issue(this.fd, this.block as PoolBlock, 0, this.span, this.fileOffset, this.completedBound);
  }

  protected abstract issue(fd: number, block: PoolBlock, at: number, length: number, fileOffset: number, done: (result: number) => void): void;

  /** S1, S4: called once, after exitTable(), with the failure if any. */
  protected abstract settled(failure: VdmapError | undefined): void;

  protected abstract readonly what: string;

  private completed(result: number): void {
    const rest = this.span - this.transferred;
    if (result > 0 && result < rest) {
      this.transferred += result;
      const at = this.transferred;
      this.issue(this.fd, this.block as PoolBlock, at, this.span - at, this.fileOffset + at, this.completedBound);
      return;
    }
    // The failure is made before leaving the table: its fault names the extent and epoch the piece was planned in.
    const at = this.transferred;
    const failure = result === rest ? undefined
      : this.host.pieceFailure(result, { fd: this.fd, fileOffset: this.fileOffset + at, rangeOffset: at, length: rest }, this.what,
        { start: this.diskOffset, copy: this.copy });
    this.host.exitTable();
    this.settled(failure);
  }
}

/** A read of one piece; once it succeeded it is the request's ReadBuffer (X4 of export.ts). */
export class SinglePieceRead extends SinglePieceTransfer implements ReadBuffer {
  readonly bytes: Uint8Array;
  protected readonly what = 'read';

  /** `from`, `length`: the bytes the client asked for inside the block-aligned piece. */
  constructor(host: SinglePieceHost, block: PoolBlock, piece: Piece, diskOffset: number, copy: CopyIndex, from: number, length: number,
    private readonly done: Completion<ReadBuffer>) {
    super(host, block, piece, diskOffset, copy);
    this.bytes = from === 0 && length === block.bytes.length ? block.bytes : block.bytes.subarray(from, from + length);
  }

  release(): void {
    const block = this.block;
    if (block === undefined) return;
    this.block = undefined;
    this.host.engine.pool.release(block);
  }

  protected issue(fd: number, block: PoolBlock, at: number, length: number, fileOffset: number, done: (result: number) => void): void {
    this.host.engine.read(fd, block, at, length, fileOffset, done);
  }

  protected settled(failure: VdmapError | undefined): void {
    if (failure === undefined) {
      this.done.succeeded(this);
    } else {
      this.release();
      this.done.failed(failure);
    }
  }
}

/** A write of whole blocks of one piece, holding one write-lock stripe shared (write-locks.ts). */
export class SinglePieceWrite extends SinglePieceTransfer {
  protected readonly what = 'write';

  constructor(host: SinglePieceHost, block: PoolBlock, piece: Piece, diskOffset: number, copy: CopyIndex, private readonly flags: number,
    private readonly stripe: number, private readonly done: Completion<void>) {
    super(host, block, piece, diskOffset, copy);
  }

  protected issue(fd: number, block: PoolBlock, at: number, length: number, fileOffset: number, done: (result: number) => void): void {
    this.host.engine.write(fd, block, at, length, fileOffset, this.flags, done);
  }

  protected settled(failure: VdmapError | undefined): void {
    this.host.locks.releaseSharedStripe(this.stripe);
    this.host.engine.pool.release(this.block as PoolBlock);
    this.block = undefined;
    if (failure === undefined) this.done.succeeded(undefined);
    else this.done.failed(failure);
  }
}

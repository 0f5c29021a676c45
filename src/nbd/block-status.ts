/**
 * Block status descriptors: turns an export's allocation extents into the descriptors of one
 * NBD_REPLY_TYPE_BLOCK_STATUS chunk for base:allocation (proto.md "NBD_CMD_BLOCK_STATUS",
 * "base:allocation metadata context").
 *
 * Owns: merging, aligning and clipping extents. Does not know: how the chunk is framed (reply-writer.ts) or
 * where the extents come from (the Export).
 *
 * Invariants:
 *   B1. At least one descriptor; every length is nonzero and fits in 32 bits.
 *   B2. Every length is a multiple of the minimum block size, except a final partial block at the export's end.
 *       A block that straddles two extents gets the flags both share (a block is a hole, or zero, only if all
 *       of it is): reporting less is always safe, reporting more never is.
 *   B3. Descriptors cover consecutive bytes from the request offset and never pass the export's end.
 *   B4. With REQ_ONE: exactly one descriptor, no longer than the request. Without: every descriptor but the
 *       last starts inside the request (the last may run past it), and at most `maxDescriptors`.
 *   B5. Consecutive descriptors have different flags.
 *
 * Thread: whichever runs the connection. Error codes: none (empty or bad extents degrade to status 0).
 */
import type { AllocationExtent } from './export.js';
import { NBD_STATE_HOLE, NBD_STATE_ZERO } from './protocol.js';

export interface DescriptorRequest {
  /** Requested length (bytes, aligned to `minimumBlockSize`). */
  length: number;
  /** Bytes from the request offset to the export's end. */
  available: number;
  minimumBlockSize: number;
  reqOne: boolean;
  maxDescriptors: number;
}

const LARGEST_DESCRIPTOR = 0xffffffff;

/** Flat list [length0, flags0, length1, flags1, ...] ready to be written as big-endian u32 pairs. */
export function allocationDescriptors(extents: readonly AllocationExtent[], request: DescriptorRequest): number[] {
  const block = request.minimumBlockSize;
  // B1, B3, B4: total coverage stays within the export, the request (REQ_ONE) and 32 bits.
  const widest = LARGEST_DESCRIPTOR - (LARGEST_DESCRIPTOR % block);
  const limit = Math.min(request.available, request.reqOne ? request.length : widest);
  const out = new DescriptorList(request.reqOne ? 1 : request.maxDescriptors, request.length);
  let position = 0;
  let straddleFlags = 0;
  for (const extent of extents) {
    if (out.full() || position >= limit) break;
    if (!(extent.length > 0)) continue;
    const flags = flagsOf(extent);
    const end = Math.min(position + extent.length, limit);
    // Finish a block begun by earlier extents: it keeps only the flags all its parts share (B2).
    if (position % block !== 0) {
      straddleFlags &= flags;
      const blockEnd = position - (position % block) + block;
      if (end < blockEnd) {
        position = end;
        continue;
      }
      out.add(blockEnd - block, block, straddleFlags);
      position = blockEnd;
    }
    const alignedEnd = end - (end % block);
    if (alignedEnd > position) out.add(position, alignedEnd - position, flags);
    if (end > alignedEnd && end > position) straddleFlags = flags;
    position = end;
  }
  // A final partial block: only at the export's end (B2). Nothing whole found: status 0 over the request (B1, B2).
  if (position % block !== 0 && position === request.available) {
    const start = position - (position % block);
    out.add(start, position - start, straddleFlags);
  }
  if (out.isEmpty()) out.add(0, Math.min(request.length, request.available), 0);
  return out.values;
}

function flagsOf(extent: AllocationExtent): number {
  return (extent.hole ? NBD_STATE_HOLE : 0) | (extent.zero ? NBD_STATE_ZERO : 0);
}

/** Accumulates descriptors, merging equal neighbours (B5) and stopping at the request's end or budget (B4). */
class DescriptorList {
  readonly values: number[] = [];
  private covered = 0;
  private exhausted = false;

  constructor(
    private readonly maxDescriptors: number,
    private readonly requestLength: number,
  ) {}

  isEmpty(): boolean {
    return this.values.length === 0;
  }

  full(): boolean {
    return this.exhausted || (this.covered >= this.requestLength && this.values.length > 0);
  }

  /**
   * Adds [start, start + length) with `flags`; ignored unless it continues exactly where coverage ends. Once the
   * request is covered only the last descriptor may grow (B4): a new one would start past the request.
   */
  add(start: number, length: number, flags: number): void {
    if (length <= 0 || start !== this.covered || this.exhausted) return;
    const last = this.values.length - 2;
    if (last >= 0 && this.values[last + 1] === flags) {
      this.values[last] += length;
    } else if (this.values.length / 2 >= this.maxDescriptors || this.covered >= this.requestLength) {
      this.exhausted = true;
      return;
    } else {
      this.values.push(length, flags);
    }
    this.covered += length;
  }
}

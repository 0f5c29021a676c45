/**
 * Extent mapping: turns a virtual byte range into device I/O pieces by reading one copy of the shared table,
 * or into a hold when an entry's state forbids the access.
 *
 * Owns: the rules that say what each entry state means for each kind of access (the table below). Reads the
 * table only through src/table/layout.ts accessors, and only inside an entered reader section
 * (src/table/epoch-flip.ts R4), so everything it returns belongs to one epoch.
 *
 *   access         INVALID / no device   NOWRITE        ZERO (unallocated)     valid
 *   read           hold 'invalid'        piece          zero piece (no I/O)    piece
 *   write          hold 'invalid'        hold 'nowrite' hold 'unallocated'     piece
 *   zero (hole ok) hold 'invalid'        hold 'nowrite' skip (already zero)    piece
 *   zero (no hole) hold 'invalid'        hold 'nowrite' hold 'unallocated'     piece
 *   trim           skip                  skip           skip                   piece
 *
 * Invariants:
 *   M1. Pieces cover the range in order, without gaps or overlap, except where the table says skip.
 *   M2. Adjacent extents that are contiguous on the same device merge into one piece (one I/O).
 * Thread: any I/O thread, inside TableReader.enter()/exit().
 */
import { ExtentState, NoDevice } from '../table/document.js';
import {
  copyDeviceCount, copyExtentCount, copyExtentSize, deviceFd, entryDevice, entryPhysicalExtent, entryState,
  entryWord, type CopyIndex, type TableViews,
} from '../table/layout.js';
import type { FaultKind } from './faults.js';

export type Access = 'read' | 'write' | 'zero' | 'zero-allocated' | 'trim';

export interface Piece {
  /** Device fd, or -1 for a zero piece (reads as zeroes, no I/O). */
  fd: number;
  fileOffset: number;
  /** Offset of this piece from the start of the mapped range. */
  rangeOffset: number;
  length: number;
}

export interface Hold {
  kind: FaultKind;
  extent: number;
}

export type Plan = { pieces: Piece[]; hold?: undefined } | { hold: Hold; pieces?: undefined };

/** Where a plan's pieces lie: the disk offset of rangeOffset 0, and the table copy the plan was read from. */
export interface PlanSite {
  start: number;
  copy: CopyIndex;
}

/** The extent that holds byte `rangeOffset` of a plan made at `site` (M2 merges extents: a piece may span several). */
export function extentAt(views: TableViews, site: PlanSite, rangeOffset: number): number {
  return Math.floor((site.start + rangeOffset) / copyExtentSize(views, site.copy));
}

export const ZeroPiece = -1;

/** Maps [start, start + length) of the virtual disk in `copy`. */
export function planRange(views: TableViews, copy: CopyIndex, start: number, length: number, access: Access): Plan {
  const extentSize = copyExtentSize(views, copy);
  const extentCount = copyExtentCount(views, copy);
  const pieces: Piece[] = [];
  const end = start + length;
  let position = start;
  while (position < end) {
    const extent = Math.floor(position / extentSize);
    const withinExtent = position - extent * extentSize;
    const run = Math.min(extentSize - withinExtent, end - position);
    if (extent >= extentCount) return { hold: { kind: 'invalid', extent } };
    const word = entryWord(views, copy, extent);
    const outcome = outcomeOf(entryState(views, word), entryDevice(views, word), access);
    if (outcome === 'piece') {
      const fd = deviceFd(views, copy, entryDevice(views, word));
      const fileOffset = entryPhysicalExtent(views, word) * extentSize + withinExtent;
      appendPiece(pieces, fd, fileOffset, position - start, run);
    } else if (outcome === 'zero') {
      appendPiece(pieces, ZeroPiece, 0, position - start, run);
    } else if (outcome !== 'skip') {
      return { hold: { kind: outcome, extent } };
    }
    position += run;
  }
  return { pieces };
}

/**
 * The data path's plan (no allocation): when [start, start + length) lies inside one extent whose entry gives a
 * device piece for `access`, writes that piece into `into` (rangeOffset 0) and returns true. Otherwise (the range
 * crosses extents, or the entry holds, skips or reads as zero) returns false and leaves the answer to planRange,
 * which agrees with this function wherever this one answers true.
 */
export function mapWithinExtent(views: TableViews, copy: CopyIndex, start: number, length: number, access: Access, into: Piece): boolean {
  const extentSize = copyExtentSize(views, copy);
  const extent = Math.floor(start / extentSize);
  const withinExtent = start - extent * extentSize;
  if (withinExtent + length > extentSize || extent >= copyExtentCount(views, copy)) return false;
  const word = entryWord(views, copy, extent);
  if (outcomeOf(entryState(views, word), entryDevice(views, word), access) !== 'piece') return false;
  into.fd = deviceFd(views, copy, entryDevice(views, word));
  into.fileOffset = entryPhysicalExtent(views, word) * extentSize + withinExtent;
  into.rangeOffset = 0;
  into.length = length;
  return true;
}

/** The fds of every device the copy maps into (what a flush must make durable). */
export function devicesOf(views: TableViews, copy: CopyIndex): number[] {
  const fds: number[] = [];
  for (let slot = 0; slot < copyDeviceCount(views, copy); slot++) {
    const fd = deviceFd(views, copy, slot);
    if (fd >= 0 && !fds.includes(fd)) fds.push(fd);
  }
  return fds;
}

/** Allocation status of the extents covering [start, start + length): runs of (length, hole). */
export function allocationRuns(views: TableViews, copy: CopyIndex, start: number, length: number, maxRuns: number): Array<{ length: number; hole: boolean }> {
  const extentSize = copyExtentSize(views, copy);
  const extentCount = copyExtentCount(views, copy);
  const runs: Array<{ length: number; hole: boolean }> = [];
  const end = start + length;
  let position = start;
  while (position < end && runs.length <= maxRuns) {
    const extent = Math.floor(position / extentSize);
    const run = Math.min(extentSize * (extent + 1) - position, end - position);
    const hole = extent < extentCount && (entryState(views, entryWord(views, copy, extent)) & ExtentState.Zero) !== 0;
    const last = runs[runs.length - 1];
    if (last && last.hole === hole) last.length += run;
    else if (runs.length < maxRuns) runs.push({ length: run, hole });
    else break;
    position += run;
  }
  return runs;
}

type Outcome = 'piece' | 'zero' | 'skip' | FaultKind;

function outcomeOf(state: number, device: number, access: Access): Outcome {
  if (state & ExtentState.Invalid) return access === 'trim' ? 'skip' : 'invalid';
  if (state & ExtentState.Zero) {
    if (access === 'read') return 'zero';
    if (access === 'zero' || access === 'trim') return 'skip';
    return 'unallocated';
  }
  if (device === NoDevice) return access === 'trim' ? 'skip' : 'invalid';
  if (state & ExtentState.NoWrite) {
    if (access === 'read') return 'piece';
    return access === 'trim' ? 'skip' : 'nowrite';
  }
  return 'piece';
}

function appendPiece(pieces: Piece[], fd: number, fileOffset: number, rangeOffset: number, length: number): void {
  const last = pieces[pieces.length - 1];
  if (last && last.fd === fd && (fd === ZeroPiece || last.fileOffset + last.length === fileOffset) && last.rangeOffset + last.length === rangeOffset) {
    last.length += length;
    return;
  }
  pieces.push({ fd, fileOffset, rangeOffset, length });
}

/** The parts of `pieces` that fall inside [rangeOffset, rangeOffset + length), clipped. */
export function clipPieces(pieces: readonly Piece[], rangeOffset: number, length: number): Piece[] {
  const clipped: Piece[] = [];
  const end = rangeOffset + length;
  for (const piece of pieces) {
    const from = Math.max(piece.rangeOffset, rangeOffset);
    const to = Math.min(piece.rangeOffset + piece.length, end);
    if (from >= to) continue;
    const shift = from - piece.rangeOffset;
    clipped.push({ fd: piece.fd, fileOffset: piece.fd === ZeroPiece ? 0 : piece.fileOffset + shift, rangeOffset: from, length: to - from });
  }
  return clipped;
}

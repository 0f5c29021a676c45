/**
 * The epoch flip: how one writer replaces a mapping table under N lock-free readers without any I/O ever
 * seeing a half-updated table, and without any I/O of the old epoch still in flight once the new one is live.
 *
 * Actors. One writer per table (the agent's main thread, TableWriter). Readers are I/O threads (TableReader),
 * each with its own in-flight counter slot (layout.ts). The byte layout is in layout.ts; the protocol is here.
 *
 *   header: Generation | Blocking | DrainSignal | ... | slot 0 in-flight | slot 1 in-flight | ...
 *   copy[Generation & 1]        = active   (readers only)
 *   copy[(Generation & 1) ^ 1]  = inactive (writer only)
 *
 * Writer, one change (stage -> commit, like device-mapper's load -> resume):
 *   W1 stage: bring the inactive copy level with the active one by copying back only the entries the last
 *      change touched (the two copies differ exactly there), then write the change, the epoch, geometry and
 *      device fds into the inactive copy. Readers never look at it (I1), so plain writes suffice. O(k).
 *   W2 Atomics.store(Blocking, 1): new I/O stops at R3 and waits.
 *   W3 drain: wait until every reader slot's in-flight counter is 0, sleeping on DrainSignal (Atomics.waitAsync,
 *      the writer's event loop keeps running). If the timeout passes first: store(Blocking, 0), notify, count a
 *      DrainTimeout, and fail with VDM_TABLE_DRAIN_TIMEOUT. The active copy is untouched; the staged copy stays
 *      inactive and the next stage levels it again (W1), so a failed flip changes nothing.
 *   W4 Atomics.store(Generation, g + 1): the flip. Active copy and epoch change in this one store (the epoch
 *      lives inside the copy), and the SC store publishes every plain write of W1 to any reader whose
 *      Atomics.load of Generation sees g + 1.
 *   W5 Atomics.store(Blocking, 0), Atomics.notify(Blocking) and notify(Generation): held I/O retries.
 *
 * Reader, one I/O request:
 *   R1 g = Atomics.load(Generation).
 *   R2 Atomics.add(own slot, 1): announce an I/O in flight. (A thread counts itself once in its slot while it
 *      has any request in flight; later requests only re-check Blocking, see TableReader.enter.)
 *   R3 if Atomics.load(Blocking) == 1 or Atomics.load(Generation) != g: Atomics.sub(own slot, 1), signal the
 *      drain (R5), and wait for Blocking to drop before starting again at R1.
 *   R4 read entries, fds and epoch of copy g & 1 with plain loads; issue the I/O.
 *   R5 on completion of every I/O of the request: Atomics.sub(own slot, 1); if Atomics.load(Blocking) == 1,
 *      Atomics.add(DrainSignal, 1) and Atomics.notify(DrainSignal) so a draining writer re-counts.
 *
 * Invariants (tested in test/table/epoch-flip.test.ts and the stress test test/race/flip-stress.test.ts):
 *   I1 No reader reads a copy while the writer writes it. Dekker's argument over sequentially consistent
 *      Atomics: the writer stores Blocking (W2) then loads the slots (W3); a reader stores its slot (R2) then
 *      loads Blocking (R3). At least one sees the other: either the writer counts the reader and waits for it,
 *      or the reader sees Blocking and backs off. A reader that passes R3 after W5 loads Generation after W4,
 *      sees g + 1 != g and backs off too. So between W3 and the next stage, nobody is inside the old copy.
 *   I2 Every I/O completes against the mapping of the epoch it started in: the flip waits (W3) for all I/O
 *      counted at R2 to reach R5, and no I/O is counted on the old generation after W2.
 *   I3 A flip never leaves I/O blocked forever: W3 has a timeout, and every exit of commit lowers Blocking.
 *   I4 A stage costs O(entries changed now + entries changed last time), never a copy of the whole table,
 *      except after a full load (loadDocument), which is O(n) anyway.
 *
 * Thread: TableWriter runs on one thread only (the agent's main thread); at most one commit at a time.
 * TableReader runs in any thread, one instance per thread, each with its own slot.
 * Errors leaving: VDM_TABLE_DRAIN_TIMEOUT, VDM_TABLE_TOO_LARGE, VDM_TABLE_INVALID (bad geometry).
 */
import { VdmapError } from '../errors/error.js';
import {
  activeCopyOf, copyAll, copyEntry, copyEpoch, copyExtentCount, copyExtentSizeLog2, type CopyIndex, Header,
  readerSlotWord, type TableViews, writeCopyGeometry, writeDeviceFds, writeEntry,
} from './layout.js';

export interface Geometry {
  epoch: number;
  extentSizeLog2: number;
  extentCount: number;
  /** fd of each device slot. */
  deviceFds: readonly number[];
}

export interface CommitOptions {
  /** How long W3 may wait for in-flight I/O; default 5000 ms. */
  drainTimeoutMs?: number;
}

export const DefaultDrainTimeoutMs = 5000;

/** A change being built in the inactive copy (W1). Obtain from TableWriter.stage(); commit or drop it. */
export class StagedTable {
  /** @internal */ constructor(private readonly writer: TableWriter, readonly copy: CopyIndex, readonly geometry: Geometry) {}

  /** Sets one entry of the staged version. */
  set(extent: number, device: number, physicalExtent: number, state: number): void {
    this.writer.recordChange(this, extent);
    writeEntry(this.writer.views, this.copy, extent, device, physicalExtent, state);
  }
}

export class TableWriter {
  private generation: number;
  /** Extents where the inactive copy differs from the active one; 'all' after a full load. */
  private divergence: number[] | 'all' = [];
  private staged: StagedTable | undefined;
  private committing = false;

  constructor(readonly views: TableViews) {
    this.generation = Atomics.load(views.header, Header.Generation);
  }

  get activeCopy(): CopyIndex {
    return activeCopyOf(this.generation);
  }

  get epoch(): number {
    return copyEpoch(this.views, this.activeCopy);
  }

  get isBlocking(): boolean {
    return Atomics.load(this.views.header, Header.Blocking) === 1;
  }

  /** W1: levels the inactive copy with the active one and starts a change on top of it. */
  stage(geometry: Geometry): StagedTable {
    if (this.committing) throw new Error('TableWriter.stage called while a commit is in progress');
    checkGeometry(this.views, geometry);
    const active = this.activeCopy;
    const inactive = (active ^ 1) as CopyIndex;
    this.levelInactive(active, inactive);
    writeCopyGeometry(this.views, inactive, geometry.epoch, geometry.extentSizeLog2, geometry.extentCount);
    writeDeviceFds(this.views, inactive, geometry.deviceFds);
    this.divergence = [];
    this.staged = new StagedTable(this, inactive, geometry);
    return this.staged;
  }

  /** W1 for a whole table: the inactive copy becomes exactly `fill`'s entries (O(n)). */
  stageFull(geometry: Geometry, fill: (stage: StagedTable) => void): StagedTable {
    const stage = this.stage(geometry);
    this.divergence = 'all';
    fill(stage);
    return stage;
  }

  /** @internal Called by StagedTable.set. */
  recordChange(stage: StagedTable, extent: number): void {
    if (stage !== this.staged) throw new Error('this staged table was superseded or already committed');
    if (extent < 0 || extent >= stage.geometry.extentCount || !Number.isInteger(extent)) {
      throw new VdmapError('VDM_TABLE_INVALID', `extent ${extent} is outside the table (0..${stage.geometry.extentCount - 1})`);
    }
    if (this.divergence !== 'all') this.divergence.push(extent);
  }

  /** W2..W5: makes the staged version live. Rejects with VDM_TABLE_DRAIN_TIMEOUT and changes nothing if I/O does not drain. */
  async commit(stage: StagedTable, options: CommitOptions = {}): Promise<void> {
    if (stage !== this.staged) throw new Error('this staged table was superseded or already committed');
    this.staged = undefined;
    const wasBlocking = this.isBlocking;
    this.committing = true;
    try {
      this.raiseBlocking();                                             // W2
      await this.drainInflight(options.drainTimeoutMs ?? DefaultDrainTimeoutMs); // W3
      this.generation += 1;
      Atomics.store(this.views.header, Header.Generation, this.generation); // W4
      Atomics.notify(this.views.header, Header.Generation);
    } finally {
      this.committing = false;
      if (!wasBlocking) this.lowerBlocking();                           // W5 (also the undo of W2)
    }
  }

  /**
   * A drain request from the controller: block new I/O and resolve once in-flight I/O has drained. The table
   * stays blocked (commits may follow) until unblock(). On timeout it unblocks and rejects.
   */
  async block(drainTimeoutMs = DefaultDrainTimeoutMs): Promise<void> {
    const wasBlocking = this.isBlocking;
    this.raiseBlocking();
    try {
      await this.drainInflight(drainTimeoutMs);
    } catch (error) {
      if (!wasBlocking) this.lowerBlocking();
      throw error;
    }
  }

  unblock(): void {
    this.lowerBlocking();
  }

  /** Sum of all reader slots' in-flight counters. */
  inflight(): number {
    let total = 0;
    for (let slot = 0; slot < this.views.readerSlots; slot++) total += Atomics.load(this.views.header, readerSlotWord(slot));
    return total;
  }

  /** Clears a reader slot whose thread died: its ring is gone, so its I/O can no longer complete or be counted. */
  resetReaderSlot(slot: number): void {
    Atomics.store(this.views.header, readerSlotWord(slot), 0);
    Atomics.add(this.views.header, Header.DrainSignal, 1);
    Atomics.notify(this.views.header, Header.DrainSignal);
  }

  private levelInactive(active: CopyIndex, inactive: CopyIndex): void {
    if (this.divergence === 'all') {
      copyAll(this.views, active, inactive, Math.max(copyExtentCount(this.views, active), copyExtentCount(this.views, inactive)));
      return;
    }
    for (const extent of this.divergence) copyEntry(this.views, active, inactive, extent);
  }

  private raiseBlocking(): void {
    Atomics.store(this.views.header, Header.Blocking, 1);
  }

  private lowerBlocking(): void {
    Atomics.store(this.views.header, Header.Blocking, 0);
    Atomics.notify(this.views.header, Header.Blocking);
  }

  /** W3. */
  private async drainInflight(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const signal = Atomics.load(this.views.header, Header.DrainSignal);
      const inflight = this.inflight();
      if (inflight === 0) return;
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        Atomics.add(this.views.header, Header.DrainTimeouts, 1);
        throw new VdmapError('VDM_TABLE_DRAIN_TIMEOUT',
          `${inflight} I/O still in flight after ${timeoutMs} ms; the table was not changed`, { inflight, timeoutMs });
      }
      await waitWhileEqual(this.views.header, Header.DrainSignal, signal, remaining);
    }
  }
}

/**
 * Sleeps until header[index] may differ from `value`, or `timeoutMs` passes, without blocking the event loop.
 * Atomics.waitAsync alone does not keep Node's event loop alive, so a ref'd timer covers the wait: a worker
 * whose only pending work is held I/O must not exit while it waits.
 */
const MaxTimerMs = 2 ** 31 - 1;
async function waitWhileEqual(header: Int32Array, index: number, value: number, timeoutMs: number): Promise<void> {
  const wait = Atomics.waitAsync(header, index, value, timeoutMs);
  if (!wait.async) return;
  let timer: NodeJS.Timeout | undefined;
  const keepAlive = new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.min(MaxTimerMs, Math.ceil(timeoutMs) + 1)); });
  try {
    await Promise.race([wait.value, keepAlive]);
  } finally {
    clearTimeout(timer);
  }
}

function checkGeometry(views: TableViews, geometry: Geometry): void {
  const { epoch, extentSizeLog2, extentCount } = geometry;
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new VdmapError('VDM_TABLE_INVALID', `epoch ${epoch} is not a non-negative integer`);
  if (!Number.isInteger(extentSizeLog2) || extentSizeLog2 < 12 || extentSizeLog2 > 40) {
    throw new VdmapError('VDM_TABLE_INVALID', `extent size 2^${extentSizeLog2} is outside 4 KiB..1 TiB`);
  }
  if (!Number.isInteger(extentCount) || extentCount < 0 || extentCount > views.extentCapacity) {
    throw new VdmapError('VDM_TABLE_TOO_LARGE', `${extentCount} extents exceed this table's capacity of ${views.extentCapacity}`);
  }
}

/** Result of TableReader.enter when the table is blocked or flipped under the reader: wait and retry. */
export const Blocked = -1;

export class TableReader {
  private readonly slotWord: number;
  /** Requests of this thread in flight; the shared slot counts 1 while this is > 0 (see enter). */
  private inflight = 0;
  private copy: CopyIndex = 0;

  constructor(readonly views: TableViews, readonly slot: number) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= views.readerSlots) throw new RangeError(`reader slot ${slot} is outside 0..${views.readerSlots - 1}`);
    this.slotWord = readerSlotWord(slot);
  }

  /**
   * R1..R3: counts one request in flight and returns the copy to read, or Blocked (nothing counted: wait for
   * whenUnblocked() and retry). On success the caller must call exit() exactly once, after the request's
   * last I/O completed (R5).
   *
   * The shared slot is touched only when this thread goes from 0 to 1 request in flight (and back in exit):
   * while it is non-zero the writer cannot pass W3, so Generation cannot move and the cached copy stays
   * live; a further request only has to check that Blocking is not raised (R3) before joining.
   */
  enter(): CopyIndex | typeof Blocked {
    const header = this.views.header;
    if (this.inflight > 0) {
      if (Atomics.load(header, Header.Blocking) === 1) return Blocked;
      this.inflight++;
      return this.copy;
    }
    const generation = Atomics.load(header, Header.Generation);        // R1
    Atomics.add(header, this.slotWord, 1);                             // R2
    if (Atomics.load(header, Header.Blocking) === 1 || Atomics.load(header, Header.Generation) !== generation) { // R3
      this.leaveSlot();
      return Blocked;
    }
    this.inflight = 1;
    this.copy = activeCopyOf(generation);
    return this.copy;
  }

  /** R5. */
  exit(): void {
    if (this.inflight <= 0) throw new Error('TableReader.exit without a matching enter');
    if (--this.inflight === 0) this.leaveSlot();
  }

  private leaveSlot(): void {
    const header = this.views.header;
    Atomics.sub(header, this.slotWord, 1);
    if (Atomics.load(header, Header.Blocking) === 1) {
      Atomics.add(header, Header.DrainSignal, 1);
      Atomics.notify(header, Header.DrainSignal);
    }
  }

  generation(): number {
    return Atomics.load(this.views.header, Header.Generation);
  }

  isBlocking(): boolean {
    return Atomics.load(this.views.header, Header.Blocking) === 1;
  }

  epochOf(copy: CopyIndex): number {
    return copyEpoch(this.views, copy);
  }

  extentSizeLog2Of(copy: CopyIndex): number {
    return copyExtentSizeLog2(this.views, copy);
  }

  /** Resolves once Blocking is lowered (at once if it is not raised). Does not block the event loop. */
  async whenUnblocked(): Promise<void> {
    const header = this.views.header;
    while (Atomics.load(header, Header.Blocking) === 1) {
      await waitWhileEqual(header, Header.Blocking, 1, Infinity);
    }
  }

  /**
   * Resolves with true once Generation moves past `generation`, or false after `timeoutMs` or once `cancelled()`
   * says so (checked whenever the word is notified). Held I/O uses it to retry when the writer publishes a fix.
   */
  async whenGenerationPasses(generation: number, timeoutMs: number, cancelled: () => boolean = () => false): Promise<boolean> {
    const header = this.views.header;
    const deadline = performance.now() + timeoutMs;
    while (Atomics.load(header, Header.Generation) === generation) {
      const remaining = deadline - performance.now();
      if (remaining <= 0 || cancelled()) return false;
      await waitWhileEqual(header, Header.Generation, generation, remaining);
    }
    return true;
  }

  /** Wakes every request waiting in whenGenerationPasses (in every thread) so it re-checks `cancelled`. */
  wakeWaiters(): void {
    Atomics.notify(this.views.header, Header.Generation);
  }
}

/**
 * WriteLocks: orders writes to the same region of a virtual disk across every thread that serves the disk, so
 * that a read-modify-write of a partial block never loses a concurrent write.
 *
 * Owns: a small SharedArrayBuffer of stripe words, one per 1 MiB region of the virtual disk (hashed onto
 * StripeCount stripes). Knows nothing about tables or devices: it works in virtual byte offsets.
 *
 *   stripe word: 0 = free, n > 0 = n whole-block writers (shared), -1 = one read-modify-write (exclusive)
 *
 * Why: a write that covers whole blocks needs no lock against another whole-block write (overlapping writes
 * in flight may land in either order, as on any disk). A partial write reads the edge block, merges, and writes
 * it back; any write to that block between its read and its write would be lost. So partial writes take their
 * edge blocks' stripes exclusively and whole-block writes take their stripes shared.
 *
 * Invariants:
 *   W1. While a stripe is held exclusively, no other write that touches it is in flight.
 *   W2. No hold-and-wait: a writer that cannot take every stripe it needs releases those it took, waits for the
 *       one that blocked it, and starts over, so there is no deadlock.
 *   W3. Every acquire is paired with exactly one release (the VirtualDisk releases in a finally).
 * Thread: any; stripes are Atomics words shared by all threads serving the disk.
 */

const StripeShift = 20;
const RegionSize = 2 ** StripeShift;
export const StripeCount = 4096;
const Exclusive = -1;

export class WriteLocks {
  readonly stripes: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(StripeCount * 4)) {
    this.stripes = new Int32Array(buffer);
  }

  /** Takes the stripes of [start, end) shared, for a write of whole blocks. */
  async shared(start: number, end: number): Promise<StripeHold> {
    const stripes = stripesOf(start, end);
    for (;;) {
      const blocker = this.tryAll(stripes, false);
      if (blocker === undefined) return new StripeHold(this, stripes, false);
      await this.waitFor(blocker);
    }
  }

  /**
   * The data path's shared(), without a promise or an allocation: when [start, end) lies in one region whose
   * stripe is not held exclusively, takes that stripe shared and returns it; otherwise returns -1 and takes
   * nothing (call shared()). Pair with releaseSharedStripe (W3).
   */
  tryShareOne(start: number, end: number): number {
    const stripe = stripeOf(start);
    if (Math.floor(start / RegionSize) !== Math.floor((end - 1) / RegionSize)) return -1;
    return this.tryOne(stripe, false) ? stripe : -1;
  }

  releaseSharedStripe(stripe: number): void {
    Atomics.sub(this.stripes, stripe, 1);
    Atomics.notify(this.stripes, stripe);
  }

  /** Takes the stripes of the given byte positions exclusively, for a read-modify-write of their blocks. */
  async exclusive(positions: readonly number[]): Promise<StripeHold> {
    const stripes = [...new Set(positions.map(stripeOf))].sort((a, b) => a - b);
    for (;;) {
      const blocker = this.tryAll(stripes, true);
      if (blocker === undefined) return new StripeHold(this, stripes, true);
      await this.waitFor(blocker);
    }
  }

  /** @internal */
  releaseStripes(stripes: readonly number[], exclusive: boolean): void {
    for (const stripe of stripes) {
      if (exclusive) Atomics.store(this.stripes, stripe, 0);
      else Atomics.sub(this.stripes, stripe, 1);
      Atomics.notify(this.stripes, stripe);
    }
  }

  /** Takes all or nothing; returns the stripe that was busy, or undefined when all were taken. */
  private tryAll(stripes: readonly number[], exclusive: boolean): number | undefined {
    for (let i = 0; i < stripes.length; i++) {
      if (!this.tryOne(stripes[i], exclusive)) {
        this.releaseStripes(stripes.slice(0, i), exclusive);
        return stripes[i];
      }
    }
    return undefined;
  }

  private tryOne(stripe: number, exclusive: boolean): boolean {
    for (;;) {
      const value = Atomics.load(this.stripes, stripe);
      if (exclusive ? value !== 0 : value === Exclusive) return false;
      const wanted = exclusive ? Exclusive : value + 1;
      if (Atomics.compareExchange(this.stripes, stripe, value, wanted) === value) return true;
    }
  }

  private async waitFor(stripe: number): Promise<void> {
    const value = Atomics.load(this.stripes, stripe);
    if (value === 0) return;
    const wait = Atomics.waitAsync(this.stripes, stripe, value, 50);
    if (wait.async) {
      // waitAsync does not keep the event loop alive; the 50 ms bound re-checks even if a notify is missed.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([wait.value, new Promise((resolve) => { timer = setTimeout(resolve, 51); })]);
      clearTimeout(timer);
    }
  }
}

export class StripeHold {
  private released = false;
  constructor(private readonly locks: WriteLocks, private readonly stripes: readonly number[], private readonly isExclusive: boolean) {}

  release(): void {
    if (this.released) throw new Error('stripe hold released twice');
    this.released = true;
    this.locks.releaseStripes(this.stripes, this.isExclusive);
  }
}

function stripeOf(position: number): number {
  return Math.floor(position / RegionSize) % StripeCount;
}

function stripesOf(start: number, end: number): number[] {
  const first = Math.floor(start / RegionSize);
  const last = Math.floor((end - 1) / RegionSize);
  if (last - first + 1 >= StripeCount) return Array.from({ length: StripeCount }, (_, i) => i);
  const stripes = new Set<number>();
  for (let region = first; region <= last; region++) stripes.add(region % StripeCount);
  return [...stripes].sort((a, b) => a - b);
}

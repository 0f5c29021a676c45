/**
 * I/O counts and latency histograms kept inside an I/O worker and posted to the main thread in batches, so the
 * data path never sends a message per request.
 *
 * Owns: the per-(disk, operation) counters, the fixed latency buckets, the wrapper that measures an Export's
 * calls, and the plain snapshot that crosses postMessage. Knows nothing about Prometheus (src/agent/
 * agent-metrics.ts adds snapshots up) nor about what an Export does.
 *
 * Invariants:
 *   IS1. The cost per request is two performance.now() calls, a bucket search over IO_LATENCY_BUCKETS and a few
 *        additions; nothing is allocated per request once a (disk, operation) pair was seen.
 *   IS2. take() returns everything counted since the previous take() and resets the counters: every request
 *        is counted in exactly one snapshot.
 *
 * Thread: one I/O worker (each has its own IoStats); snapshots are read on the agent's main thread.
 */
import type { Export } from '../../nbd/export.js';

/** Upper bounds in seconds; a last, implicit bucket is +Inf. */
export const IO_LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] as const;

export type IoOperationName = 'read' | 'write' | 'flush' | 'trim' | 'zero' | 'block-status';

export interface IoCounts {
  disk: string;
  operation: IoOperationName;
  count: number;
  errors: number;
  bytes: number;
  /** Sum of latencies, seconds. */
  seconds: number;
  /** Requests per bucket of IO_LATENCY_BUCKETS, then one for +Inf (not cumulative). */
  buckets: number[];
}

export interface IoStatsSnapshot {
  counts: IoCounts[];
}

export class IoStats {
  private readonly counts = new Map<string, IoCounts>();

  record(disk: string, operation: IoOperationName, bytes: number, seconds: number, failed: boolean): void {
    this.add(this.entry(disk, operation), bytes, seconds, failed);
  }

  /** The counters of one (disk, operation) pair, made on first use and kept (take() resets them in place). */
  private entry(disk: string, operation: IoOperationName): IoCounts {
    const key = `${operation}\u0000${disk}`;
    let entry = this.counts.get(key);
    if (entry === undefined) {
      entry = { disk, operation, count: 0, errors: 0, bytes: 0, seconds: 0, buckets: new Array<number>(IO_LATENCY_BUCKETS.length + 1).fill(0) };
      this.counts.set(key, entry);
    }
    return entry;
  }

  private add(entry: IoCounts, bytes: number, seconds: number, failed: boolean): void {
    entry.count++;
    if (failed) entry.errors++;
    else entry.bytes += bytes;
    entry.seconds += seconds;
    let bucket = 0;
    while (bucket < IO_LATENCY_BUCKETS.length && seconds > IO_LATENCY_BUCKETS[bucket]) bucket++;
    entry.buckets[bucket]++;
  }

  /** IS2: the counts since the last take, or undefined when nothing happened. */
  take(): IoStatsSnapshot | undefined {
    const counts = [...this.counts.values()].filter((entry) => entry.count > 0).map((entry) => ({ ...entry, buckets: [...entry.buckets] }));
    for (const entry of this.counts.values()) {
      entry.count = 0;
      entry.errors = 0;
      entry.bytes = 0;
      entry.seconds = 0;
      entry.buckets.fill(0);
    }
    return counts.length === 0 ? undefined : { counts };
  }

  /** An Export that counts every call of `inner` into this IoStats (IS1). */
  measure(inner: Export): Export {
    const stats = this;
    // IS1 on the data path: each operation's counters are looked up once per disk, not per request.
    const entries: Partial<Record<IoOperationName, IoCounts>> = {};
    const entryOf = (operation: IoOperationName): IoCounts => (entries[operation] ??= stats.entry(inner.name, operation));
    // The caller gets the export's own promise: counting watches it from the side, so it adds no promise hop
    // between the completion and the caller (the NBD reply), and a rejection still reaches only the caller.
    const timed = <T>(operation: IoOperationName, bytes: number, call: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      const entry = entryOf(operation);
      const pending = call();
      pending.then(() => {
        stats.add(entry, bytes, (performance.now() - started) / 1000, false);
      }, () => {
        stats.add(entry, bytes, (performance.now() - started) / 1000, true);
      });
      return pending;
    };
    return {
      get name() { return inner.name; },
      get description() { return inner.description; },
      get size() { return inner.size; },
      get capabilities() { return inner.capabilities; },
      read: (offset, length) => timed('read', length, () => inner.read(offset, length)),
      write: (offset, data, fua) => timed('write', data.length, () => inner.write(offset, data, fua)),
      // X6 of export.ts: keep the export's zero-copy write path, timing the commit as the write.
      writeBuffer: inner.writeBuffer === undefined ? undefined : (offset, length) => {
        const buffer = inner.writeBuffer?.(offset, length);
        return buffer && { bytes: buffer.bytes, commit: (fua) => timed('write', length, () => buffer.commit(fua)), abandon: () => buffer.abandon() };
      },
      flush: () => timed('flush', 0, () => inner.flush()),
      trim: (offset, length, fua) => timed('trim', length, () => inner.trim(offset, length, fua)),
      writeZeroes: (offset, length, options, fua) => timed('zero', length, () => inner.writeZeroes(offset, length, options, fua)),
      cache: (offset, length) => inner.cache(offset, length),
      blockStatus: (offset, length) => timed('block-status', 0, () => inner.blockStatus(offset, length)),
    };
  }
}

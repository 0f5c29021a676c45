/**
 * I/O counts and latency histograms kept inside an I/O worker and posted to the main thread in batches, so the
 * data path never sends a message per request.
 *
 * Owns: the per-(disk, operation) counters, the fixed latency buckets, the meters the NBD transmissions report
 * settled requests to, and the plain snapshot that crosses postMessage. Knows nothing about Prometheus (src/agent/
 * agent-metrics.ts adds snapshots up) nor about what an Export does.
 *
 * Invariants:
 *   IS1. The cost per request is a bucket search over IO_LATENCY_BUCKETS and a few additions (the transmission
 *        reads the clock twice); nothing is allocated per request once a (disk, operation) pair was seen.
 *   IS2. take() returns everything counted since the previous take() and resets the counters: every request
 *        is counted in exactly one snapshot.
 *
 * Thread: one I/O worker (each has its own IoStats); snapshots are read on the agent's main thread.
 */
import type { RequestMeter } from '../../nbd/transmission.js';
import { NBD_CMD_BLOCK_STATUS, NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_TRIM, NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES } from '../../nbd/protocol.js';

/** Upper bounds in seconds; a last, implicit bucket is +Inf. */
export const IO_LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] as const;

export type IoOperationName = 'read' | 'write' | 'flush' | 'trim' | 'zero' | 'block-status';

/** The operation each counted NBD command is filed under. */
const OperationOfCommand: Partial<Record<number, IoOperationName>> = {
  [NBD_CMD_READ]: 'read', [NBD_CMD_WRITE]: 'write', [NBD_CMD_FLUSH]: 'flush', [NBD_CMD_TRIM]: 'trim',
  [NBD_CMD_WRITE_ZEROES]: 'zero', [NBD_CMD_BLOCK_STATUS]: 'block-status',
};

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

  /** A meter for the NBD connections serving `disk` (IS1): the transmission tells it of every settled request. */
  meterFor(disk: string): RequestMeter {
    // IS1 on the data path: each operation's counters are looked up once per meter, not per request.
    const entries: Array<IoCounts | undefined> = [];
    return {
      settled: (command, bytes, seconds, failed) => {
        const operation = OperationOfCommand[command];
        if (operation === undefined) return; // NBD_CMD_CACHE: advisory, no I/O
        const entry = entries[command] ??= this.entry(disk, operation);
        this.add(entry, bytes, seconds, failed);
      },
    };
  }
}

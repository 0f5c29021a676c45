/**
 * Migrator: moves extents of a disk from one physical place to another while clients use it, the way a
 * controller migrates: mark the extent NOWRITE (the flip drains writes in flight; new ones are held), copy its
 * physical extent to a free one through the bulk pool (O_DIRECT, made durable), flip the mapping to the copy with
 * the state cleared (held writes resume against it). Reads pass throughout.
 *
 * Owns: the soak's churn loop, the map of which physical extents are free, and its counts.
 * Does not know: NBD or fio (bench/soak.ts drives the clients).
 *
 * Invariants:
 *   M1. One migration at a time, each a NOWRITE delta, a copy, and a VALID delta of the same extent, in order.
 *   M2. stop() resolves after the migration in progress finished; the table then maps every extent VALID.
 * Thread: the agent's main thread (it owns the AgentDisk's writer).
 */
import type { AgentDisk } from '../../src/agent/agent-disk.js';
import { BulkPool } from '../../src/agent/workers/bulk-pool.js';
import { ExtentState } from '../../src/table/document.js';

export interface MigratorOptions {
  disk: AgentDisk;
  deviceId: string;
  deviceFd: number;
  extentSize: number;
  /** The physical extent of each virtual extent now (changed in place as extents move). */
  physical: number[];
  /** Physical extents no virtual extent uses. */
  free: number[];
  /** The epoch of the table now. */
  epoch: number;
  /** Pause between migrations. */
  everyMs: number;
}

export interface MigrationCounts {
  migrations: number;
  failures: string[];
}

export interface RunningMigrator {
  stop(): Promise<MigrationCounts>;
}

export function startMigrator(options: MigratorOptions): RunningMigrator {
  const bulk = new BulkPool({ threads: 1 });
  const counts: MigrationCounts = { migrations: 0, failures: [] };
  let epoch = options.epoch;
  let stopping = false;
  let random = 12345;
  const next = (n: number) => (random = (Math.imul(random, 1664525) + 1013904223) >>> 0) % n;

  const setExtent = (extent: number, physicalExtent: number, state: number) => options.disk.applyDelta({
    disk: options.disk.name, fromEpoch: epoch, toEpoch: epoch + 1, devices: [options.deviceId], extent: Uint32Array.of(extent),
    device: Int32Array.of(0), physicalExtent: Uint32Array.of(physicalExtent), state: Uint8Array.of(state),
  }, { drainTimeoutMs: 10_000 }).then(() => { epoch++; });

  /** M1. */
  async function migrateOne(): Promise<void> {
    const extent = next(options.physical.length);
    const from = options.physical[extent];
    const to = options.free.splice(next(options.free.length), 1)[0];
    await setExtent(extent, from, ExtentState.NoWrite);
    try {
      await bulk.copyRange({
        sourceFd: options.deviceFd, sourceOffset: from * options.extentSize,
        targetFd: options.deviceFd, targetOffset: to * options.extentSize, length: options.extentSize,
      });
    } catch (error) {
      await setExtent(extent, from, ExtentState.Valid); // M2: the extent stays where it was, writable again
      options.free.push(to);
      throw error;
    }
    await setExtent(extent, to, ExtentState.Valid);
    options.physical[extent] = to;
    options.free.push(from);
    counts.migrations++;
  }

  const loop = (async () => {
    while (!stopping) {
      try {
        await migrateOne();
      } catch (error) {
        counts.failures.push(String(error));
        if (counts.failures.length >= 10) return;
      }
      await new Promise((resolve) => setTimeout(resolve, options.everyMs));
    }
  })();

  return {
    async stop(): Promise<MigrationCounts> {
      stopping = true;
      await loop;
      await bulk.close();
      return counts;
    },
  };
}

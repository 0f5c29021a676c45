/**
 * TableCommitter: every change of a disk's table, whatever asked for it, in three phases (device-mapper's
 * load -> resume, controller side):
 *
 *   1. stage     the caller's build() turns the current table into the next one (a parsed push, an
 *                allocation, a state change, a new disk's first table); it may refuse with every problem named.
 *   2. commit    inside the same store transaction the store validates the table against the devices and the
 *                disk read in that transaction and stores it as the next epoch, durably (store.ts ST1, ST4).
 *   3. push      only then is any agent told: TableDistributor.committed() sends the delta, set-state or full
 *                table to every connected attached agent, in the disk's queue.
 *
 * Owns: the order of commits (the global allocation lock, then the disk's queue) and the metrics and log line
 * of every commit. Knows nothing about what a change means: build() does.
 *
 * Invariants:
 *   TC1. A refused change (build or store validation throws) commits nothing and pushes nothing.
 *   TC2. Nothing reaches an agent before its epoch is durable in the store.
 *   TC3. Commits hold one global lock: a SpaceMap built in build() from the other disks' latest tables cannot
 *        be outdated by a concurrent commit, so allocations and overlap checks across disks are exact.
 *   TC4. build() gets the cached latest table when the store's head matches it (no 9-byte-per-extent decode per
 *        commit); it must not modify it, and must build a new document.
 *
 * Thread: the controller's main thread.
 * Errors leaving: whatever build() throws, VDM_TABLE_INVALID, VDM_TABLE_EPOCH_STALE, VDM_STORE_*.
 */
import type { Logger } from 'pino';
import { toErrorRecord, VdmapError } from '../errors/error.js';
import type { TableDocument } from '../table/document.js';
import type { SetStateMessage } from '../wire/messages.js';
import { SpaceMap } from './allocation.js';
import type { KeyedQueue } from './keyed-queue.js';
import type { ControllerMetrics } from './metrics.js';
import type { ControllerStore, StoreTransaction } from './store/store.js';
import type { TableDistributor } from './table-sync.js';

export type CommitSource = 'admin' | 'allocation' | 'set-state' | 'create';

export interface StageContext {
  /** The latest table (undefined before the first); read-only (TC4). */
  current: TableDocument | undefined;
  tx: StoreTransaction;
  /** The extents every OTHER disk's latest table maps, at `extentSize` (TC3). */
  otherDisksSpace(extentSize: number): Promise<SpaceMap>;
}

export interface CommitRequest {
  source: CommitSource;
  expectedEpoch?: number;
  /** Phase 1. May run more than once (store.ts ST2); undefined: nothing to commit. */
  build(stage: StageContext): Promise<TableDocument | undefined>;
  /** For a pure state change: what to send agents one epoch behind instead of a delta. */
  setState?: Omit<SetStateMessage, 'type' | 'disk' | 'fromEpoch' | 'toEpoch'>;
}

export interface TableCommitterOptions {
  store: ControllerStore;
  tables: TableDistributor;
  queue: KeyedQueue;
  lock: KeyedQueue;
  metrics: ControllerMetrics;
  logger: Logger;
}

const GLOBAL = 'all-disks';

export class TableCommitter {
  private spaceCache: { key: string; space: SpaceMap } | undefined;

  constructor(private readonly options: TableCommitterOptions) {}

  /** Runs `work` under the global allocation lock (TC3), for changes that free or take space outside commit(). */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.options.lock.run(GLOBAL, work);
  }

  /** The three phases; resolves with the committed table, or undefined when build() had nothing to change. */
  commit(disk: string, request: CommitRequest): Promise<TableDocument | undefined> {
    return this.exclusive(() => this.options.queue.run(disk, () => this.commitNow(disk, request)));
  }

  private async commitNow(disk: string, request: CommitRequest): Promise<TableDocument | undefined> {
    const { store, tables, metrics, logger } = this.options;
    const previous = await tables.latest(disk);
    let staged: TableDocument | undefined;
    let epoch: number | undefined;
    try {
      epoch = await store.transaction(async (tx) => {
        const head = await tx.getTableHead(disk);
        const current = head === undefined ? undefined
          : previous?.epoch === head.epoch ? previous : await tx.getTable(disk);
        staged = await request.build({ current, tx, otherDisksSpace: (extentSize) => this.otherDisksSpace(disk, extentSize, tx) });
        if (staged === undefined) return undefined;
        return tx.commitTable(disk, staged, { expectedEpoch: request.expectedEpoch });
      });
    } catch (error) {
      const record = toErrorRecord(error);
      metrics.pushRefused(request.source, record.code);
      logger.warn({ disk, source: request.source, code: record.code, problems: record.details?.problemCount }, `table change refused: ${record.message}`);
      throw error;
    }
    if (epoch === undefined || staged === undefined) return undefined;
    const doc: TableDocument = { ...staged, epoch };
    metrics.committed(disk, epoch, request.source);
    logger.info({ disk, epoch, source: request.source }, 'table committed');
    const setState = request.setState === undefined ? undefined
      : { type: 'set-state' as const, disk, fromEpoch: epoch - 1, toEpoch: epoch, ...request.setState };
    await tables.committed(doc, previous?.epoch === epoch - 1 ? previous : undefined, setState); // TC2
    return doc;
  }

  /**
   * TC3: a SpaceMap of every disk's latest table but `disk`'s, read under the global lock. The last one built
   * is kept with what it was built from (devices, other disks and their epochs) and copied when asked for again
   * unchanged, so repeated pushes to one disk do not re-mark every other disk's table each time.
   */
  private async otherDisksSpace(disk: string, extentSize: number, tx: StoreTransaction): Promise<SpaceMap> {
    const devices = await tx.listDevices();
    const others: TableDocument[] = [];
    for (const other of await tx.listDisks()) {
      if (other.name === disk) continue;
      const doc = await this.options.tables.latest(other.name);
      if (doc !== undefined) others.push(doc);
    }
    const key = [disk, extentSize, ...devices.map((device) => `${device.id}:${device.size}`), '|',
      ...others.map((doc) => `${doc.disk}@${doc.epoch}#${identity(doc)}`)].join(',');
    if (this.spaceCache?.key !== key) {
      const space = new SpaceMap(extentSize, devices);
      for (const doc of others) space.markTable(doc);
      this.spaceCache = { key, space };
    }
    return this.spaceCache.space.clone();
  }
}

const identities = new WeakMap<TableDocument, number>();
let nextIdentity = 1;

/** A number unique to this document object (a disk removed and created again restarts its epochs). */
function identity(doc: TableDocument): number {
  let id = identities.get(doc);
  if (id === undefined) {
    id = nextIdentity++;
    identities.set(doc, id);
  }
  return id;
}

/** A VDM_DISK_NO_SPACE for `count` extents of `disk` on `devices`. */
export function noSpace(disk: string, count: number, devices: readonly string[]): VdmapError {
  return new VdmapError('VDM_DISK_NO_SPACE',
    `no free extent left for ${count} extent(s) of disk '${disk}' on ${devices.length === 0 ? 'any device' : devices.map((id) => `'${id}'`).join(', ')}`,
    { disk, extents: count, devices: [...devices] });
}

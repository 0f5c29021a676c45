/**
 * LmdbStore: the ControllerStore (store.ts) on one LMDB environment, the controller's default embedded store.
 * The only code that knows the LMDB keys.
 *
 * Key schema (one environment, one named sub-database per kind; keys in lmdb's ordered-binary encoding):
 *
 *   sub-database   key                 value
 *   meta           'schema'            CBOR {version: 1}
 *   devices        id                  CBOR DeviceRecord
 *   disks          name                CBOR DiskRecord
 *   agents         name                CBOR AgentRecord (credential as a 32-byte byte string)
 *   attachments    [disk, agent]       CBOR AttachmentRecord
 *   heads          disk                CBOR TableHead: latest epoch, its device list, epochs kept
 *   tables         [disk, epoch]       table-bytes.ts (runs or binary columns), one key per kept version
 *
 *   Names are ASCII (store.ts NAME_RULE), so JavaScript string order is the keys' byte order; epochs are
 *   numbers, which ordered-binary sorts numerically, so [disk, 0] .. [disk, 2^53] spans a disk's versions.
 *
 * Transactions (store.ts ST2) are optimistic, as an etcd STM would be:
 *   X1. `work` runs on the main thread against lmdb's read snapshot; each read is recorded (key or range, and
 *       the bytes seen; a key read twice returns what was recorded); writes are buffered, and later reads in
 *       the same transaction see them.
 *   X2. Commit runs in one LMDB write transaction (a child transaction, so a throw rolls everything back): it
 *       re-reads every recorded key and range; if any differs the commit writes nothing and `work` runs again
 *       on a fresh snapshot (at most MAX_ATTEMPTS times, then VDM_STORE_CONFLICT). Otherwise it applies the
 *       buffered writes. Two transactions that read and write the same head thus serialize (ST3).
 *   X4. A throw from `work` is passed on only if its reads are still current; otherwise `work` runs again,
 *       so a refusal (VDM_TABLE_EPOCH_STALE, say) never rests on a snapshot that was already out of date.
 *   X5. Durability (ST1): the environment is opened with overlappingSync false and noSync false, so LMDB's
 *       commit itself fsyncs before lmdb-js resolves the commit promise; the store then also awaits
 *       `flushed`, which is the same promise under these options and the guard should they change. lmdb-js's
 *       default on Linux (overlappingSync true) would resolve at commit and sync later: a machine crash could
 *       lose an acknowledged write, so it is off.
 *   X6. One owner: LMDB itself lets several processes open an environment, so open() first takes the
 *       owner lock (owner-lock.ts) on `ownedDirectory` (the controller's data directory; default the store's
 *       own) and close() releases it after LMDB is closed. A second opener, in this or another process, gets
 *       VDM_STORE_LOCKED and nothing in the directory is touched.
 *
 * Files: the directory is created owner-only (0700) and the LMDB files are made 0600: agent credentials live
 * here (wire/auth.ts).
 *
 * Thread: the controller's main thread; one LmdbStore per environment, in one process at a time (X6).
 * Errors leaving: VDM_STORE_OPEN, VDM_STORE_LOCKED, VDM_STORE_CLOSED, VDM_STORE_CONFLICT, VDM_STORE_CORRUPT, VDM_STORE_NOT_FOUND,
 * VDM_STORE_IN_USE, VDM_STORE_INVALID_RECORD, VDM_TABLE_INVALID, VDM_TABLE_EPOCH_STALE.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Encoder } from 'cbor-x';
import { type Database, open, type RootDatabase } from 'lmdb';
import type { ErrorCode } from '../../errors/catalogue.js';
import { VdmapError } from '../../errors/error.js';
import type { TableDocument } from '../../table/document.js';
import { type DeviceGeometry, type TableProblem, tableProblemsError, validateDocument } from '../../table/validate.js';
import {
  type AgentRecord, type AttachmentRecord, checkAgent, checkAttachment, checkDevice, checkDisk, checkTableHead,
  type CommitOptions, type ControllerStore, DEFAULT_KEEP_VERSIONS, type DeviceRecord, type DiskRecord,
  type RecordCheck, type StoreTransaction, type TableHead,
} from './store.js';
import { OwnerLock } from './owner-lock.js';
import { decodeTableBytes, encodeTableBytes } from './table-bytes.js';

const SCHEMA_VERSION = 1;
const MAX_ATTEMPTS = 32;
const SUB_DATABASES = ['meta', 'devices', 'disks', 'agents', 'attachments', 'heads', 'tables'] as const;
type SubDatabase = (typeof SUB_DATABASES)[number];
type Key = string | [string, string] | [string, number];
type Databases = Record<SubDatabase, Database<Buffer, Key>>;

const recordEncoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

export interface LmdbStoreOptions {
  /** Table versions kept per disk (store.ts ST3). */
  keepVersions?: number;
  /** The directory this store's process owns while it is open (owner-lock.ts); default: the store directory. */
  ownedDirectory?: string;
}

export class LmdbStore implements ControllerStore {
  private closed = false;

  private constructor(private readonly root: RootDatabase<Buffer, Key>, private readonly databases: Databases,
    private readonly keepVersions: number, private readonly lock: OwnerLock) {}

  /** Opens (creating if needed) the store in directory `path`. */
  static async open(path: string, options: LmdbStoreOptions = {}): Promise<LmdbStore> {
    const keepVersions = options.keepVersions ?? DEFAULT_KEEP_VERSIONS;
    if (!Number.isSafeInteger(keepVersions) || keepVersions < 1) {
      throw new VdmapError('VDM_STORE_OPEN', `keepVersions must be a positive integer, not ${keepVersions}`);
    }
    const ownedDirectory = options.ownedDirectory ?? path;
    try {
      if (!existsSync(ownedDirectory)) mkdirSync(ownedDirectory, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new VdmapError('VDM_STORE_OPEN', `cannot create the directory ${ownedDirectory}: ${(error as Error).message}`,
        { path: ownedDirectory, cause: (error as Error).message });
    }
    const lock = OwnerLock.acquire(ownedDirectory); // X6: before anything else is opened or changed
    let root: RootDatabase<Buffer, Key>;
    try {
      if (!existsSync(path)) mkdirSync(path, { recursive: true, mode: 0o700 });
      root = open<Buffer, Key>({
        path, noSubdir: false, encoding: 'binary', overlappingSync: false, noSync: false, maxDbs: 16,
      });
      for (const file of ['data.mdb', 'lock.mdb']) chmodSync(join(path, file), 0o600);
    } catch (error) {
      lock.release();
      throw new VdmapError('VDM_STORE_OPEN', `cannot open the controller store at ${path}: ${(error as Error).message}`,
        { path, cause: (error as Error).message });
    }
    const databases = Object.fromEntries(SUB_DATABASES.map((name) =>
      [name, root.openDB<Buffer, Key>(name, { encoding: 'binary' })])) as Databases;
    const store = new LmdbStore(root, databases, keepVersions, lock);
    try {
      await store.checkSchema(path);
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  private async checkSchema(path: string): Promise<void> {
    const stored = this.databases.meta.get('schema');
    if (stored === undefined) {
      await this.root.childTransaction(() => this.databases.meta.putSync('schema', encodeRecord({ version: SCHEMA_VERSION })));
      await this.root.flushed;
      return;
    }
    const version = (decodeRecord(stored, 'meta/schema') as { version?: unknown }).version;
    if (version !== SCHEMA_VERSION) {
      throw new VdmapError('VDM_STORE_OPEN', `the store at ${path} has schema ${String(version)}, this controller reads ${SCHEMA_VERSION}`,
        { path, schema: version ?? null });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.root.close();
    } finally {
      this.lock.release();
    }
  }

  async transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      this.checkOpen();
      const tx = new LmdbTransaction(this.databases, this.keepVersions, true);
      let result: T;
      try {
        result = await work(tx);
      } catch (error) {
        // A refusal must rest on a consistent view too (X4): rethrow only if what `work` read is still current.
        this.checkOpen();
        if ((await this.root.childTransaction(() => tx.readsAreCurrent())) === true) throw error;
        this.root.resetReadTxn();
        continue;
      }
      this.checkOpen();
      const outcome = await this.root.childTransaction(() => tx.commitInto());
      if (outcome === 'committed') {
        await this.root.flushed;
        return result;
      }
      this.root.resetReadTxn();
    }
    throw new VdmapError('VDM_STORE_CONFLICT', `the change collided with concurrent changes ${MAX_ATTEMPTS} times`, { attempts: MAX_ATTEMPTS });
  }

  private checkOpen(): void {
    if (this.closed) throw new VdmapError('VDM_STORE_CLOSED', 'the controller store is closed');
  }

  /** A reader on the latest snapshot, untracked (reads outside a transaction). */
  private reader(): LmdbTransaction {
    this.checkOpen();
    return new LmdbTransaction(this.databases, this.keepVersions, false);
  }

  async getDevice(id: string): Promise<DeviceRecord | undefined> { return this.reader().getDevice(id); }
  async listDevices(): Promise<DeviceRecord[]> { return this.reader().listDevices(); }
  async getDisk(name: string): Promise<DiskRecord | undefined> { return this.reader().getDisk(name); }
  async listDisks(): Promise<DiskRecord[]> { return this.reader().listDisks(); }
  async getAgent(name: string): Promise<AgentRecord | undefined> { return this.reader().getAgent(name); }
  async listAgents(): Promise<AgentRecord[]> { return this.reader().listAgents(); }
  async listAttachments(filter?: { disk?: string; agent?: string }): Promise<AttachmentRecord[]> { return this.reader().listAttachments(filter); }
  async getTableHead(disk: string): Promise<TableHead | undefined> { return this.reader().getTableHead(disk); }
  async getTable(disk: string, epoch?: number): Promise<TableDocument | undefined> { return this.reader().getTable(disk, epoch); }

  putDevice(record: DeviceRecord): Promise<void> { return this.transaction((tx) => tx.putDevice(record)); }
  removeDevice(id: string): Promise<boolean> { return this.transaction((tx) => tx.removeDevice(id)); }
  putDisk(record: DiskRecord): Promise<void> { return this.transaction((tx) => tx.putDisk(record)); }
  removeDisk(name: string): Promise<boolean> { return this.transaction((tx) => tx.removeDisk(name)); }
  putAgent(record: AgentRecord): Promise<void> { return this.transaction((tx) => tx.putAgent(record)); }
  removeAgent(name: string): Promise<boolean> { return this.transaction((tx) => tx.removeAgent(name)); }
  attach(disk: string, agent: string): Promise<void> { return this.transaction((tx) => tx.attach(disk, agent)); }
  detach(disk: string, agent: string): Promise<boolean> { return this.transaction((tx) => tx.detach(disk, agent)); }
  commitTable(disk: string, doc: TableDocument, options?: CommitOptions): Promise<number> {
    return this.transaction((tx) => tx.commitTable(disk, doc, options));
  }
}

// ---- one transaction (X1, X2) ----

interface PointRead { database: SubDatabase; key: Key; bytes: Buffer | undefined }
interface RangeRead { database: SubDatabase; start: Key | undefined; end: Key | undefined; entries: [Key, Buffer][] }
interface BufferedWrite { database: SubDatabase; key: Key; bytes: Uint8Array | undefined }

class LmdbTransaction implements StoreTransaction {
  private readonly pointReads = new Map<string, PointRead>();
  private readonly rangeReads: RangeRead[] = [];
  private readonly writes = new Map<string, BufferedWrite>();

  constructor(private readonly databases: Databases, private readonly keepVersions: number,
    private readonly tracked: boolean) {}

  // -- raw access --

  private read(database: SubDatabase, key: Key): Buffer | Uint8Array | undefined {
    const id = identify(database, key);
    const written = this.writes.get(id);
    if (written !== undefined) return written.bytes;
    const earlier = this.pointReads.get(id);
    if (earlier !== undefined) return earlier.bytes;
    const bytes = this.databases[database].get(key);
    if (this.tracked) this.pointReads.set(id, { database, key, bytes });
    return bytes;
  }

  /** Entries with start <= key < end (whole sub-database when both are undefined), in key order, own writes included. */
  private readRange(database: SubDatabase, start?: Key, end?: Key): [Key, Uint8Array][] {
    const entries: [Key, Buffer][] = [];
    for (const { key, value } of this.databases[database].getRange({ start, end })) entries.push([key, Buffer.from(value)]);
    if (this.tracked) this.rangeReads.push({ database, start, end, entries });
    const merged = new Map<string, [Key, Uint8Array | undefined]>(entries.map(([key, bytes]) => [identify(database, key), [key, bytes]]));
    for (const [id, write] of this.writes) {
      if (write.database === database && inRange(write.key, start, end)) merged.set(id, [write.key, write.bytes]);
    }
    return [...merged.values()]
      .filter((entry): entry is [Key, Uint8Array] => entry[1] !== undefined)
      .sort((a, b) => compareKeys(a[0], b[0]));
  }

  private write(database: SubDatabase, key: Key, bytes: Uint8Array | undefined): void {
    this.writes.set(identify(database, key), { database, key, bytes });
  }

  /** X2: runs inside the LMDB write transaction; checks everything before the first write. */
  commitInto(): 'committed' | 'conflict' {
    if (!this.readsAreCurrent()) return 'conflict';
    for (const write of this.writes.values()) {
      const database = this.databases[write.database];
      if (write.bytes === undefined) database.removeSync(write.key);
      else database.putSync(write.key, Buffer.from(write.bytes.buffer, write.bytes.byteOffset, write.bytes.byteLength));
    }
    return 'committed';
  }

  /** True when every recorded read would return the same bytes now (run inside an LMDB transaction). */
  readsAreCurrent(): boolean {
    for (const read of this.pointReads.values()) {
      if (!sameBytes(this.databases[read.database].get(read.key), read.bytes)) return false;
    }
    for (const range of this.rangeReads) {
      const now = [...this.databases[range.database].getRange({ start: range.start, end: range.end })];
      if (now.length !== range.entries.length) return false;
      for (let index = 0; index < now.length; index++) {
        const [key, bytes] = range.entries[index];
        if (compareKeys(now[index].key as Key, key) !== 0 || !sameBytes(now[index].value, bytes)) return false;
      }
    }
    return true;
  }

  // -- records --

  private getRecord<T>(database: SubDatabase, key: Key, check: RecordCheck<T>): T | undefined {
    const bytes = this.read(database, key);
    return bytes === undefined ? undefined : check(decodeRecord(bytes, `${database}/${keyText(key)}`), 'VDM_STORE_CORRUPT');
  }

  private listRecords<T>(database: SubDatabase, check: RecordCheck<T>, start?: Key, end?: Key): T[] {
    return this.readRange(database, start, end)
      .map(([key, bytes]) => check(decodeRecord(bytes, `${database}/${keyText(key)}`), 'VDM_STORE_CORRUPT'));
  }

  private putRecord<T>(database: SubDatabase, key: Key, value: T): void {
    this.write(database, key, encodeRecord(value));
  }

  async getDevice(id: string): Promise<DeviceRecord | undefined> { return this.getRecord('devices', id, checkDevice); }
  async listDevices(): Promise<DeviceRecord[]> { return this.listRecords('devices', checkDevice); }
  async getDisk(name: string): Promise<DiskRecord | undefined> { return this.getRecord('disks', name, checkDisk); }
  async listDisks(): Promise<DiskRecord[]> { return this.listRecords('disks', checkDisk); }
  async getAgent(name: string): Promise<AgentRecord | undefined> { return this.getRecord('agents', name, checkAgent); }
  async listAgents(): Promise<AgentRecord[]> { return this.listRecords('agents', checkAgent); }
  async getTableHead(disk: string): Promise<TableHead | undefined> { return this.getRecord('heads', disk, checkTableHead); }

  async listAttachments(filter: { disk?: string; agent?: string } = {}): Promise<AttachmentRecord[]> {
    const all = filter.disk === undefined
      ? this.listRecords('attachments', checkAttachment)
      : this.listRecords('attachments', checkAttachment, [filter.disk, ''], [filter.disk, KEY_STRING_END]);
    return all.filter((attachment) => filter.agent === undefined || attachment.agent === filter.agent);
  }

  async getTable(disk: string, epoch?: number): Promise<TableDocument | undefined> {
    const wanted = epoch ?? (await this.getTableHead(disk))?.epoch;
    if (wanted === undefined) return undefined;
    const bytes = this.read('tables', [disk, wanted]);
    return bytes === undefined ? undefined : decodeTableBytes(bytes, `tables/${disk}@${wanted}`);
  }

  async putDevice(record: DeviceRecord): Promise<void> {
    const device = checkDevice(record, 'VDM_STORE_INVALID_RECORD');
    const existing = await this.getDevice(device.id);
    const geometryChanges = existing !== undefined &&
      (existing.size !== device.size || existing.logicalBlockSize !== device.logicalBlockSize);
    if (geometryChanges) this.refuseIfDeviceInUse(device.id, 'change the size or block size of');
    this.putRecord('devices', device.id, device);
  }

  async removeDevice(id: string): Promise<boolean> {
    if ((await this.getDevice(id)) === undefined) return false;
    this.refuseIfDeviceInUse(id, 'remove');
    this.write('devices', id, undefined);
    return true;
  }

  /** ST5: the disks whose latest table lists the device. */
  private refuseIfDeviceInUse(id: string, action: string): void {
    const disks = this.listRecords('heads', checkTableHead).filter((head) => head.devices.includes(id)).map((head) => head.disk);
    if (disks.length > 0) {
      throw new VdmapError('VDM_STORE_IN_USE', `cannot ${action} device '${id}': the tables of ${disks.map((disk) => `'${disk}'`).join(', ')} use it`,
        { device: id, disks });
    }
  }

  async putDisk(record: DiskRecord): Promise<void> {
    const disk = checkDisk(record, 'VDM_STORE_INVALID_RECORD');
    const existing = await this.getDisk(disk.name);
    if (existing !== undefined && existing.extentSize !== disk.extentSize && (await this.getTableHead(disk.name)) !== undefined) {
      throw new VdmapError('VDM_STORE_IN_USE', `cannot change the extent size of disk '${disk.name}': it has tables`,
        { disk: disk.name, extentSize: existing.extentSize });
    }
    this.putRecord('disks', disk.name, disk);
  }

  async removeDisk(name: string): Promise<boolean> {
    if ((await this.getDisk(name)) === undefined) return false;
    // ST5: read in this transaction, so an attach committed meanwhile makes the commit rerun and refuse (X2).
    const agents = (await this.listAttachments({ disk: name })).map((attachment) => attachment.agent);
    if (agents.length > 0) {
      throw new VdmapError('VDM_STORE_IN_USE', `cannot remove disk '${name}': it is attached to ${agents.map((agent) => `'${agent}'`).join(', ')}; detach it first (vdmap disk detach ${name} AGENT)`,
        { disk: name, agents });
    }
    this.write('disks', name, undefined);
    this.write('heads', name, undefined);
    for (const [key] of this.readRange('tables', [name, 0], [name, EPOCH_END])) this.write('tables', key, undefined);
    return true;
  }

  async putAgent(record: AgentRecord): Promise<void> {
    const agent = checkAgent(record, 'VDM_STORE_INVALID_RECORD');
    this.putRecord('agents', agent.name, agent);
  }

  async removeAgent(name: string): Promise<boolean> {
    if ((await this.getAgent(name)) === undefined) return false;
    this.write('agents', name, undefined);
    for (const attachment of await this.listAttachments({ agent: name })) this.write('attachments', [attachment.disk, name], undefined);
    return true;
  }

  async attach(disk: string, agent: string): Promise<void> {
    const attachment = checkAttachment({ disk, agent }, 'VDM_STORE_INVALID_RECORD');
    if ((await this.getDisk(disk)) === undefined) throw notFound('disk', disk);
    if ((await this.getAgent(agent)) === undefined) throw notFound('agent', agent);
    this.putRecord('attachments', [disk, agent], attachment);
  }

  async detach(disk: string, agent: string): Promise<boolean> {
    if (this.read('attachments', [disk, agent]) === undefined) return false;
    this.write('attachments', [disk, agent], undefined);
    return true;
  }

  async commitTable(diskName: string, doc: TableDocument, options: CommitOptions = {}): Promise<number> {
    const disk = await this.getDisk(diskName);
    if (disk === undefined) throw notFound('disk', diskName);
    const head = await this.getTableHead(diskName);
    const current = head?.epoch ?? 0;
    if (options.expectedEpoch !== undefined && options.expectedEpoch !== current) {
      throw new VdmapError('VDM_TABLE_EPOCH_STALE', `disk '${diskName}' is at epoch ${current}, not at the expected epoch ${options.expectedEpoch} the change was built on; nothing changed`,
        { disk: diskName, epoch: current, expectedEpoch: options.expectedEpoch });
    }
    const epoch = current + 1;
    const stored: TableDocument = { ...doc, epoch };
    await this.refuseInvalidTable(disk, stored, current);
    this.write('tables', [diskName, epoch], encodeTableBytes(stored));
    const epochs = [...(head?.epochs ?? []), epoch];
    const pruned = epochs.splice(0, Math.max(0, epochs.length - this.keepVersions));
    for (const old of pruned) this.write('tables', [diskName, old], undefined);
    this.putRecord<TableHead>('heads', diskName, { disk: diskName, epoch, devices: [...doc.devices], epochs });
    return epoch;
  }

  /** ST4: validation against the devices and disk read in this transaction. */
  private async refuseInvalidTable(disk: DiskRecord, doc: TableDocument, currentEpoch: number): Promise<void> {
    const problems: TableProblem[] = doc.disk === disk.name ? [] : [{
      extent: null, code: 'VDM_TABLE_INVALID', message: `the table names disk '${doc.disk}', not '${disk.name}'`,
    }];
    if (doc.extentSize !== disk.extentSize) {
      problems.push({ extent: null, code: 'VDM_TABLE_INVALID', message: `extent size ${doc.extentSize} differs from the disk's ${disk.extentSize}` });
    }
    const devices = new Map<string, DeviceGeometry>();
    for (const id of Array.isArray(doc.devices) ? doc.devices : []) {
      const device = typeof id === 'string' ? await this.getDevice(id) : undefined;
      if (device !== undefined) devices.set(id, device);
    }
    problems.push(...validateDocument(doc, devices, { diskSize: disk.size }));
    if (problems.length > 0) throw tableProblemsError(problems, { disk: disk.name, stays: currentEpoch });
  }
}

// ---- keys and bytes ----

/** Above every ASCII name: [x, ''] .. [x, KEY_STRING_END] spans every [x, name]. */
const KEY_STRING_END = '\u007f';
const EPOCH_END = Number.MAX_SAFE_INTEGER;

function identify(database: SubDatabase, key: Key): string {
  return `${database}\u0000${JSON.stringify(key)}`;
}

function keyText(key: Key): string {
  return Array.isArray(key) ? key.join('@') : key;
}

/** The order of ordered-binary for these key shapes: numbers before strings, strings by code unit (ASCII). */
function compareKeys(a: Key, b: Key): number {
  const left = Array.isArray(a) ? a : [a];
  const right = Array.isArray(b) ? b : [b];
  for (let index = 0; index < Math.min(left.length, right.length); index++) {
    const x = left[index];
    const y = right[index];
    if (x === y) continue;
    if (typeof x !== typeof y) return typeof x === 'number' ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return left.length - right.length;
}

function inRange(key: Key, start: Key | undefined, end: Key | undefined): boolean {
  return (start === undefined || compareKeys(key, start) >= 0) && (end === undefined || compareKeys(key, end) < 0);
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** A copy: cbor-x returns a view of its reusable buffer. */
function encodeRecord(value: unknown): Buffer {
  return Buffer.from(recordEncoder.encode(value));
}

function decodeRecord(bytes: Uint8Array, where: string): unknown {
  try {
    return recordEncoder.decode(bytes);
  } catch (error) {
    throw new VdmapError('VDM_STORE_CORRUPT', `stored record ${where} is not CBOR: ${(error as Error).message}`, { key: where });
  }
}

function notFound(kind: string, name: string): VdmapError {
  const code: ErrorCode = 'VDM_STORE_NOT_FOUND';
  return new VdmapError(code, `${kind} '${name}' does not exist`, { kind, name });
}

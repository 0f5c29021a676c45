/**
 * The controller store interface: everything the controller keeps across restarts, behind one small API that
 * LMDB implements now (lmdb-store.ts) and etcd later.
 *
 * Owns: the record shapes, their rules (checkRecord below) and the transaction contract. Knows nothing about
 * keys, files or encodings (a backend's business) and nothing about agents' sessions.
 *
 * Contract every backend keeps:
 *   ST1. Durable before acknowledged: a write's promise resolves only after the change is on stable storage
 *        (LMDB: synced to disk; etcd: committed by a quorum).
 *   ST2. Serializable transactions: `transaction(work)` runs `work` against a consistent view and commits all
 *        of its writes atomically, or none. `work` may run more than once (on a conflict with a concurrent
 *        change), so it must have no effect outside `tx`. A throw from `work` aborts: nothing is written.
 *   ST3. Each disk's table epochs only grow: commitTable stores epoch head + 1 (1 for the first table) and
 *        keeps the last `keepVersions` epochs; concurrent commits get distinct, strictly increasing epochs.
 *   ST4. A table is validated (src/table/validate.ts) against the devices and disk size read in the same
 *        transaction before it is stored: a refused table changes nothing, and a device cannot disappear
 *        between validation and commit.
 *   ST5. A device listed by a disk's latest table cannot be removed or change geometry (VDM_STORE_IN_USE);
 *        a disk attached to any agent cannot be removed (VDM_STORE_IN_USE, details.agents: an agent may be
 *        serving it, and its extents would be freed under that agent's I/O), checked in the removing
 *        transaction; removing a disk removes its table versions; removing an agent, its attachments.
 *   ST6. Records are checked on the way in (VDM_STORE_INVALID_RECORD) and on the way out (VDM_STORE_CORRUPT).
 *
 * Thread: the controller's main thread.
 * Errors leaving: VDM_STORE_*, VDM_TABLE_INVALID, VDM_TABLE_EPOCH_STALE.
 */
import { type ErrorCode } from '../../errors/catalogue.js';
import { VdmapError } from '../../errors/error.js';
import type { TableDocument } from '../../table/document.js';

/** Where one agent's host sees a device. */
export interface DevicePath {
  agent: string;
  path: string;
}

export interface DeviceRecord {
  id: string;
  size: number;
  logicalBlockSize: number;
  paths: DevicePath[];
}

export interface DiskRecord {
  name: string;
  size: number;
  extentSize: number;
}

export interface AppliedEpoch {
  disk: string;
  epoch: number;
}

export interface AgentRecord {
  name: string;
  /** The secret issued by `vdmap agent enroll` (wire/auth.ts says why it is stored as is). */
  credential: Uint8Array;
  /** ms since the Unix epoch. */
  enrolledAt: number;
  lastSeen: number | null;
  applied: AppliedEpoch[];
}

export interface AttachmentRecord {
  disk: string;
  agent: string;
}

/** Written only by commitTable: the latest epoch of a disk, its device list, and the epochs still kept. */
export interface TableHead {
  disk: string;
  epoch: number;
  devices: string[];
  /** Ascending; the last is `epoch`. */
  epochs: number[];
}

export interface CommitOptions {
  /** Refuse with VDM_TABLE_EPOCH_STALE unless the disk's latest epoch is this (0: no table yet). */
  expectedEpoch?: number;
}

export interface StoreReader {
  getDevice(id: string): Promise<DeviceRecord | undefined>;
  listDevices(): Promise<DeviceRecord[]>;
  getDisk(name: string): Promise<DiskRecord | undefined>;
  listDisks(): Promise<DiskRecord[]>;
  getAgent(name: string): Promise<AgentRecord | undefined>;
  listAgents(): Promise<AgentRecord[]>;
  listAttachments(filter?: { disk?: string; agent?: string }): Promise<AttachmentRecord[]>;
  getTableHead(disk: string): Promise<TableHead | undefined>;
  /** The table at `epoch` (default: the latest), or undefined when that version is not kept. */
  getTable(disk: string, epoch?: number): Promise<TableDocument | undefined>;
}

export interface StoreWriter {
  putDevice(record: DeviceRecord): Promise<void>;
  /** False when there was no such device. */
  removeDevice(id: string): Promise<boolean>;
  putDisk(record: DiskRecord): Promise<void>;
  /** ST5: refused (VDM_STORE_IN_USE) while the disk is attached to an agent. */
  removeDisk(name: string): Promise<boolean>;
  putAgent(record: AgentRecord): Promise<void>;
  removeAgent(name: string): Promise<boolean>;
  /** Both must exist (VDM_STORE_NOT_FOUND); attaching twice is a no-op. */
  attach(disk: string, agent: string): Promise<void>;
  detach(disk: string, agent: string): Promise<boolean>;
  /** ST3/ST4: validates and stores `doc` as the disk's next epoch, which it returns. `doc.epoch` is ignored. */
  commitTable(disk: string, doc: TableDocument, options?: CommitOptions): Promise<number>;
}

/** Reads see the transaction's own writes; writes take effect at commit (ST2). */
export interface StoreTransaction extends StoreReader, StoreWriter {}

/** Outside a transaction each write is a transaction of its own. */
export interface ControllerStore extends StoreReader, StoreWriter {
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

// ---- record rules (ST6) ----

const NAME = /^[A-Za-z0-9._:@-]{1,128}$/;
export const NAME_RULE = '1-128 characters of A-Z a-z 0-9 . _ : @ -';

/** Checks a record's shape and returns a clean copy, or throws VdmapError with `code` naming the field. */
export type RecordCheck<T> = (value: unknown, code: ErrorCode) => T;

class FieldChecker {
  constructor(private readonly kind: string, private readonly code: ErrorCode) {}

  fail(field: string, reason: string): never {
    throw new VdmapError(this.code, `${this.kind} record: ${field} ${reason}`, { record: this.kind, field, reason });
  }

  object(value: unknown): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail('record', 'is not an object');
    return value as Record<string, unknown>;
  }

  name(value: unknown, field: string): string {
    if (typeof value !== 'string' || !NAME.test(value)) this.fail(field, `is not ${NAME_RULE}`);
    return value;
  }

  text(value: unknown, field: string, maximum = 4096): string {
    if (typeof value !== 'string' || value.length === 0 || value.length > maximum) this.fail(field, `is not a string of 1-${maximum} characters`);
    return value;
  }

  uint(value: unknown, field: string, minimum = 0): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) this.fail(field, `is not an integer >= ${minimum}`);
    return value;
  }

  powerOfTwo(value: unknown, field: string, minimum: number, maximum: number): number {
    const n = this.uint(value, field, minimum);
    if (n > maximum || 2 ** Math.round(Math.log2(n)) !== n) this.fail(field, `is not a power of two in ${minimum}..${maximum}`);
    return n;
  }

  list(value: unknown, field: string): unknown[] {
    if (!Array.isArray(value)) this.fail(field, 'is not a list');
    return value;
  }
}

export const checkDevice: RecordCheck<DeviceRecord> = (value, code) => {
  const check = new FieldChecker('device', code);
  const record = check.object(value);
  const paths = check.list(record.paths, 'paths').map((item, index) => {
    const path = check.object(item);
    return { agent: check.name(path.agent, `paths[${index}].agent`), path: check.text(path.path, `paths[${index}].path`) };
  });
  if (new Set(paths.map((path) => path.agent)).size !== paths.length) check.fail('paths', 'names an agent twice');
  const logicalBlockSize = check.powerOfTwo(record.logicalBlockSize, 'logicalBlockSize', 512, 65536);
  const size = check.uint(record.size, 'size', 1);
  if (size % logicalBlockSize !== 0) check.fail('size', `is not a multiple of the block size ${logicalBlockSize}`);
  return { id: check.name(record.id, 'id'), size, logicalBlockSize, paths };
};

export const checkDisk: RecordCheck<DiskRecord> = (value, code) => {
  const check = new FieldChecker('disk', code);
  const record = check.object(value);
  return {
    name: check.name(record.name, 'name'), size: check.uint(record.size, 'size', 1),
    extentSize: check.powerOfTwo(record.extentSize, 'extentSize', 4096, 2 ** 40),
  };
};

export const checkAgent: RecordCheck<AgentRecord> = (value, code) => {
  const check = new FieldChecker('agent', code);
  const record = check.object(value);
  const credential = record.credential;
  if (!(credential instanceof Uint8Array) || credential.byteLength !== 32) check.fail('credential', 'is not 32 bytes');
  const applied = check.list(record.applied, 'applied').map((item, index) => {
    const entry = check.object(item);
    return { disk: check.name(entry.disk, `applied[${index}].disk`), epoch: check.uint(entry.epoch, `applied[${index}].epoch`) };
  });
  if (new Set(applied.map((entry) => entry.disk)).size !== applied.length) check.fail('applied', 'names a disk twice');
  return {
    name: check.name(record.name, 'name'), credential: new Uint8Array(credential as Uint8Array),
    enrolledAt: check.uint(record.enrolledAt, 'enrolledAt'),
    lastSeen: record.lastSeen === null ? null : check.uint(record.lastSeen, 'lastSeen'), applied,
  };
};

export const checkAttachment: RecordCheck<AttachmentRecord> = (value, code) => {
  const check = new FieldChecker('attachment', code);
  const record = check.object(value);
  return { disk: check.name(record.disk, 'disk'), agent: check.name(record.agent, 'agent') };
};

export const checkTableHead: RecordCheck<TableHead> = (value, code) => {
  const check = new FieldChecker('table head', code);
  const record = check.object(value);
  const epochs = check.list(record.epochs, 'epochs').map((epoch, index) => check.uint(epoch, `epochs[${index}]`, 1));
  const epoch = check.uint(record.epoch, 'epoch', 1);
  if (epochs.length === 0 || epochs[epochs.length - 1] !== epoch) check.fail('epochs', 'does not end at epoch');
  return {
    disk: check.name(record.disk, 'disk'), epoch,
    devices: check.list(record.devices, 'devices').map((id, index) => check.name(id, `devices[${index}]`)), epochs,
  };
};

/** Default number of table versions kept per disk (ST3). */
export const DEFAULT_KEEP_VERSIONS = 16;

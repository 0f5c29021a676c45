/**
 * AgentDisk: the agent's volatile copy of one virtual disk, as the agent's main thread holds it: the shared
 * table and its writer, the devices it maps into, and the write locks every serving thread shares.
 *
 * Owns: the TableWriter of the disk (the only writer: epoch-flip.ts), the open device fds by device id, and
 * the DiskShare that I/O threads receive to build their own VirtualDisk. Knows nothing about the controller
 * connection (the agent forwards documents and deltas here) nor about NBD.
 *
 * Invariants:
 *   G1. Every change goes through stage -> commit (apply.ts, epoch-flip.ts): a bad document or delta is refused
 *       before anything is staged, and a drain timeout leaves the live table as it was.
 *   G2. A device fd is closed only after no committed copy names it and no I/O can be using it (close()).
 *   G3. Changes are applied one at a time, in the order they were given (a promise chain).
 * Thread: the agent's main thread.
 * Errors leaving: VDM_TABLE_* (apply.ts, epoch-flip.ts), VDM_TABLE_UNKNOWN_DEVICE, VDM_DEVICE_OPEN.
 */
import { VdmapError } from '../errors/error.js';
import { closeDevice, type DeviceInfo, openDevice } from '../native/index.js';
import { stageDelta, stageDocument } from '../table/apply.js';
import type { TableDelta, TableDocument } from '../table/document.js';
import { type CommitOptions, TableWriter } from '../table/epoch-flip.js';
import { copyEpoch, createTableBuffer, Header, readerSlotWord, type TableViews } from '../table/layout.js';
import { WriteLocks } from './write-locks.js';

/** What an I/O thread needs to serve the disk (all of it can be posted to a worker). */
export interface DiskShare {
  name: string;
  size: number;
  blockSize: number;
  readOnly: boolean;
  table: SharedArrayBuffer;
  locks: SharedArrayBuffer;
}

export interface AgentDiskOptions {
  name: string;
  size: number;
  /** Most extents the disk's table may hold. */
  extentCapacity: number;
  /** Reader slots: one per thread that serves the disk (slot 0 is the main thread). */
  readerSlots: number;
  readOnly?: boolean;
}

/** The live table header, for `vdmap agent inspect`. */
export interface TableHeaderReport {
  epoch: number;
  generation: number;
  activeCopy: number;
  blocking: boolean;
  inflight: number[];
  drainTimeouts: number;
}

export class AgentDisk {
  readonly views: TableViews;
  readonly writer: TableWriter;
  readonly locks: WriteLocks;
  private readonly devices = new Map<string, DeviceInfo>();
  private changes: Promise<unknown> = Promise.resolve();

  constructor(readonly options: AgentDiskOptions) {
    this.views = createTableBuffer(options.extentCapacity, options.readerSlots);
    this.writer = new TableWriter(this.views);
    this.locks = new WriteLocks();
  }

  get name(): string {
    return this.options.name;
  }

  /** Opens a device for this disk under the controller's device id (idempotent for the same path). */
  attachDevice(id: string, path: string): DeviceInfo {
    const existing = this.devices.get(id);
    if (existing && existing.path === path) return existing;
    if (existing) throw new VdmapError('VDM_DEVICE_OPEN', `device ${id} is already open at ${existing.path}, not ${path}`);
    const info = openDevice(path, { readOnly: this.options.readOnly ?? false });
    this.devices.set(id, info);
    return info;
  }

  device(id: string): DeviceInfo | undefined {
    return this.devices.get(id);
  }

  /** The direct-I/O block size of the disk: the largest offset alignment of its devices (at least 512). */
  blockSize(): number {
    let size = 512;
    for (const info of this.devices.values()) size = Math.max(size, info.offsetAlignment);
    return size;
  }

  share(): DiskShare {
    return {
      name: this.name, size: this.options.size, blockSize: this.blockSize(), readOnly: this.options.readOnly ?? false,
      table: this.views.buffer, locks: this.locks.buffer,
    };
  }

  /** Replaces the whole table (the controller's full push or periodic resync). */
  applyDocument(doc: TableDocument, options: CommitOptions = {}): Promise<void> {
    return this.serialized(async () => {
      const stage = stageDocument(this.writer, doc, this.fdsOf(doc.devices));
      await this.writer.commit(stage, options);
    });
  }

  /** Applies a delta from the active epoch to the next. */
  applyDelta(delta: TableDelta, options: CommitOptions = {}): Promise<void> {
    return this.serialized(async () => {
      const stage = stageDelta(this.writer, delta, this.fdsOf(delta.devices));
      await this.writer.commit(stage, options);
    });
  }

  /** Blocks new I/O and resolves once in-flight I/O has drained (a controller drain request). */
  block(drainTimeoutMs?: number): Promise<void> {
    return this.serialized(() => this.writer.block(drainTimeoutMs));
  }

  unblock(): Promise<void> {
    return this.serialized(async () => this.writer.unblock());
  }

  get epoch(): number {
    return this.writer.epoch;
  }

  header(): TableHeaderReport {
    const header = this.views.header;
    const generation = Atomics.load(header, Header.Generation);
    const inflight: number[] = [];
    for (let slot = 0; slot < this.views.readerSlots; slot++) inflight.push(Atomics.load(header, readerSlotWord(slot)));
    return {
      epoch: copyEpoch(this.views, (generation & 1) as 0 | 1), generation, activeCopy: generation & 1,
      blocking: Atomics.load(header, Header.Blocking) === 1, inflight, drainTimeouts: Atomics.load(header, Header.DrainTimeouts),
    };
  }

  /** Closes the devices. Call only once no thread serves the disk any more (G2). */
  close(): void {
    for (const info of this.devices.values()) closeDevice(info.fd);
    this.devices.clear();
  }

  private fdsOf(ids: readonly string[]): number[] {
    const missing = ids.filter((id) => !this.devices.has(id));
    if (missing.length > 0) {
      throw new VdmapError('VDM_TABLE_UNKNOWN_DEVICE', `the table maps into devices this agent has not opened: ${missing.join(', ')}`, { missing });
    }
    return ids.map((id) => this.devices.get(id)!.fd);
  }

  private serialized<T>(change: () => Promise<T>): Promise<T> {
    const result = this.changes.then(change, change);
    this.changes = result.catch(() => undefined);
    return result;
  }
}

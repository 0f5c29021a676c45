/**
 * AttachedDisks: the disks the controller attached to this agent, each an AgentDisk (shared table, devices)
 * served by the I/O workers, plus what the agent must remember about it: the controller's attachment (size,
 * sharing, device paths), a mirror of the live table, and why it is blocked.
 *
 * Owns: applying what the controller sends (full tables, deltas, set-states) through AgentDisk's epoch flip;
 * drains and resumes; the lease fence; detaching. Knows nothing about the connection (controller-link.ts feeds
 * it and sends what it reports) nor about NBD (the workers serve whatever the pool has attached).
 *
 * Per disk, everything runs one change at a time in arrival order (a promise chain per disk), so the table
 * only ever moves forward through the epochs the controller sent, and a drain sent after a push acts after it.
 *
 * Blocking: a disk is blocked while it has a reason: 'drain' (the controller asked, until resume), 'fence' (the
 * lease lapsed and the disk is shared: until a full table of a NEW session was applied), 'detach' (on its way
 * out). Commits keep a raised block raised (epoch-flip.ts W5), so a resync under a fence stays fenced until
 * the last reason is gone.
 *
 * Invariants:
 *   AD1. Nothing is applied that failed validation (validate.ts, against the devices this host opened and the
 *        attached size) or did not follow the live epoch: the live table stays as it was, and the controller
 *        gets a 'table-unreadable' fault, which makes it resend the full table.
 *   AD2. A shared disk is fenced as soon as the lease lapses: Blocking is raised at once, then a block waits for
 *        in-flight I/O; I/O that arrives meanwhile waits (VirtualDisk step 4) and completes only after resync.
 *   AD3. The mirror equals the live table: it changes only after the flip that made the change live. A full
 *        table equal to the mirror at the same epoch (the periodic resync) acknowledges without a flip.
 *   AD4. A disk's devices are closed only after the disk was drained and detached from every worker; if it
 *        does not drain, its fds are left open rather than risk a worker issuing I/O on a reused fd number.
 *
 * Thread: the agent's main thread.
 * Errors leaving: none thrown; failures become faults (report) and log lines with their code.
 */
import type { Logger } from 'pino';
import { type ErrorRecord, toErrorRecord, VdmapError } from '../errors/error.js';
import type { TableDelta, TableDocument } from '../table/document.js';
import { type DeviceGeometry, tableProblemsError, validateDocument } from '../table/validate.js';
import type { AgentInspectView } from '../controller/admin-api.js';
import type { AttachmentMessage, DeltaMessage, DeviceView, FaultMessage, SetStateMessage } from '../wire/messages.js';
import { deltaFromMessage } from '../wire/tables.js';
import { AgentDisk } from './agent-disk.js';
import type { AgentMetrics } from './agent-metrics.js';
import type { IoWorkerPool } from './workers/io-worker-pool.js';

type BlockReason = 'drain' | 'fence' | 'detach';

interface HeldDisk {
  name: string;
  attachment: AttachmentMessage;
  disk: AgentDisk | undefined;
  mirror: TableDocument | undefined;
  served: boolean;
  reasons: Set<BlockReason>;
  /** The session whose full table was last applied. */
  syncedSession: number;
}

export interface AttachedDisksOptions {
  /** I/O workers + 1 (AgentDisk reader slots). */
  readerSlots: number;
  /** undefined: a control-plane-only agent (no I/O workers, nothing served). */
  pool: IoWorkerPool | undefined;
  logger: Logger;
  metrics: AgentMetrics;
  /** A fault about a table (kind 'table-unreadable') for the controller. */
  report(fault: FaultMessage): void;
  /** A change is live: tell the controller. */
  applied(disk: string, epoch: number): void;
  drainTimeoutMs?: number;
}

const DETACH_ATTEMPTS = 3;
/** A drain that never gives up: used to raise Blocking at once for a fence (a timed-out block would lower it). */
const FENCE_DRAIN_MS = 24 * 3600 * 1000;

export class AttachedDisks {
  private readonly disks = new Map<string, HeldDisk>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private session = 0;

  constructor(private readonly options: AttachedDisksOptions) {}

  /** A new session began (after welcome): fenced disks wait for its full tables. */
  sessionStarted(): number {
    return ++this.session;
  }

  /** (disk, live epoch) of every disk with a table, for the acknowledgements sent after welcome. */
  liveEpochs(): Array<{ disk: string; epoch: number }> {
    return [...this.disks.values()].flatMap((held) => (held.mirror === undefined ? [] : [{ disk: held.name, epoch: held.mirror.epoch }]));
  }

  epochOf(disk: string): number | undefined {
    return this.disks.get(disk)?.mirror?.epoch;
  }

  /** The devices this host opened, for the hello. */
  deviceViews(): DeviceView[] {
    const views = new Map<string, DeviceView>();
    for (const held of this.disks.values()) {
      for (const { id, path } of held.attachment.devices) {
        const info = held.disk?.device(id);
        if (info !== undefined) views.set(id, { id, path, size: info.size, logicalBlockSize: info.logicalBlockSize });
      }
    }
    return [...views.values()];
  }

  /** In the disk's chain, like everything else about it: a detach then a re-attach happen in that order. */
  attachment(message: AttachmentMessage): void {
    void this.serially(message.disk, async () => (message.attached ? this.attach(message) : this.detach(message.disk)));
  }

  private attach(message: AttachmentMessage): void {
    const held = this.disks.get(message.disk);
    if (held === undefined) {
      this.disks.set(message.disk, {
        name: message.disk, attachment: message, disk: undefined, mirror: undefined, served: false, reasons: new Set(), syncedSession: 0,
      });
      this.options.logger.info({ disk: message.disk, size: message.size, shared: message.shared }, 'disk attached');
      return;
    }
    if (held.attachment.size !== message.size && held.disk !== undefined) {
      this.options.logger.warn({ disk: message.disk, size: message.size, code: 'VDM_TABLE_INVALID' }, 'the attached size changed: it takes effect when the disk is attached again');
    }
    held.attachment = { ...message, size: held.disk === undefined ? message.size : held.attachment.size };
  }

  applyFull(doc: TableDocument, receivedAt: number): Promise<void> {
    const session = this.session;
    return this.change(doc.disk, 'full', doc.epoch, receivedAt, async (held) => {
      const disk = this.diskFor(held, doc.extentCount);
      this.openDevices(held, disk, doc.devices);
      const problems = validateDocument(doc, this.geometry(disk, doc.devices), { diskSize: held.attachment.size });
      if (problems.length > 0) throw tableProblemsError(problems, { disk: doc.disk, epoch: doc.epoch });
      if (held.mirror !== undefined && held.mirror.epoch === doc.epoch && sameTable(held.mirror, doc)) {
        this.options.logger.debug({ disk: doc.disk, epoch: doc.epoch }, 'resync: the table is unchanged');
      } else {
        if (held.mirror !== undefined && held.mirror.epoch >= doc.epoch) {
          this.options.logger.warn({ disk: doc.disk, epoch: doc.epoch, live: held.mirror.epoch }, 'resync replaced a table that differed from the controller\'s');
        }
        await disk.applyDocument(doc, { drainTimeoutMs: this.options.drainTimeoutMs });
      }
      held.mirror = doc;
      held.syncedSession = session;
      this.serve(held, disk);
      if (held.reasons.delete('fence')) {
        this.options.metrics.diskFenced(held.name, false);
        this.options.logger.info({ disk: held.name, epoch: doc.epoch }, 'resynced: the fence is lifted');
      }
      if (held.reasons.size === 0 && disk.writer.isBlocking) await disk.unblock();
    });
  }

  applyDelta(message: DeltaMessage, receivedAt: number): Promise<void> {
    return this.change(message.disk, 'delta', message.toEpoch, receivedAt, (held) => this.applyDeltaNow(held, deltaFromMessage(message)));
  }

  applySetState(message: SetStateMessage, receivedAt: number): Promise<void> {
    return this.change(message.disk, 'set-state', message.toEpoch, receivedAt, (held) => {
      const mirror = this.requireMirror(held, message.fromEpoch);
      if (message.firstExtent + message.count > mirror.extentCount) {
        throw new VdmapError('VDM_TABLE_INVALID', `set-state reaches extent ${message.firstExtent + message.count}, past the table's ${mirror.extentCount}`);
      }
      return this.applyDeltaNow(held, setStateDelta(mirror, message));
    });
  }

  /** Blocks the disk at the controller's request; resolves with null once in-flight I/O drained. */
  drain(disk: string, timeoutMs: number): Promise<ErrorRecord | null> {
    return this.serially(disk, async () => {
      const held = this.disks.get(disk);
      if (held === undefined) return { code: 'VDM_STORE_NOT_FOUND', message: `this agent does not hold disk '${disk}'` };
      held.reasons.add('drain');
      if (held.disk === undefined) return null;
      try {
        await held.disk.block(timeoutMs);
        return null;
      } catch (error) {
        held.reasons.delete('drain');
        return toErrorRecord(error);
      }
    });
  }

  resume(disk: string): Promise<ErrorRecord | null> {
    return this.serially(disk, async () => {
      const held = this.disks.get(disk);
      if (held === undefined) return { code: 'VDM_STORE_NOT_FOUND', message: `this agent does not hold disk '${disk}'` };
      held.reasons.delete('drain');
      if (held.reasons.size === 0 && held.disk?.writer.isBlocking === true) await held.disk.unblock();
      return null;
    });
  }

  /** AD2: the lease lapsed. Every shared disk stops completing I/O until a new session's full table arrives. */
  fence(): void {
    for (const held of this.disks.values()) {
      if (!held.attachment.shared || held.disk === undefined) continue;
      const disk = held.disk;
      if (!held.reasons.has('fence')) {
        held.reasons.add('fence');
        this.options.metrics.diskFenced(held.name, true);
        this.options.logger.warn({ disk: held.name, code: 'VDM_LEASE_EXPIRED' }, 'lease lapsed: the shared disk is fenced until it is resynced');
      }
      void disk.writer.block(FENCE_DRAIN_MS).catch(() => undefined); // raises Blocking now, outside the chain
      void this.serially(held.name, () => this.holdFence(held, disk));
    }
  }

  inspect(): AgentInspectView['disks'] {
    return [...this.disks.values()].flatMap((held) => (held.disk === undefined ? [] : [{ disk: held.name, ...held.disk.header() }]));
  }

  /** Stops serving every disk (agent shutdown): workers are already stopped when this runs. */
  close(): void {
    for (const held of this.disks.values()) held.disk?.close();
    this.disks.clear();
  }

  // ---- steps ----

  /** One change of one disk, in its chain; failures become a 'table-unreadable' fault (AD1). */
  private change(name: string, kind: 'full' | 'delta' | 'set-state', epoch: number, receivedAt: number,
    work: (held: HeldDisk) => Promise<void>): Promise<void> {
    return this.serially(name, async () => {
      const held = this.disks.get(name);
      try {
        if (held === undefined) throw new VdmapError('VDM_TABLE_INVALID', `a ${kind} table for disk '${name}', which is not attached here`);
        await work(held);
        this.options.metrics.applied(kind, 'ok', (performance.now() - receivedAt) / 1000);
        this.options.metrics.diskEpoch(name, epoch);
        this.options.applied(name, epoch);
      } catch (error) {
        const record = toErrorRecord(error);
        this.options.metrics.applied(kind, record.code);
        this.options.logger.warn({ disk: name, epoch, kind, code: record.code }, `table change not applied: ${record.message}`);
        this.options.report({
          type: 'fault', disk: name, epoch: held?.mirror?.epoch ?? 0, kind: 'table-unreadable', extent: null, operation: null,
          error: { code: 'VDM_AGENT_APPLY', message: `${kind} table for epoch ${epoch} not applied: ${record.code}: ${record.message}`.slice(0, 4000), details: { cause: record.code } },
        });
      }
    });
  }

  private async applyDeltaNow(held: HeldDisk, delta: TableDelta): Promise<void> {
    const mirror = this.requireMirror(held, delta.fromEpoch);
    const disk = held.disk as AgentDisk;
    this.openDevices(held, disk, delta.devices);
    await disk.applyDelta(delta, { drainTimeoutMs: this.options.drainTimeoutMs });
    mirror.devices = [...delta.devices];
    for (let index = 0; index < delta.extent.length; index++) {
      const extent = delta.extent[index];
      mirror.device[extent] = delta.device[index];
      mirror.physicalExtent[extent] = delta.physicalExtent[index];
      mirror.state[extent] = delta.state[index];
    }
    mirror.epoch = delta.toEpoch;
  }

  private requireMirror(held: HeldDisk, fromEpoch: number): TableDocument {
    const mirror = held.mirror;
    if (mirror === undefined || held.disk === undefined) {
      throw new VdmapError('VDM_TABLE_EPOCH_STALE', `a change from epoch ${fromEpoch} arrived before any table of '${held.name}'`);
    }
    if (mirror.epoch !== fromEpoch) {
      throw new VdmapError('VDM_TABLE_EPOCH_STALE', `a change from epoch ${fromEpoch} does not follow the live epoch ${mirror.epoch} of '${held.name}'`,
        { live: mirror.epoch, fromEpoch });
    }
    return mirror;
  }

  /** The disk's AgentDisk, created at the first table with room for `extentCount` extents. */
  private diskFor(held: HeldDisk, extentCount: number): AgentDisk {
    if (held.disk === undefined) {
      held.disk = new AgentDisk({
        name: held.name, size: held.attachment.size, extentCapacity: Math.max(1, extentCount), readerSlots: this.options.readerSlots,
      });
      if (held.reasons.size > 0) void held.disk.writer.block(FENCE_DRAIN_MS).catch(() => undefined);
    }
    if (extentCount > held.disk.views.extentCapacity) {
      throw new VdmapError('VDM_TABLE_TOO_LARGE', `${extentCount} extents exceed the ${held.disk.views.extentCapacity} this disk was set up with`);
    }
    return held.disk;
  }

  /** Opens the devices a table names, at the paths the controller gave for this host. */
  private openDevices(held: HeldDisk, disk: AgentDisk, ids: readonly string[]): void {
    for (const id of ids) {
      const path = held.attachment.devices.find((device) => device.id === id)?.path;
      if (path === undefined) {
        throw new VdmapError('VDM_TABLE_UNKNOWN_DEVICE', `the controller gave no path on this host for device '${id}' of '${held.name}'`, { device: id });
      }
      disk.attachDevice(id, path);
    }
  }

  private geometry(disk: AgentDisk, ids: readonly string[]): Map<string, DeviceGeometry> {
    const geometry = new Map<string, DeviceGeometry>();
    for (const id of ids) {
      const info = disk.device(id);
      if (info !== undefined) geometry.set(id, { size: info.size, logicalBlockSize: info.logicalBlockSize });
    }
    return geometry;
  }

  private serve(held: HeldDisk, disk: AgentDisk): void {
    if (held.served || this.options.pool === undefined) return;
    this.options.pool.attach(disk);
    held.served = true;
    this.options.logger.info({ disk: held.name, epoch: held.mirror?.epoch }, 'serving the disk');
  }

  /** Keeps a fenced disk blocked: retries the drain until it succeeds or the fence is lifted. */
  private async holdFence(held: HeldDisk, disk: AgentDisk): Promise<void> {
    while (held.reasons.has('fence') && this.disks.get(held.name) === held) {
      try {
        await disk.block(this.options.drainTimeoutMs);
        return;
      } catch (error) {
        this.options.logger.warn({ disk: held.name, code: toErrorRecord(error).code }, 'fenced disk still draining');
        void disk.writer.block(FENCE_DRAIN_MS).catch(() => undefined);
      }
    }
  }

  /** AD4. */
  private async detach(name: string): Promise<void> {
    const held = this.disks.get(name);
    if (held === undefined) return;
    this.disks.delete(name);
    held.reasons.add('detach');
    this.options.metrics.diskRemoved(name);
    const disk = held.disk;
    if (disk === undefined) return;
    let drained = false;
    for (let attempt = 1; attempt <= DETACH_ATTEMPTS && !drained; attempt++) {
      drained = await disk.block(this.options.drainTimeoutMs).then(() => true, () => false);
    }
    if (held.served) this.options.pool?.detach(name);
    if (drained) disk.close();
    else this.options.logger.error({ disk: name, code: 'VDM_TABLE_DRAIN_TIMEOUT' }, 'detached disk did not drain: its devices stay open');
    this.options.logger.info({ disk: name }, 'disk detached');
  }

  private serially<T>(disk: string, work: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(disk) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    this.chains.set(disk, tail);
    void tail.then(() => {
      if (this.chains.get(disk) === tail) this.chains.delete(disk);
    });
    return result;
  }
}

/** The delta a set-state makes of `mirror`: each extent of the range with its new state bits. */
function setStateDelta(mirror: TableDocument, message: SetStateMessage): TableDelta {
  const count = message.count;
  const delta: TableDelta = {
    disk: message.disk, fromEpoch: message.fromEpoch, toEpoch: message.toEpoch, devices: [...mirror.devices],
    extent: new Uint32Array(count), device: new Int32Array(count), physicalExtent: new Uint32Array(count), state: new Uint8Array(count),
  };
  for (let index = 0; index < count; index++) {
    const extent = message.firstExtent + index;
    delta.extent[index] = extent;
    delta.device[index] = mirror.device[extent];
    delta.physicalExtent[index] = mirror.physicalExtent[extent];
    delta.state[index] = (mirror.state[extent] | message.set) & ~message.clear;
  }
  return delta;
}

function sameTable(a: TableDocument, b: TableDocument): boolean {
  if (a.extentCount !== b.extentCount || a.extentSize !== b.extentSize || a.devices.join('\u0000') !== b.devices.join('\u0000')) return false;
  return sameBytes(a.device, b.device) && sameBytes(a.physicalExtent, b.physicalExtent) && sameBytes(a.state, b.state);
}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

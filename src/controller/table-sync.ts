/**
 * TableDistributor: decides what each connected agent is sent about each disk it is attached to, and keeps the
 * latest table of every disk in memory.
 *
 * Owns: the latest-table cache, the change that produced each latest epoch (a delta, or a set-state), and the
 * choice per agent between nothing, an attachment update, a set-state, a delta and a full table:
 *
 *   agent was sent          latest epoch E came from      the agent is sent
 *   E                       -                             nothing (unless a full resync is asked for)
 *   E - 1                   a set-state                   that set-state
 *   E - 1                   a delta of <= maxDeltaEntries that delta
 *   anything else, or a resync (session start, periodic backstop, fault, agent behind)   the full table at E
 *
 *   and before any of them, an `attachment` when size, sharing or the device paths changed.
 *
 * Knows nothing about sockets (agent-session.ts sends) or how a table is committed (table-commit.ts calls
 * committed() after each commit).
 *
 * Invariants:
 *   D1. Every decision for a disk runs in that disk's KeyedQueue slot, the same queue the commits use, so an
 *       agent receives a disk's epochs in order and never an older full table after a newer delta.
 *   D2. The cache holds exactly what the store holds for each disk's latest epoch: it is filled from the store
 *       and replaced only by committed() (every commit of this controller goes through table-commit.ts).
 *   D3. An agent gets a disk's attachment before its first table, so it knows size, sharing and paths.
 *
 * Thread: the controller's main thread.
 * Errors leaving: VDM_STORE_* (store reads).
 */
import type { Logger } from 'pino';
import type { TableDelta, TableDocument } from '../table/document.js';
import { type AttachmentMessage, type DevicePathView, type SetStateMessage, WireLimits } from '../wire/messages.js';
import type { AgentRegistry } from './agent-registry.js';
import type { AgentSession } from './agent-session.js';
import type { KeyedQueue } from './keyed-queue.js';
import type { ControllerStore } from './store/store.js';

export interface TableDistributorOptions {
  store: ControllerStore;
  agents: AgentRegistry;
  queue: KeyedQueue;
  logger: Logger;
}

interface LatestChange {
  epoch: number;
  delta: TableDelta | undefined;
  setState: SetStateMessage | undefined;
}

/** Commit times kept per disk for the push -> applied latency metric. */
const KEPT_COMMIT_TIMES = 256;

export class TableDistributor {
  private readonly latestDocs = new Map<string, TableDocument>();
  private readonly changes = new Map<string, LatestChange>();
  private readonly commitTimes = new Map<string, Map<number, number>>();

  constructor(private readonly options: TableDistributorOptions) {}

  /** The latest table of `disk`, from the cache or the store (D2); undefined when it has none. */
  async latest(disk: string): Promise<TableDocument | undefined> {
    const cached = this.latestDocs.get(disk);
    if (cached !== undefined) return cached;
    const stored = await this.options.store.getTable(disk);
    if (stored !== undefined && !this.latestDocs.has(disk)) this.latestDocs.set(disk, stored);
    return this.latestDocs.get(disk) ?? stored;
  }

  forget(disk: string): void {
    this.latestDocs.delete(disk);
    this.changes.delete(disk);
    this.commitTimes.delete(disk);
  }

  /** When `epoch` of `disk` was committed (ms, performance clock), if still remembered. */
  commitTime(disk: string, epoch: number): number | undefined {
    return this.commitTimes.get(disk)?.get(epoch);
  }

  /**
   * After a commit, inside the disk's queue slot (D1): caches `doc` and brings every connected attached agent
   * to it. `previous` is the table at doc.epoch - 1 when known (for the delta).
   */
  async committed(doc: TableDocument, previous: TableDocument | undefined, setState?: SetStateMessage): Promise<void> {
    this.latestDocs.set(doc.disk, doc);
    const delta = setState === undefined && previous !== undefined && previous.epoch === doc.epoch - 1
      ? boundedDelta(previous, doc, WireLimits.maxDeltaEntries) : undefined;
    this.changes.set(doc.disk, { epoch: doc.epoch, delta, setState });
    this.rememberCommit(doc.disk, doc.epoch);
    for (const session of await this.attachedSessions(doc.disk)) await this.syncNow(session, doc.disk, false);
  }

  /** Brings one agent up to date on one disk, in the disk's queue (D1); `full` forces the whole table. */
  sync(session: AgentSession, disk: string, full: boolean): Promise<void> {
    return this.options.queue.run(disk, () => this.syncNow(session, disk, full));
  }

  /** A session started or a resync is due: every attached disk as attachment + full table. */
  async syncSession(session: AgentSession): Promise<void> {
    const attachments = await this.options.store.listAttachments({ agent: session.agent });
    await Promise.all(attachments.map((attachment) => this.sync(session, attachment.disk, true)));
  }

  /** Attachments of `disk` changed (an agent attached or detached, a device path moved): tell every agent. */
  refresh(disk: string): Promise<void> {
    return this.options.queue.run(disk, async () => {
      for (const session of await this.attachedSessions(disk)) await this.syncNow(session, disk, false);
    });
  }

  /** `agent` no longer serves `disk`: tell its session to drop it (after anything queued before). */
  detached(disk: string, agent: string): Promise<void> {
    return this.options.queue.run(disk, async () => {
      const session = this.options.agents.sessionOf(agent) as AgentSession | undefined;
      session?.sendAttachment({ type: 'attachment', disk, attached: false, size: 0, shared: false, devices: [] });
    });
  }

  /** The decision table above, for one agent and one disk. Call only inside the disk's queue slot (D1). */
  async syncNow(session: AgentSession, disk: string, full: boolean): Promise<void> {
    if (!session.isOpen) return;
    const doc = await this.latest(disk);
    const attachment = await this.attachmentFor(disk, session.agent, doc);
    if (attachment === undefined) return;
    if (JSON.stringify(attachment) !== session.sentAttachment.get(disk)) session.sendAttachment(attachment); // D3
    if (doc === undefined) return;
    const sent = session.sentEpoch.get(disk);
    if (!full && sent === doc.epoch) return;
    const change = this.changes.get(disk);
    if (!full && sent === doc.epoch - 1 && change?.epoch === doc.epoch) {
      if (change.setState !== undefined) {
        session.sendSetState(change.setState);
        return;
      }
      if (change.delta !== undefined && session.sendDelta(change.delta)) return;
    }
    void session.sendTable(doc);
  }

  /** What `agent` must know to serve `disk`, or undefined when it is not attached. */
  private async attachmentFor(disk: string, agent: string, doc: TableDocument | undefined): Promise<AttachmentMessage | undefined> {
    const { store } = this.options;
    const attachments = await store.listAttachments({ disk });
    if (!attachments.some((attachment) => attachment.agent === agent)) return undefined;
    const record = await store.getDisk(disk);
    if (record === undefined) return undefined;
    const devices: DevicePathView[] = [];
    for (const id of doc?.devices ?? []) {
      const path = (await store.getDevice(id))?.paths.find((entry) => entry.agent === agent)?.path;
      if (path !== undefined) devices.push({ id, path });
      else this.options.logger.warn({ disk, agent, device: id, code: 'VDM_TABLE_UNKNOWN_DEVICE' }, 'the device has no path for this agent');
    }
    return { type: 'attachment', disk, attached: true, size: record.size, shared: attachments.length > 1, devices };
  }

  private async attachedSessions(disk: string): Promise<AgentSession[]> {
    const attachments = await this.options.store.listAttachments({ disk });
    return attachments
      .map((attachment) => this.options.agents.sessionOf(attachment.agent) as AgentSession | undefined)
      .filter((session): session is AgentSession => session !== undefined && session.isOpen);
  }

  private rememberCommit(disk: string, epoch: number): void {
    let times = this.commitTimes.get(disk);
    if (times === undefined) {
      times = new Map();
      this.commitTimes.set(disk, times);
    }
    times.set(epoch, performance.now());
    if (times.size > KEPT_COMMIT_TIMES) times.delete(times.keys().next().value as number);
  }
}

/**
 * The delta from `a` to `b` (same disk and geometry) when it has at most `limit` entries, else undefined: a
 * change that large goes as a full table, so the scan stops as soon as it knows.
 */
export function boundedDelta(a: TableDocument, b: TableDocument, limit: number): TableDelta | undefined {
  if (a.extentCount !== b.extentCount || a.extentSize !== b.extentSize) return undefined;
  const changed: number[] = [];
  for (let extent = 0; extent < b.extentCount; extent++) {
    if (a.device[extent] === b.device[extent] && a.physicalExtent[extent] === b.physicalExtent[extent] && a.state[extent] === b.state[extent]) continue;
    if (changed.length === limit) return undefined;
    changed.push(extent);
  }
  const delta: TableDelta = {
    disk: b.disk, fromEpoch: a.epoch, toEpoch: b.epoch, devices: [...b.devices], extent: Uint32Array.from(changed),
    device: new Int32Array(changed.length), physicalExtent: new Uint32Array(changed.length), state: new Uint8Array(changed.length),
  };
  changed.forEach((extent, index) => {
    delta.device[index] = b.device[extent];
    delta.physicalExtent[index] = b.physicalExtent[extent];
    delta.state[index] = b.state[extent];
  });
  return delta;
}

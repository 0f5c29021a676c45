/**
 * AgentSession: one authenticated agent connection on the controller, from the welcome to its end.
 *
 * Owns: the session's send order, the lease grants of this session, the receive loop that turns the agent's
 * messages into events (heartbeat, applied, fault, drained), and the drain/resume request ids. Knows nothing
 * about stores or what a table holds: table-sync.ts decides what to send, fault-handler.ts what a fault means.
 *
 * Send order:
 *   S1. Tables, deltas, set-states, attachments, drains and resumes go through one queue per session, in call
 *       order; a table's chunks are written one after the other (each awaits its socket write, so a slow agent
 *       holds back only its own session), and nothing of the same disk can slip between them.
 *   S2. `lease` replies bypass that queue: they may fall between two chunks (the agent treats them apart), and
 *       a long transfer never delays a renewal. Exactly one lease answers each heartbeat (leases.ts).
 *   S3. sentEpoch / sentAttachment record what was QUEUED, at the moment it was queued, so the next decision
 *       (delta or full table) is made against what the agent will have seen first.
 *
 * Lifetime:
 *   E1. The session ends once: the channel ended (the agent left, or sent bad frames: channel.ts W2), its lease
 *       expired without a heartbeat (VDM_LEASE_EXPIRED: the agent has fenced itself), a newer session of the
 *       same agent replaced it, its credential was revoked, or the controller closes.
 *   E2. At the end pending drain/resume answers resolve with VDM_AGENT_NOT_CONNECTED and `ended` fires.
 *
 * Thread: the controller's main thread.
 * Errors leaving: none thrown; ends are reported through `ended` with the channel's or the lease's error.
 */
import type { Logger } from 'pino';
import { type ErrorRecord, toErrorRecord, VdmapError } from '../errors/error.js';
import type { TableDelta, TableDocument } from '../table/document.js';
import type { WireChannel } from '../wire/channel.js';
import type { AcceptedAgent } from '../wire/handshake.js';
import type {
  AttachmentMessage, DeviceView, FaultMessage, MessageType, SetStateMessage, WireMessage,
} from '../wire/messages.js';
import { deltaMessage, tableDigest, tableMessages } from '../wire/tables.js';
import type { RegisteredSession } from './agent-registry.js';
import { ControllerLease } from './leases.js';
import type { ControllerMetrics } from './metrics.js';

export interface SessionEvents {
  heartbeat(session: AgentSession): void;
  applied(session: AgentSession, disk: string, epoch: number): void;
  fault(session: AgentSession, fault: FaultMessage): void;
  ended(session: AgentSession, error: VdmapError | undefined): void;
}

export interface AgentSessionOptions {
  leaseMs: number;
  heartbeatMs: number;
  logger: Logger;
  metrics: ControllerMetrics;
  events: SessionEvents;
}

const FROM_AGENT: ReadonlySet<MessageType> = new Set<MessageType>(['heartbeat', 'applied', 'fault', 'drained', 'error']);
/** Extra time a drain answer may take beyond the drain's own timeout (the agent's reply travels). */
const ANSWER_GRACE_MS = 5_000;

export class AgentSession implements RegisteredSession {
  readonly agent: string;
  readonly sessionId: string;
  readonly devices: DeviceView[];
  readonly lease: ControllerLease;
  readonly logger: Logger;
  /** S3: the last epoch queued to this agent, per disk. */
  readonly sentEpoch = new Map<string, number>();
  /** S3: the last attachment queued, per disk, as JSON (compared to decide whether to send a new one). */
  readonly sentAttachment = new Map<string, string>();
  private sends: Promise<unknown> = Promise.resolve();
  private nextTransferId = 1;
  private nextRequestId = 1;
  private readonly answers = new Map<number, (error: ErrorRecord | null) => void>();
  private watchdog: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(private readonly channel: WireChannel, accepted: AcceptedAgent, private readonly options: AgentSessionOptions) {
    this.agent = accepted.agent;
    this.sessionId = accepted.sessionId;
    this.devices = accepted.devices;
    this.lease = new ControllerLease(options.leaseMs);
    this.logger = options.logger.child({ agent: this.agent, session: this.sessionId });
  }

  leaseExpiresAt(): number | null {
    return this.lease.expiresAt;
  }

  get isOpen(): boolean {
    return !this.ended && this.channel.isOpen;
  }

  /** Call right after the welcome went out: grants the first lease and starts the receive loop. */
  start(): void {
    this.lease.granted();
    const period = Math.max(10, Math.floor(this.options.heartbeatMs / 2));
    this.watchdog = setInterval(() => this.checkLease(), period);
    void this.receiveLoop();
  }

  // ---- sending (S1, S3) ----

  sendTable(doc: TableDocument): Promise<boolean> {
    this.sentEpoch.set(doc.disk, doc.epoch);
    return this.enqueue(async () => {
      const transferId = this.nextTransferId++;
      for (const message of tableMessages(doc, transferId, undefined, digestOf(doc))) {
        if (!(await this.channel.send(message))) return false;
      }
      this.options.metrics.transfer('full');
      return true;
    });
  }

  /** Sends `delta` when it fits one message; false (nothing queued) when it must go as a full table. */
  sendDelta(delta: TableDelta): boolean {
    const message = deltaMessage(delta);
    if (message === undefined) return false;
    this.sentEpoch.set(delta.disk, delta.toEpoch);
    void this.enqueue(async () => {
      const sent = await this.channel.send(message);
      if (sent) this.options.metrics.transfer('delta');
      return sent;
    });
    return true;
  }

  sendSetState(message: SetStateMessage): void {
    this.sentEpoch.set(message.disk, message.toEpoch);
    void this.enqueue(async () => {
      const sent = await this.channel.send(message);
      if (sent) this.options.metrics.transfer('set-state');
      return sent;
    });
  }

  sendAttachment(message: AttachmentMessage): void {
    if (message.attached) this.sentAttachment.set(message.disk, JSON.stringify(message));
    else {
      this.sentAttachment.delete(message.disk);
      this.sentEpoch.delete(message.disk);
    }
    void this.enqueue(() => this.channel.send(message));
  }

  /** Asks the agent to block the disk and drain; resolves with its answer (null: drained). */
  drain(disk: string, timeoutMs: number): Promise<ErrorRecord | null> {
    return this.request(timeoutMs, (requestId) => ({ type: 'drain', requestId, disk, timeoutMs }));
  }

  resume(disk: string): Promise<ErrorRecord | null> {
    return this.request(0, (requestId) => ({ type: 'resume', requestId, disk }));
  }

  /** Ends the session (E1), telling the agent why when `reason` is given. */
  async close(reason?: VdmapError): Promise<void> {
    if (this.ended) return;
    await this.channel.close(reason);
    this.end(reason);
  }

  private request(timeoutMs: number, build: (requestId: number) => WireMessage): Promise<ErrorRecord | null> {
    if (!this.isOpen) return Promise.resolve(notConnected(this.agent));
    const requestId = this.nextRequestId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => answer({
        code: 'VDM_WIRE_TIMEOUT', message: `agent '${this.agent}' did not answer request ${requestId} in time`,
      }), timeoutMs + ANSWER_GRACE_MS);
      const answer = (error: ErrorRecord | null): void => {
        clearTimeout(timer);
        this.answers.delete(requestId);
        resolve(error);
      };
      this.answers.set(requestId, answer);
      void this.enqueue(() => this.channel.send(build(requestId)));
    });
  }

  /** S1. The promise never rejects (callers void it): a send that throws is logged and counts as not sent. */
  private enqueue<T>(work: () => Promise<T>): Promise<T | false> {
    const result = this.sends.then((): Promise<T | false> | false => (this.isOpen ? work() : false))
      .catch((error: unknown): false => {
        const record = toErrorRecord(error);
        this.logger.error({ code: record.code }, `sending to the agent failed: ${record.message}`);
        return false;
      });
    this.sends = result;
    return result;
  }

  // ---- receiving ----

  private async receiveLoop(): Promise<void> {
    for (;;) {
      const message = await this.channel.receive({ allowed: FROM_AGENT });
      if (message === null) break;
      this.handle(message);
    }
    this.end(this.channel.endError);
  }

  private handle(message: WireMessage): void {
    switch (message.type) {
      case 'heartbeat':
        this.renewLease();
        this.options.events.heartbeat(this);
        break;
      case 'applied':
        this.options.events.applied(this, message.disk, message.epoch);
        break;
      case 'fault':
        this.options.events.fault(this, message);
        break;
      case 'drained':
        this.answers.get(message.requestId)?.(message.error);
        break;
      case 'error':
        this.logger.warn({ code: message.error.code, remote: message.error }, 'the agent reported an error');
        break;
      default:
        break;
    }
  }

  /** S2: one lease per heartbeat, sent at once; the grant counts from now (leases.ts). */
  private renewLease(): void {
    void this.channel.send({ type: 'lease', leaseMs: this.options.leaseMs });
    this.lease.granted();
  }

  private checkLease(): void {
    if (!this.lease.expired()) return;
    const error = new VdmapError('VDM_LEASE_EXPIRED',
      `agent '${this.agent}' sent no heartbeat for ${this.options.leaseMs} ms; its lease expired and it counts as gone`,
      { agent: this.agent, leaseMs: this.options.leaseMs });
    this.logger.warn({ code: error.code }, error.message);
    void this.close(error);
  }

  /** E1, E2. */
  private end(error: VdmapError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.watchdog);
    for (const answer of [...this.answers.values()]) answer(notConnected(this.agent));
    this.options.events.ended(this, error);
  }
}

const digests = new WeakMap<TableDocument, Uint8Array>();

/** tableDigest(doc), computed once per document object however many agents it goes to (documents never change). */
function digestOf(doc: TableDocument): Uint8Array {
  let digest = digests.get(doc);
  if (digest === undefined) {
    digest = tableDigest(doc);
    digests.set(doc, digest);
  }
  return digest;
}

function notConnected(agent: string): ErrorRecord {
  return { code: 'VDM_AGENT_NOT_CONNECTED', message: `agent '${agent}' is not connected` };
}

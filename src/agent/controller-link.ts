/**
 * ControllerLink: the agent's connection to its controller: connect (TCP HOST:PORT or a Unix socket path),
 * authenticate, then heartbeats out and tables in, reconnecting with backoff whenever the session ends.
 *
 *   connect -> challenge -> hello (credential proof) -> welcome (lease) -> acknowledge live epochs and send
 *   held faults -> [heartbeat every heartbeatMs | lease, attachment, tables, deltas, set-states, drain/resume]
 *   -> the session ends (controller gone, refused frames, lease lapse) -> backoff -> connect again
 *
 * Owns: the session loop, table transfers in flight (TableAssembler), the heartbeat timer, faults held while
 * disconnected, and the reaction to a lease lapse (fence, then drop the session so the next one resyncs).
 * Knows nothing about how a table is applied (attached-disks.ts) or served.
 *
 * Invariants:
 *   CL1. Messages are handled in arrival order; applying a table never holds up the receive loop (changes are
 *        queued per disk in AttachedDisks), so lease renewals are read while a large table applies.
 *   CL2. A lease lapse ends the session: whatever the controller did meanwhile, the agent only serves shared
 *        disks again after a new session's full tables (attached-disks.ts AD2).
 *   CL3. Backoff doubles from 100 ms to 5 s between failed attempts and resets after a welcome; a refused
 *        credential is logged as an error each time and retried (an operator may re-enroll on the controller).
 *   CL4. Faults raised while disconnected are kept (at most MAX_HELD_FAULTS, one per disk/extent/kind) and sent
 *        after the next welcome, so a held request is not forgotten across a reconnect.
 *
 * Thread: the agent's main thread.
 * Errors leaving: none thrown; session ends are logged with their code.
 */
import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { toErrorRecord, VdmapError } from '../errors/error.js';
import { parseTcpAddress } from '../controller/admin-client.js';
import { WireChannel } from '../wire/channel.js';
import { agentHandshake } from '../wire/handshake.js';
import type { FaultMessage, MessageType, WireMessage } from '../wire/messages.js';
import { TableAssembler } from '../wire/tables.js';
import type { AgentLease } from './agent-lease.js';
import type { AgentMetrics } from './agent-metrics.js';
import type { AttachedDisks } from './attached-disks.js';

export interface ControllerLinkOptions {
  address: string;
  name: string;
  secret: Uint8Array;
  disks: AttachedDisks;
  lease: AgentLease;
  logger: Logger;
  metrics: AgentMetrics;
  handshakeTimeoutMs?: number;
}

const FROM_CONTROLLER: ReadonlySet<MessageType> = new Set<MessageType>([
  'lease', 'attachment', 'table-begin', 'table-chunk', 'table-end', 'delta', 'set-state', 'drain', 'resume', 'error',
]);
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
const MAX_HELD_FAULTS = 1024;
const MAX_TRANSFERS = 4;

export class ControllerLink {
  private channel: WireChannel | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private wakeBackoff: (() => void) | undefined;
  private readonly transfers = new Map<number, TableAssembler>();
  private readonly heldFaults = new Map<string, FaultMessage>();
  private lastFailureCode: string | undefined;

  constructor(private readonly options: ControllerLinkOptions) {}

  get connected(): boolean {
    return this.channel?.isOpen ?? false;
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeBackoff?.();
    await this.channel?.close();
    await this.running;
  }

  /** CL4. */
  sendFault(fault: FaultMessage): void {
    this.options.metrics.fault(fault.kind);
    if (this.channel?.isOpen === true) {
      this.send(this.channel, fault);
      return;
    }
    const key = `${fault.disk}/${fault.extent}/${fault.kind}`;
    if (this.heldFaults.size < MAX_HELD_FAULTS || this.heldFaults.has(key)) this.heldFaults.set(key, fault);
  }

  sendApplied(disk: string, epoch: number): void {
    if (this.channel?.isOpen === true) this.send(this.channel, { type: 'applied', disk, epoch });
  }

  /** Sends without ever throwing or rejecting: a message the codec refuses is a bug here, logged with its code. */
  private send(channel: WireChannel, message: WireMessage): void {
    try {
      void channel.send(message);
    } catch (error) {
      const record = toErrorRecord(error);
      this.options.logger.error({ code: record.code, type: message.type }, `message not sent: ${record.message}`);
    }
  }

  /** CL2: called by the lease timer. */
  leaseLapsed(): void {
    this.options.metrics.lease(false);
    this.options.disks.fence();
    const channel = this.channel;
    if (channel?.isOpen === true) {
      this.options.logger.warn({ code: 'VDM_LEASE_EXPIRED' }, 'lease lapsed: dropping the session to resync');
      void channel.close(new VdmapError('VDM_LEASE_EXPIRED', 'the agent lease lapsed without renewal'));
    }
  }

  private async run(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    while (!this.stopped) {
      const welcomed = await this.session().catch((error: unknown) => {
        this.logFailure(toErrorRecord(error));
        return false;
      });
      if (this.stopped) break;
      backoff = welcomed ? MIN_BACKOFF_MS : Math.min(MAX_BACKOFF_MS, backoff * 2); // CL3
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoff);
        this.wakeBackoff = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** One session; true when it got as far as the welcome. */
  private async session(): Promise<boolean> {
    const { options } = this;
    const socket = await openSocket(options.address);
    const channel = new WireChannel(socket, {
      onRefusal: (error) => options.logger.warn({ code: error.code, details: error.details }, `controller frames refused: ${error.message}`),
    });
    this.channel = channel;
    if (this.stopped) {
      await channel.close();
      return false;
    }
    const helloSentAt = performance.now();
    const welcome = await agentHandshake(channel, { agent: options.name, secret: options.secret, devices: options.disks.deviceViews() },
      options.handshakeTimeoutMs);
    if (welcome instanceof VdmapError) throw welcome;
    options.lease.welcomed(helloSentAt, welcome.leaseMs);
    options.disks.sessionStarted();
    this.lastFailureCode = undefined;
    options.metrics.session(true);
    options.metrics.lease(true);
    options.logger.info({ session: welcome.sessionId, leaseMs: welcome.leaseMs, heartbeatMs: welcome.heartbeatMs }, 'connected to the controller');
    const heartbeat = setInterval(() => {
      options.lease.heartbeatSent();
      this.send(channel, { type: 'heartbeat', sentAt: Date.now() });
    }, welcome.heartbeatMs);
    try {
      for (const { disk, epoch } of options.disks.liveEpochs()) this.send(channel, { type: 'applied', disk, epoch });
      for (const fault of this.heldFaults.values()) this.send(channel, fault);
      this.heldFaults.clear();
      for (;;) {
        const message = await channel.receive({ allowed: FROM_CONTROLLER });
        if (message === null) break;
        this.handle(channel, message);
      }
    } finally {
      clearInterval(heartbeat);
      options.lease.sessionEnded();
      this.transfers.clear();
      options.metrics.session(false);
    }
    const ended = channel.endError;
    if (ended === undefined) options.logger.info('the controller closed the session');
    else options.logger.warn({ code: ended.code }, `session ended: ${ended.message}`);
    return true;
  }

  /** CL1. */
  private handle(channel: WireChannel, message: WireMessage): void {
    const { disks, lease, logger } = this.options;
    const now = performance.now();
    switch (message.type) {
      case 'lease':
        if (lease.granted(message.leaseMs)) this.options.metrics.lease(true);
        else logger.warn({ code: 'VDM_WIRE_UNEXPECTED' }, 'a lease arrived that answers no heartbeat');
        break;
      case 'attachment':
        disks.attachment(message);
        break;
      case 'table-begin':
        if (this.transfers.size >= MAX_TRANSFERS) this.transfers.clear();
        this.transfers.set(message.transferId, new TableAssembler(message));
        break;
      case 'table-chunk': {
        const problem = this.transfers.get(message.transferId)?.addChunk(message);
        if (problem !== undefined) this.transferFailed(message.transferId, problem);
        break;
      }
      case 'table-end': {
        const assembler = this.transfers.get(message.transferId);
        this.transfers.delete(message.transferId);
        const doc = assembler?.finish(message);
        if (doc instanceof VdmapError) this.transferFailed(message.transferId, doc, assembler);
        else if (doc !== undefined) void disks.applyFull(doc, now);
        break;
      }
      case 'delta':
        void disks.applyDelta(message, now);
        break;
      case 'set-state':
        void disks.applySetState(message, now);
        break;
      case 'drain':
        void disks.drain(message.disk, message.timeoutMs).then((error) => this.send(channel, {
          type: 'drained', requestId: message.requestId, disk: message.disk, error: error === null ? null : { code: error.code, message: error.message },
        }));
        break;
      case 'resume':
        void disks.resume(message.disk).then((error) => this.send(channel, {
          type: 'drained', requestId: message.requestId, disk: message.disk, error: error === null ? null : { code: error.code, message: error.message },
        }));
        break;
      case 'error':
        logger.warn({ code: message.error.code }, `the controller reports: ${message.error.message}`);
        break;
      default:
        break;
    }
  }

  private transferFailed(transferId: number, error: VdmapError, assembler?: TableAssembler): void {
    const failed = assembler ?? this.transfers.get(transferId);
    this.transfers.delete(transferId);
    this.options.logger.warn({ code: error.code, transferId }, `table transfer failed: ${error.message}`);
    if (failed === undefined) return;
    this.sendFault({
      type: 'fault', disk: failed.disk, epoch: this.options.disks.epochOf(failed.disk) ?? 0, kind: 'table-unreadable',
      extent: null, operation: null, error: { code: error.code, message: error.message },
    });
  }

  /** Logs a failed attempt once per distinct code (a controller that is down is not logged every 5 s). */
  private logFailure(error: { code: string; message: string }): void {
    if (this.stopped) return;
    const level = error.code === 'VDM_AUTH_DENIED' || error.code === 'VDM_WIRE_VERSION' ? 'error' : 'warn';
    if (level === 'warn' && this.lastFailureCode === error.code) return;
    this.lastFailureCode = error.code;
    this.options.logger[level]({ code: error.code }, `cannot open a session with the controller: ${error.message}`);
  }
}

function openSocket(address: string): Promise<Socket> {
  const tcp = parseTcpAddress(address);
  return new Promise((resolve, reject) => {
    const socket = tcp === undefined ? connect({ path: address }) : connect({ host: tcp.host, port: tcp.port });
    socket.once('connect', () => {
      socket.off('error', onError);
      socket.setNoDelay(true);
      resolve(socket);
    });
    const onError = (error: NodeJS.ErrnoException): void => {
      socket.destroy();
      reject(new VdmapError('VDM_WIRE_CLOSED', `cannot connect to the controller at ${address}: ${error.message}`, { address, cause: error.code }));
    };
    socket.once('error', onError);
  });
}

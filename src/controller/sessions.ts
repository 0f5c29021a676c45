/**
 * SessionManager: starts an AgentSession for every agent that passed the handshake and turns its events into
 * the controller's bookkeeping: the registry (lastSeen, applied epochs), metrics, the fault handler, the
 * first full sync, and the periodic full-table backstop.
 *
 * Owns: the session lifecycle policy. Knows nothing about sockets or handshakes (connections.ts) nor about
 * what a fault means (fault-handler.ts).
 *
 * Invariants:
 *   SS1. A new session of an agent replaces the old one before it is sent anything (agent-registry.ts R1).
 *   SS2. Right after the welcome an agent gets, for every disk attached to it, the attachment and the full
 *        table at the latest epoch (table-sync.ts), then everything committed later, in order.
 *   SS3. An agent that acknowledges a disk it is not attached to (it held it across a detach while away) is
 *        told to drop it.
 *   SS4. Every resyncIntervalMs each connected agent gets the full table of every attached disk again, the
 *        consistency backstop: whatever its copy became, it is replaced by the stored one.
 *
 * Thread: the controller's main thread.
 * Errors leaving: none (failures are logged with their code).
 */
import type { Logger } from 'pino';
import { toErrorRecord, VdmapError } from '../errors/error.js';
import type { WireChannel } from '../wire/channel.js';
import type { AcceptedAgent } from '../wire/handshake.js';
import type { AgentRegistry } from './agent-registry.js';
import { AgentSession, type SessionEvents } from './agent-session.js';
import type { FaultHandler } from './fault-handler.js';
import type { ControllerMetrics } from './metrics.js';
import type { ControllerStore } from './store/store.js';
import type { TableDistributor } from './table-sync.js';

export interface SessionManagerOptions {
  store: ControllerStore;
  agents: AgentRegistry;
  tables: TableDistributor;
  faults: FaultHandler;
  metrics: ControllerMetrics;
  logger: Logger;
  leaseMs: number;
  heartbeatMs: number;
  resyncIntervalMs: number;
}

export class SessionManager {
  private readonly resyncTimer: NodeJS.Timeout;
  private closing = false;
  private readonly events: SessionEvents = {
    heartbeat: (session) => this.options.agents.seen(session.agent),
    applied: (session, disk, epoch) => this.applied(session, disk, epoch),
    fault: (session, fault) => this.options.faults.handle(session, fault),
    ended: (session, error) => this.ended(session, error),
  };

  constructor(private readonly options: SessionManagerOptions) {
    this.resyncTimer = setInterval(() => this.resyncAll(), options.resyncIntervalMs);
    this.resyncTimer.unref();
  }

  /** SS1, SS2. */
  async start(channel: WireChannel, accepted: AcceptedAgent): Promise<AgentSession> {
    const { agents, metrics, logger, leaseMs, heartbeatMs } = this.options;
    const session = new AgentSession(channel, accepted, { leaseMs, heartbeatMs, logger, metrics, events: this.events });
    const previous = agents.adopt(session) as AgentSession | undefined;
    if (previous !== undefined) {
      await previous.close(new VdmapError('VDM_WIRE_CLOSED', `replaced by a newer session of agent '${session.agent}'`));
    }
    metrics.sessions(agents.connectedCount());
    session.logger.info({ devices: accepted.devices.map((device) => device.id) }, 'agent connected');
    session.start();
    await this.options.tables.syncSession(session).catch((error: unknown) => this.logFailure(session, 'first sync', error));
    return session;
  }

  /** Ends every session; the caller persists the registry afterwards. */
  async closeAll(reason: VdmapError): Promise<void> {
    this.closing = true;
    clearInterval(this.resyncTimer);
    await Promise.all(this.options.agents.sessions().map((session) => session.close(reason)));
  }

  private applied(session: AgentSession, disk: string, epoch: number): void {
    const { agents, tables, metrics, store } = this.options;
    agents.applied(session.agent, disk, epoch);
    const committedAt = tables.commitTime(disk, epoch);
    metrics.agentApplied(session.agent, disk, epoch, committedAt === undefined ? undefined : (performance.now() - committedAt) / 1000);
    session.logger.debug({ disk, epoch }, 'applied');
    void store.listAttachments({ disk, agent: session.agent }).then(async (attachments) => {
      if (attachments.length === 0) await tables.detached(disk, session.agent); // SS3
    }).catch((error: unknown) => this.logFailure(session, 'attachment check', error));
  }

  private ended(session: AgentSession, error: VdmapError | undefined): void {
    const { agents, metrics, store } = this.options;
    if (!agents.release(session)) return;
    metrics.sessions(agents.connectedCount());
    if (error === undefined) session.logger.info('agent disconnected');
    else session.logger.warn({ code: error.code }, `agent disconnected: ${error.message}`);
    if (this.closing) return;
    void agents.persist(store).catch((failure: unknown) => this.logFailure(session, 'persisting the agent state', failure));
  }

  /** SS4. */
  private resyncAll(): void {
    for (const session of this.options.agents.sessions() as AgentSession[]) {
      void this.options.tables.syncSession(session).catch((error: unknown) => this.logFailure(session, 'resync', error));
    }
  }

  private logFailure(session: AgentSession, what: string, error: unknown): void {
    const record = toErrorRecord(error);
    session.logger.error({ code: record.code }, `${what} failed: ${record.message}`);
  }
}

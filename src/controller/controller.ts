/**
 * The controller daemon: startController() opens the store, listens for agents and admin clients, and serves
 * metrics; the returned handle closes it all.
 *
 *   src/controller/
 *     controller.ts      this file: options, wiring, start and close
 *     connections.ts     listeners, the challenge, agent handshake or admin requests, admin access rule
 *     sessions.ts        an AgentSession per authenticated agent; registry, faults, periodic resync
 *     agent-session.ts   one agent connection: send order, lease grants, receive loop
 *     agent-registry.ts  per-agent state beyond the store: session, lastSeen, applied epochs
 *     leases.ts          the controller's side of leases
 *     table-commit.ts    stage -> validate + commit -> push, under the global allocation lock
 *     table-sync.ts      what each agent is sent (attachment, set-state, delta, full table), in epoch order
 *     allocation.ts      free-extent bitmaps: first fit, cross-disk overlap check
 *     fault-handler.ts   faults: thin allocation, resends, logging
 *     admin-*.ts         the admin API: handlers, parameter checks, views, the request loop, the client
 *     metrics.ts         Prometheus metrics and their HTTP endpoint
 *     keyed-queue.ts     per-disk ordering
 *     store/             the persistent store (LMDB)
 *
 * Invariants:
 *   CT1. Nothing is acknowledged (admin response) before it is durable in the store (store.ts ST1), so a
 *        SIGKILL at any moment loses no acknowledged change; after a restart agents reconnect, get full tables
 *        and converge on the stored epochs.
 *   CT2. close() ends every session and listener, persists the agents' lastSeen / applied, then closes the
 *        store (which releases the data directory's owner lock); it is idempotent.
 *   CT3. One controller per data directory: the store's owner lock (store/owner-lock.ts) is taken before any
 *        socket is bound or unlinked and before the store is opened; a second one fails with VDM_STORE_LOCKED.
 *
 * Thread: the main thread of the controller process.
 * Errors leaving startController: VDM_STORE_OPEN, VDM_STORE_LOCKED, VDM_LISTEN_IN_USE and VDM_LISTEN_FAILED (cannot listen).
 */
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import { VdmapError } from '../errors/error.js';
import { controllerHandlers } from './admin-handlers.js';
import type { MethodTable } from './admin-session.js';
import { AgentRegistry } from './agent-registry.js';
import { ControllerListeners, type ListenAddresses } from './connections.js';
import { FaultHandler } from './fault-handler.js';
import { KeyedQueue } from './keyed-queue.js';
import { DEFAULT_LEASE_MS, heartbeatFor } from './leases.js';
import { ControllerMetrics, serveMetrics } from './metrics.js';
import { SessionManager } from './sessions.js';
import { LmdbStore } from './store/lmdb-store.js';
import { DEFAULT_KEEP_VERSIONS } from './store/store.js';
import { TableCommitter } from './table-commit.js';
import { TableDistributor } from './table-sync.js';

export const DEFAULT_CONTROLLER_PORT = 10810;
export const DEFAULT_RESYNC_INTERVAL_MS = 60_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;

export interface ControllerOptions {
  /** The store lives in dataDir/store; the default socket is dataDir/controller.sock. */
  dataDir: string;
  /** TCP endpoint for agents and loopback admin clients; false: none. Default 127.0.0.1:10810. */
  listen?: { host: string; port: number } | false;
  /** Unix socket path; false: none. Default dataDir/controller.sock. */
  socketPath?: string | false;
  /** Serve Prometheus metrics at http://host:port/metrics. */
  metrics?: { host: string; port: number };
  logger?: Logger;
  /** How long an agent may serve without a renewal (default 15 s); heartbeats every third of it. */
  leaseMs?: number;
  /** Full tables to every agent this often, the consistency backstop (default 60 s). */
  resyncIntervalMs?: number;
  /** Table versions kept per disk (default 16). */
  keepVersions?: number;
  handshakeTimeoutMs?: number;
  drainTimeoutMs?: number;
}

export interface ControllerAddresses extends ListenAddresses {
  metrics?: { host: string; port: number };
}

export interface ControllerHandle {
  addresses: ControllerAddresses;
  close(): Promise<void>;
}

export async function startController(options: ControllerOptions): Promise<ControllerHandle> {
  const logger = options.logger ?? pino({ name: 'vdmap-controller' });
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const heartbeatMs = heartbeatFor(leaseMs);
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  // CT3: owning the data directory comes first; a second controller on it stops here, having touched nothing.
  const store = await LmdbStore.open(join(options.dataDir, 'store'), {
    keepVersions: options.keepVersions ?? DEFAULT_KEEP_VERSIONS, ownedDirectory: options.dataDir,
  });
  const metrics = new ControllerMetrics();
  const agents = new AgentRegistry();
  agents.load(await store.listAgents(), Date.now() + leaseMs);
  const queue = new KeyedQueue();
  const tables = new TableDistributor({ store, agents, queue, logger });
  const committer = new TableCommitter({ store, tables, queue, lock: new KeyedQueue(), metrics, logger });
  const faults = new FaultHandler({ tables, committer, metrics, logger });
  const sessions = new SessionManager({
    store, agents, tables, faults, metrics, logger, leaseMs, heartbeatMs,
    resyncIntervalMs: options.resyncIntervalMs ?? DEFAULT_RESYNC_INTERVAL_MS,
  });
  const context = { store, agents, tables, committer, metrics, logger, drainTimeoutMs: options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS };
  const methods: MethodTable = Object.fromEntries(Object.entries(controllerHandlers)
    .map(([method, handler]) => [method, (params: Record<string, unknown>) => handler(context, params)]));
  const listeners = new ControllerListeners({
    store, sessions, methods, metrics, logger, leaseMs, heartbeatMs, handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
  });
  for (const disk of await store.listDisks()) {
    const doc = await tables.latest(disk.name);
    if (doc !== undefined) metrics.committed(disk.name, doc.epoch, 'startup');
  }
  let metricsServer: Server | undefined;
  const closeAll = async (): Promise<void> => {
    await listeners.close();
    await sessions.closeAll(new VdmapError('VDM_WIRE_CLOSED', 'the controller is shutting down'));
    await queue.idle();
    await agents.persist(store).catch(() => undefined);
    await store.close();
    await new Promise<void>((resolve) => (metricsServer === undefined ? resolve() : metricsServer.close(() => resolve())));
  };
  try {
    const listen = options.listen === false ? undefined : options.listen ?? { host: '127.0.0.1', port: DEFAULT_CONTROLLER_PORT };
    const socketPath = options.socketPath === false ? undefined : options.socketPath ?? join(options.dataDir, 'controller.sock');
    const addresses: ControllerAddresses = await listeners.listen(listen, socketPath);
    if (options.metrics !== undefined) {
      const served = await serveMetrics(metrics.registry, options.metrics);
      metricsServer = served.server;
      addresses.metrics = served.address;
    }
    logger.info({ addresses, leaseMs, heartbeatMs }, 'controller started');
    let closing: Promise<void> | undefined;
    return {
      addresses,
      close: () => {
        closing ??= closeAll().then(() => logger.info('controller stopped'));
        return closing;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

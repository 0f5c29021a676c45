/**
 * The agent daemon: startAgent() connects to the controller, holds the tables of the disks attached to this
 * host in shared memory, serves them over NBD from the I/O workers, and answers `agent.inspect` on its admin
 * socket.
 *
 *   src/agent/
 *     agent.ts             this file: options, wiring, start and close
 *     controller-link.ts   the session with the controller: handshake, heartbeats, messages, reconnects
 *     agent-lease.ts       the lease and its lapse
 *     attached-disks.ts    applying tables, drains and the fence to each AgentDisk
 *     agent-admin.ts       the admin socket
 *     agent-metrics.ts     Prometheus metrics, incl. the workers' batched I/O counts
 *     agent-disk.ts, virtual-disk.ts, workers/, nbd-listener.ts   the data path
 *
 * Invariants:
 *   AG1. A disk is served (attached to the I/O workers, exported over NBD under its name) only after its first
 *        full table was validated and applied.
 *   AG2. Every table change goes through the epoch flip (AgentDisk), so no I/O ever sees a half-applied table.
 *   AG3. close() stops talking to the controller first, then stops NBD and the workers (in-flight I/O
 *        completes), then closes the devices; it is idempotent.
 *
 * Thread: the main thread of the agent process; I/O runs on the workers.
 * Errors leaving startAgent: VDM_AUTH_CREDENTIAL_FORMAT, VDM_LISTEN_IN_USE and VDM_LISTEN_FAILED (sockets), VDM_RING_SETUP (workers).
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import type { ErrorRecord } from '../errors/error.js';
import { VdmapError } from '../errors/error.js';
import type { AgentInspectView } from '../controller/admin-api.js';
import { decodeCredential } from '../wire/auth.js';
import { DEFAULT_END_TIMEOUT_MS } from '../nbd/connection.js';
import type { FaultMessage } from '../wire/messages.js';
import { AgentAdminSocket } from './agent-admin.js';
import { AgentLease } from './agent-lease.js';
import { AgentMetrics, serveAgentMetrics } from './agent-metrics.js';
import { AttachedDisks } from './attached-disks.js';
import { ControllerLink } from './controller-link.js';
import type { Fault } from './faults.js';
import { type NbdEndpoints, NbdListener } from './nbd-listener.js';
import { IoWorkerPool } from './workers/io-worker-pool.js';

export interface AgentOptions {
  /** The controller: HOST:PORT or a Unix socket path. */
  controller: string;
  /** The name the agent was enrolled under. */
  name: string;
  /** The credential text `vdmap agent enroll` printed (the token file's content). */
  credential: string;
  /** Holds the admin socket (dataDir/agent.sock). */
  dataDir: string;
  /** NBD endpoints; default TCP 127.0.0.1:10809 and dataDir/nbd.sock. */
  nbd?: { tcp?: { host: string; port: number } | false; unixPath?: string };
  /** I/O worker threads (default 2). 0: a control-plane-only agent that applies tables but serves no I/O. */
  workers?: number;
  metrics?: { host: string; port: number };
  logger?: Logger;
  /** How long an I/O may be held by an entry state before it fails (default 30 s). */
  holdTimeoutMs?: number;
  /** Aligned I/O memory per worker (default 64 MiB). */
  ioPoolBytes?: number;
  drainTimeoutMs?: number;
}

export interface AgentHandle {
  addresses: { nbd: NbdEndpoints; adminSocket: string; metrics?: { host: string; port: number } };
  /** Emits 'applied' (disk: string, epoch: number) whenever a table change became live. */
  events: EventEmitter;
  inspect(): AgentInspectView;
  close(): Promise<void>;
}

const DEFAULT_WORKERS = 2;

export async function startAgent(options: AgentOptions): Promise<AgentHandle> {
  const secret = decodeCredential(options.credential);
  if (secret instanceof VdmapError) throw secret;
  const logger = options.logger ?? pino({ name: 'vdmap-agent' });
  const log = logger.child({ agent: options.name });
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const workers = options.workers ?? DEFAULT_WORKERS;
  const metrics = new AgentMetrics();
  const events = new EventEmitter();
  let link: ControllerLink | undefined;
  const pool = workers === 0 ? undefined : new IoWorkerPool({
    threads: workers, poolBytes: options.ioPoolBytes, holdTimeoutMs: options.holdTimeoutMs,
    onFault: (fault) => link?.sendFault(faultMessage(fault, disks.epochOf(fault.disk))),
    onError: (slot, error) => log.warn({ code: error.code, worker: slot }, `I/O worker: ${error.message}`),
    onRestart: (slot, error) => log.error({ code: 'VDM_INTERNAL', worker: slot, cause: String(error) }, 'I/O worker died and was replaced'),
    onIoStats: (_slot, stats) => metrics.io(stats),
  });
  const disks = new AttachedDisks({
    readerSlots: workers + 1, pool, logger: log, metrics, drainTimeoutMs: options.drainTimeoutMs,
    report: (fault) => link?.sendFault(fault),
    applied: (disk, epoch) => {
      link?.sendApplied(disk, epoch);
      events.emit('applied', disk, epoch);
    },
  });
  const lease = new AgentLease(() => link?.leaseLapsed());
  link = new ControllerLink({ address: options.controller, name: options.name, secret, disks, lease, logger: log, metrics });
  const nbd = pool === undefined ? undefined : new NbdListener(pool, {
    tcp: options.nbd?.tcp ?? { host: '127.0.0.1', port: 10809 }, unixPath: options.nbd?.unixPath ?? join(options.dataDir, 'nbd.sock'),
  });
  let nbdEndpoints: NbdEndpoints = {};
  const inspect = (): AgentInspectView => ({
    agent: options.name, connected: link?.connected ?? false, leaseExpiresAt: lease.expiresAt(), disks: disks.inspect(),
    nbd: { tcp: nbdEndpoints.tcp === undefined ? undefined : `${nbdEndpoints.tcp.host}:${nbdEndpoints.tcp.port}`, unix: nbdEndpoints.unixPath, connections: pool?.connectionCounts() ?? [] },
  });
  const admin = new AgentAdminSocket(join(options.dataDir, 'agent.sock'), { 'agent.inspect': async () => inspect() }, log);
  let metricsServer: Server | undefined;
  const closeAll = async (): Promise<void> => {
    await link?.stop();
    lease.close();
    await nbd?.close();
    announceClientWait(log, pool?.connectionCounts() ?? []);
    await pool?.close();
    disks.close();
    await admin.close();
    await new Promise<void>((resolve) => (metricsServer === undefined ? resolve() : metricsServer.close(() => resolve())));
  };
  try {
    await pool?.start();
    nbdEndpoints = (await nbd?.listen()) ?? {};
    const adminSocket = await admin.listen();
    const addresses: AgentHandle['addresses'] = { nbd: nbdEndpoints, adminSocket };
    if (options.metrics !== undefined) {
      const served = await serveAgentMetrics(metrics.registry, options.metrics);
      metricsServer = served.server;
      addresses.metrics = served.address;
    }
    link.start();
    log.info({ addresses, workers, controller: options.controller }, 'agent started');
    let closing: Promise<void> | undefined;
    return {
      addresses, events, inspect,
      close: () => {
        closing ??= closeAll().then(() => log.info('agent stopped'));
        return closing;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** A data-path fault as the wire carries it; held requests get the code of their hold. */
function faultMessage(fault: Fault, liveEpoch: number | undefined): FaultMessage {
  return {
    type: 'fault', disk: fault.disk, epoch: fault.epoch >= 0 ? fault.epoch : liveEpoch ?? 0, kind: fault.kind,
    extent: fault.extent >= 0 ? fault.extent : null, operation: fault.operation, error: fault.error ?? heldError(fault),
  };
}

function heldError(fault: Fault): ErrorRecord {
  const what = `${fault.operation} of extent ${fault.extent} of '${fault.disk}'`;
  switch (fault.kind) {
    case 'invalid': return { code: 'VDM_STATE_INVALID_HELD', message: `${what} is held: the extent has no valid mapping` };
    case 'nowrite': return { code: 'VDM_STATE_NOWRITE_HELD', message: `${what} is held: the extent is NOWRITE` };
    case 'unallocated': return { code: 'VDM_STATE_UNALLOCATED_HELD', message: `${what} is held: the extent is not allocated yet` };
    default: return { code: 'VDM_IO_DEVICE', message: `${what} failed on its device` };
  }
}

/**
 * Stopping the workers ends every NBD session, and a client that does not close its end is given
 * DEFAULT_END_TIMEOUT_MS before its socket is destroyed (src/nbd/transmission.ts finish): said once, before the
 * wait, so that a quiet pause at shutdown has its reason on the terminal.
 */
function announceClientWait(log: Logger, connectionCounts: number[]): void {
  const clients = connectionCounts.reduce((sum, count) => sum + count, 0);
  if (clients === 0) return;
  const seconds = DEFAULT_END_TIMEOUT_MS / 1000;
  log.info({ clients, timeoutMs: DEFAULT_END_TIMEOUT_MS }, `waiting up to ${seconds} s for ${clients} NBD client${clients === 1 ? '' : 's'} to disconnect`);
}

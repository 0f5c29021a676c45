/**
 * The controller's listeners (TCP and a Unix socket) and what happens on each accepted connection: the
 * challenge, then either the agent handshake and an AgentSession, or admin requests.
 *
 * Admin access (decided here): admin requests need no credential; who may reach the listener decides.
 *   - the Unix socket is created owner-only (0600) in the owner-only data directory: file permissions are
 *     the access control, as for the LMDB files that hold the agents' credentials;
 *   - on TCP, admin requests are served only to loopback peers (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104), that
 *     is to processes on the controller host; any other peer is answered VDM_ADMIN_DENIED and dropped. Agents
 *     authenticate on TCP from anywhere with their credential (src/wire/auth.ts).
 *
 * Owns: listening sockets, the connection limit, the admin-access rule and the refusal log lines. Knows
 * nothing about sessions or methods beyond handing them the channel.
 *
 * Invariants:
 *   CN1. No input crashes the process: every refusal (frames, seals, shapes, credentials, timeouts) ends only
 *        that connection, is logged with its code and counted (vdmap_controller_refusals_total).
 *   CN2. An unauthenticated peer receives nothing but the challenge and, if refused, a plain error.
 *   CN3. At most maxConnections connections are open; more are closed at once.
 *   CN4. close() stops accepting, destroys every connection and removes the socket file.
 *
 * Thread: the controller's main thread.
 * Errors leaving: listen() throws VDM_LISTEN_IN_USE (EADDRINUSE) or VDM_LISTEN_FAILED (EACCES, ...), with
 * details.address and details.cause, when it cannot listen.
 */
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { listenError } from '../errors/errno.js';
import { VdmapError } from '../errors/error.js';
import { WireChannel } from '../wire/channel.js';
import { completeAgentHandshake, controllerOpening } from '../wire/handshake.js';
import type { RequestMessage } from '../wire/messages.js';
import { type MethodTable, serveAdmin } from './admin-session.js';
import type { ControllerMetrics } from './metrics.js';
import type { SessionManager } from './sessions.js';
import type { ControllerStore } from './store/store.js';

export interface ConnectionOptions {
  store: ControllerStore;
  sessions: SessionManager;
  methods: MethodTable;
  metrics: ControllerMetrics;
  logger: Logger;
  leaseMs: number;
  heartbeatMs: number;
  handshakeTimeoutMs: number;
  maxConnections?: number;
}

export type Via = 'tcp' | 'unix';

export interface ListenAddresses {
  tcp?: { host: string; port: number };
  socketPath?: string;
}

export class ControllerListeners {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private socketPath: string | undefined;

  constructor(private readonly options: ConnectionOptions) {}

  async listen(tcp: { host: string; port: number } | undefined, socketPath: string | undefined): Promise<ListenAddresses> {
    const addresses: ListenAddresses = {};
    if (tcp !== undefined) {
      const server = await this.open('tcp', tcp, (s) => s.listen(tcp.port, tcp.host));
      const address = server.address();
      addresses.tcp = { host: tcp.host, port: typeof address === 'object' && address !== null ? address.port : tcp.port };
    }
    if (socketPath !== undefined) {
      rmSync(socketPath, { force: true });
      await this.open('unix', socketPath, (s) => s.listen(socketPath));
      chmodSync(socketPath, 0o600);
      this.socketPath = socketPath;
      addresses.socketPath = socketPath;
    }
    return addresses;
  }

  /** CN4. */
  async close(): Promise<void> {
    const closed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closed);
    if (this.socketPath !== undefined) rmSync(this.socketPath, { force: true });
  }

  private open(via: Via, where: { host: string; port: number } | string, start: (server: Server) => void): Promise<Server> {
    const server = createServer((socket) => this.accept(socket, via));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', (error) => reject(listenError(error, where, `controller (${via})`)));
      server.once('listening', () => resolve(server));
      start(server);
    });
  }

  private accept(socket: Socket, via: Via): void {
    if (this.sockets.size >= (this.options.maxConnections ?? 1024)) { // CN3
      this.options.metrics.refused('connection-limit');
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined); // reported through the channel
    void this.serve(socket, via).catch((error: unknown) => {
      this.options.logger.error({ code: 'VDM_INTERNAL', err: error }, 'connection handler failed');
      socket.destroy();
    });
  }

  private async serve(socket: Socket, via: Via): Promise<void> {
    const { logger, metrics } = this.options;
    const peer = via === 'unix' ? 'unix' : `${socket.remoteAddress}:${socket.remotePort}`;
    let refused = false;
    const channel = new WireChannel(socket, {
      onRefusal: (error) => { // CN1
        refused = true;
        metrics.refused(error.code);
        logger.warn({ code: error.code, peer, details: error.details }, `connection refused: ${error.message}`);
      },
    });
    const opening = await controllerOpening(channel, this.options.handshakeTimeoutMs);
    if (opening instanceof VdmapError) {
      if (!refused) { // the peer went away before its first message (cut off mid-frame, or just closed)
        metrics.refused(opening.code);
        logger[opening.code === 'VDM_WIRE_CLOSED' ? 'info' : 'warn']({ code: opening.code, peer }, `connection ended before the handshake: ${opening.message}`);
      }
      return;
    }
    if (opening.first.type === 'request') {
      await this.serveAdminPeer(channel, socket, via, peer, opening.first);
      return;
    }
    const accepted = await completeAgentHandshake(channel, opening.challenge, opening.first, {
      lookupSecret: async (agent) => (await this.options.store.getAgent(agent))?.credential,
      leaseMs: this.options.leaseMs, heartbeatMs: this.options.heartbeatMs,
    });
    if (accepted instanceof VdmapError) {
      metrics.refused(accepted.code);
      logger.warn({ code: accepted.code, peer, agent: opening.first.agent, reason: accepted.details?.reason }, `agent refused: ${accepted.message}`);
      return;
    }
    await this.options.sessions.start(channel, accepted);
  }

  private async serveAdminPeer(channel: WireChannel, socket: Socket, via: Via, peer: string, first: RequestMessage): Promise<void> {
    const { logger, metrics } = this.options;
    if (!adminAllowed(via, socket.remoteAddress)) {
      const error = new VdmapError('VDM_ADMIN_DENIED', 'admin requests are served on the Unix socket and to loopback TCP peers only', { peer });
      metrics.refused(error.code);
      logger.warn({ code: error.code, peer }, error.message);
      await channel.send({ type: 'response', id: first.id, ok: false, error: { code: error.code, message: error.message } });
      await channel.close();
      return;
    }
    await serveAdmin(channel, first, this.options.methods, {
      logger: logger.child({ peer, admin: true }),
      onRequest: (method, result) => metrics.adminRequest(Object.hasOwn(this.options.methods, method) ? method : 'unknown', result),
    });
  }
}

/** The admin-access rule (file header). */
export function adminAllowed(via: Via, remoteAddress: string | undefined): boolean {
  if (via === 'unix') return true;
  if (remoteAddress === undefined) return false;
  return remoteAddress === '::1' || /^127\./.test(remoteAddress) || /^::ffff:127\./i.test(remoteAddress);
}

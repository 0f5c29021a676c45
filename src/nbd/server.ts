/**
 * NbdServer: accepts NBD clients on TCP (default 127.0.0.1:10809) and/or a Unix socket and serves each with
 * serveConnection (connection.ts).
 *
 * Owns: the listening sockets, the set of live connections, the connection and handshake limits, and the
 * shutdown sequence. Does not know: the protocol (connection.ts and below) or what an Export is backed by.
 *
 * Invariants:
 *   S1. At most `maxConnections` connections, of which at most `maxHandshakes` are still in the handshake.
 *       A connection over either limit is closed at once, before any byte is read, so a flood of
 *       connections costs only an accept and a close and never touches established ones.
 *   S2. close() steps, in order:
 *         1. stop accepting (listening sockets closed, the Unix socket path removed);
 *         2. ask every connection to shut down (in-flight requests finish, new ones get ESHUTDOWN,
 *            handshaking clients get NBD_REP_ERR_SHUTDOWN);
 *         3. after `closeGraceMs`, destroy every socket still open;
 *         4. resolve once every connection's serveConnection has resolved (its export calls settled).
 *   S3. A Unix socket path is only unlinked if nothing answers on it (a stale socket) or if this server
 *       listened on it; never another server's live socket.
 *
 * Thread: the thread that created it (main or worker). Error codes reported through onError:
 * VDM_NBD_CONNECTION_LIMIT, plus everything connection.ts reports.
 */
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type ErrorRecord, VdmapError } from '../errors/error.js';
import { type ConnectionOptions, serveConnection } from './connection.js';
import type { ExportRegistry } from './export.js';

export interface NbdServerOptions {
  registry: ExportRegistry;
  /** TCP listener; `false` for none. Default 127.0.0.1:10809. */
  tcp?: { host?: string; port?: number } | false;
  /** Unix socket path to listen on as well (or instead, with `tcp: false`). */
  unixPath?: string;
  /** S1 (default 256). */
  maxConnections?: number;
  /** S1 (default 64). */
  maxHandshakes?: number;
  /** S2 step 3 (default 10 s). */
  closeGraceMs?: number;
  /** Per-connection limits and callbacks (the server supplies `signal` and `onTransmission` itself). */
  connection?: Omit<ConnectionOptions, 'signal' | 'onTransmission' | 'onError'>;
  onError?: (record: ErrorRecord) => void;
}

export interface NbdServerAddress {
  tcp?: { host: string; port: number };
  unixPath?: string;
}

interface LiveConnection {
  socket: Socket;
  handshaking: boolean;
  done: Promise<void>;
}

export const DEFAULT_NBD_PORT = 10809;

export class NbdServer {
  private readonly listeners: Server[] = [];
  private readonly connections = new Set<LiveConnection>();
  private readonly shutdown = new AbortController();
  private handshaking = 0;
  private listeningOnUnixPath = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: NbdServerOptions) {}

  /** Starts listening; resolves with the bound addresses (a TCP port 0 is resolved to the real port). */
  async listen(): Promise<NbdServerAddress> {
    const address: NbdServerAddress = {};
    const tcp = this.options.tcp === undefined ? {} : this.options.tcp;
    if (tcp !== false) {
      const server = await this.listenOn({ host: tcp.host ?? '127.0.0.1', port: tcp.port ?? DEFAULT_NBD_PORT });
      const bound = server.address();
      if (bound !== null && typeof bound === 'object') address.tcp = { host: bound.address, port: bound.port };
    }
    if (this.options.unixPath !== undefined) {
      await removeStaleSocket(this.options.unixPath);
      await this.listenOn({ path: this.options.unixPath });
      this.listeningOnUnixPath = true;
      address.unixPath = this.options.unixPath;
    }
    return address;
  }

  /** Live connections (handshaking or transmitting). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** S2. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeSteps();
    return this.closing;
  }

  private async closeSteps(): Promise<void> {
    // Step 1. net.Server.close() calls back only once every connection has ended, so it is awaited last.
    const listenersClosed = Promise.all(this.listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    const path = this.options.unixPath;
    if (path !== undefined && this.listeningOnUnixPath) {
      this.listeningOnUnixPath = false;
      if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
    }
    // Step 2.
    this.shutdown.abort();
    // Step 3.
    const grace = setTimeout(() => {
      for (const connection of this.connections) connection.socket.destroy();
    }, this.options.closeGraceMs ?? 10_000);
    // Step 4.
    await Promise.all([...this.connections].map((connection) => connection.done));
    clearTimeout(grace);
    await listenersClosed;
  }

  private listenOn(where: { host: string; port: number } | { path: string }): Promise<Server> {
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.accepted(socket)); // T5
    this.listeners.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(where, () => {
        server.off('error', reject);
        resolve(server);
      });
    });
  }

  /** S1. */
  private accepted(socket: Socket): void {
    const maxConnections = this.options.maxConnections ?? 256;
    const maxHandshakes = this.options.maxHandshakes ?? 64;
    if (this.closing !== undefined || this.connections.size >= maxConnections || this.handshaking >= maxHandshakes) {
      if (this.closing === undefined) {
        this.report(new VdmapError('VDM_NBD_CONNECTION_LIMIT', 'connection refused at the limit', {
          connections: this.connections.size, handshaking: this.handshaking, maxConnections, maxHandshakes,
        }).toRecord());
      }
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    const connection: LiveConnection = { socket, handshaking: true, done: Promise.resolve() };
    const handshakeOver = (): void => {
      if (!connection.handshaking) return;
      connection.handshaking = false;
      this.handshaking--;
    };
    this.handshaking++;
    this.connections.add(connection);
    connection.done = serveConnection(socket, this.options.registry, {
      ...this.options.connection,
      signal: this.shutdown.signal,
      onError: (record) => this.report(record),
      onTransmission: handshakeOver,
    }).finally(() => {
      handshakeOver();
      this.connections.delete(connection);
    });
  }

  private report(record: ErrorRecord): void {
    this.options.onError?.(record);
  }
}

/** S3: removes `path` only if it is a socket nobody listens on. */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path) || !lstatSync(path).isSocket()) return;
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!live) unlinkSync(path);
}

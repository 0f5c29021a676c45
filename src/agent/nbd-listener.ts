/**
 * NbdListener: accepts NBD clients on TCP and a Unix socket in the agent's main thread and hands each one,
 * once, to an I/O worker, which then owns the connection and its disk I/O (no per-request thread hop).
 *
 * Owns: the listening sockets and the connection limit. Knows nothing about the protocol (src/nbd runs in the
 * worker) nor about disks.
 *
 * Hand-over, per client:
 *   1. accept with pauseOnConnect, so the main thread never reads a byte of the client's stream;
 *   2. duplicate the socket's fd (fcntl F_DUPFD_CLOEXEC) and destroy the main thread's socket, which closes
 *      only the original fd;
 *   3. post the duplicate to the worker with the fewest connections; the worker wraps it in a net.Socket.
 *
 * Invariants:
 *   N1. Every accepted fd is either handed to exactly one worker or closed here.
 *   N2. Beyond `maxConnections` open clients, new ones are closed at once (a flood never starves the others).
 * Thread: the agent's main thread.
 * Errors leaving: listen() throws VDM_LISTEN_IN_USE or VDM_LISTEN_FAILED (details.address, details.cause).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { listenError } from '../errors/errno.js';
import { duplicateDescriptor } from '../native/index.js';
import type { IoWorkerPool } from './workers/io-worker-pool.js';

export interface NbdListenerOptions {
  /** TCP endpoint, or false for none. Default 127.0.0.1:10809. */
  tcp?: { host: string; port: number } | false;
  /** Unix socket path. */
  unixPath?: string;
  maxConnections?: number;
}

export interface NbdEndpoints {
  tcp?: { host: string; port: number };
  unixPath?: string;
}

export const DefaultNbdPort = 10809;

export class NbdListener {
  private readonly servers: Server[] = [];
  private readonly maxConnections: number;

  constructor(private readonly pool: IoWorkerPool, private readonly options: NbdListenerOptions = {}) {
    this.maxConnections = options.maxConnections ?? 1024;
  }

  async listen(): Promise<NbdEndpoints> {
    const endpoints: NbdEndpoints = {};
    const tcp = this.options.tcp ?? { host: '127.0.0.1', port: DefaultNbdPort };
    if (tcp) {
      const server = await this.open(tcp, (s) => s.listen(tcp.port, tcp.host));
      const address = server.address();
      endpoints.tcp = { host: tcp.host, port: typeof address === 'object' && address ? address.port : tcp.port };
    }
    if (this.options.unixPath) {
      rmSync(this.options.unixPath, { force: true });
      const path = this.options.unixPath;
      await this.open(path, (s) => s.listen(path));
      endpoints.unixPath = path;
    }
    return endpoints;
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    if (this.options.unixPath) rmSync(this.options.unixPath, { force: true });
  }

  private open(where: { host: string; port: number } | string, start: (server: Server) => void): Promise<Server> {
    const server = createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.handOver(socket));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      const failed = (error: Error) => reject(listenError(error, where, 'NBD'));
      server.once('error', failed);
      server.once('listening', () => {
        server.off('error', failed);
        resolve(server);
      });
      start(server);
    });
  }

  private handOver(socket: Socket): void {
    const open = this.pool.connectionCounts().reduce((sum, count) => sum + count, 0);
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (open >= this.maxConnections || typeof fd !== 'number' || fd < 0) {
      socket.destroy(); // N2 / N1
      return;
    }
    let copy: number;
    try {
      copy = duplicateDescriptor(fd);
    } catch {
      socket.destroy();
      return;
    }
    socket.destroy();
    this.pool.handConnection(copy);
  }
}

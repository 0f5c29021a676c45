/**
 * The agent's admin socket (`<dataDir>/agent.sock`, owner-only): the same framing as the controller's admin
 * connections (challenge, then requests; src/controller/admin-session.ts), serving AgentMethods of
 * src/controller/admin-api.ts: `agent.inspect`.
 *
 * Owns: the socket file and its permissions. Access control is the file mode (0600, like the controller's
 * socket): whoever can open it may inspect.
 *
 * Invariants:
 *   AA1. Only `request` messages are accepted; anything else ends that connection (channel.ts W2), never the agent.
 *   AA2. close() stops accepting, ends every connection and removes the socket file.
 *
 * Thread: the agent's main thread.
 * Errors leaving: listen() throws VDM_LISTEN_IN_USE or VDM_LISTEN_FAILED when the socket cannot be created.
 */
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { listenError } from '../errors/errno.js';
import { VdmapError } from '../errors/error.js';
import { type MethodTable, serveAdmin } from '../controller/admin-session.js';
import { WireChannel } from '../wire/channel.js';
import { controllerOpening } from '../wire/handshake.js';
import type { MessageType } from '../wire/messages.js';

const REQUEST_ONLY: ReadonlySet<MessageType> = new Set<MessageType>(['request']);

export class AgentAdminSocket {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly path: string, private readonly methods: MethodTable, private readonly logger: Logger) {}

  async listen(): Promise<string> {
    rmSync(this.path, { force: true });
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => reject(listenError(error, this.path, 'agent admin socket')));
      server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o600);
    return this.path;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    rmSync(this.path, { force: true });
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const channel = new WireChannel(socket, {
      onRefusal: (error) => this.logger.warn({ code: error.code }, `admin connection refused: ${error.message}`),
    });
    void (async () => {
      const opening = await controllerOpening(channel, 10_000, REQUEST_ONLY);
      if (opening instanceof VdmapError || opening.first.type !== 'request') return;
      await serveAdmin(channel, opening.first, this.methods, { logger: this.logger.child({ admin: true }) });
    })().catch((error: unknown) => {
      this.logger.error({ code: 'VDM_INTERNAL', err: error }, 'admin connection failed');
      socket.destroy();
    });
  }
}

/**
 * The admin client: one connection to a controller (or to an agent's admin socket) that sends `request`s and
 * reads their `response`s, typed by admin-api.ts. The CLI and the tests use it; nothing else speaks admin.
 *
 * Owns: address parsing (HOST:PORT is TCP, anything else a Unix socket path), the opening (read the
 * controller's challenge, check its protocol version) and request ids. Knows nothing about what a method does.
 *
 * Invariants:
 *   AC1. Calls on one client run one at a time, in call order (a request is sent only after the previous
 *        response arrived), so responses are matched by id and order alike.
 *   AC2. A failed call rejects with a VdmapError carrying the daemon's code (admin-api.ts A1); a connection that
 *        cannot be opened rejects with VDM_WIRE_CLOSED (details.address, details.cause).
 *   AC3. After the connection ends every later call rejects at once; close() is idempotent.
 *
 * Thread: the caller's (main thread).
 * Errors leaving: the daemon's codes, VDM_WIRE_CLOSED, VDM_WIRE_VERSION, VDM_WIRE_TIMEOUT, VDM_WIRE_MALFORMED.
 */
import { connect, type Socket } from 'node:net';
import { VdmapError } from '../errors/error.js';
import { checkProtocol } from '../wire/auth.js';
import { WireChannel } from '../wire/channel.js';
import type { MessageType, PlainData } from '../wire/messages.js';
import type { AgentMethods, ControllerMethods } from './admin-api.js';

type AdminMethods = ControllerMethods & AgentMethods;
export type AdminMethod = keyof AdminMethods;

export interface AdminClient {
  call<M extends AdminMethod>(method: M, params: AdminMethods[M]['params']): Promise<AdminMethods[M]['result']>;
  close(): Promise<void>;
}

export interface ConnectAdminOptions {
  /** How long to wait for the connection and the challenge; default 10 s. */
  openTimeoutMs?: number;
  /** How long one call may wait for its response; default 120 s. */
  callTimeoutMs?: number;
}

const CHALLENGE: ReadonlySet<MessageType> = new Set<MessageType>(['challenge', 'error']);
const RESPONSE: ReadonlySet<MessageType> = new Set<MessageType>(['response', 'error']);

/** A TCP endpoint for `HOST:PORT` (IPv6 in brackets), else undefined (a socket path). */
export function parseTcpAddress(address: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  if (match === null || Number(match[2]) > 65535) return undefined;
  return { host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

/** Opens an admin connection to `address` (AC2). */
export async function connectAdmin(address: string, options: ConnectAdminOptions = {}): Promise<AdminClient> {
  const openTimeoutMs = options.openTimeoutMs ?? 10_000;
  const socket = await openSocket(address, openTimeoutMs);
  const channel = new WireChannel(socket);
  const challenge = await channel.receive({ allowed: CHALLENGE, timeoutMs: openTimeoutMs });
  if (challenge === null || challenge.type !== 'challenge') {
    socket.destroy();
    throw challenge?.type === 'error' ? VdmapError.fromRecord(challenge.error)
      : channel.endError ?? new VdmapError('VDM_WIRE_CLOSED', `${address} closed before its challenge`, { address });
  }
  const versionProblem = checkProtocol(challenge.protocol, 'controller');
  if (versionProblem !== undefined) {
    socket.destroy();
    throw versionProblem;
  }
  return new Client(channel, socket, options.callTimeoutMs ?? 120_000);
}

function openSocket(address: string, timeoutMs: number): Promise<Socket> {
  const tcp = parseTcpAddress(address);
  return new Promise((resolve, reject) => {
    const socket = tcp === undefined ? connect({ path: address }) : connect({ host: tcp.host, port: tcp.port });
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (error: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(new VdmapError('VDM_WIRE_CLOSED', `cannot connect to ${address}: ${error.message}`,
        { address, cause: error.code ?? error.message }));
    };
    socket.once('error', onError);
  });
}

class Client implements AdminClient {
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly channel: WireChannel, private readonly socket: Socket, private readonly callTimeoutMs: number) {}

  call<M extends AdminMethod>(method: M, params: AdminMethods[M]['params']): Promise<AdminMethods[M]['result']> {
    const result = this.queue.then(() => this.exchange(method, params as unknown as { [key: string]: PlainData }));
    this.queue = result.catch(() => undefined);
    return result as Promise<AdminMethods[M]['result']>;
  }

  async close(): Promise<void> {
    if (this.channel.isOpen) await this.channel.close();
    this.socket.destroy();
  }

  /** AC1: one request, its response. */
  private async exchange(method: string, params: { [key: string]: PlainData }): Promise<unknown> {
    const id = this.nextId++;
    const sent = await this.channel.send({ type: 'request', id, method, params });
    if (!sent) throw this.channel.endError ?? new VdmapError('VDM_WIRE_CLOSED', 'the admin connection is closed');
    const response = await this.channel.receive({ allowed: RESPONSE, timeoutMs: this.callTimeoutMs });
    if (response === null) {
      throw this.channel.endError ?? new VdmapError('VDM_WIRE_CLOSED', `the connection closed before the response to ${method}`);
    }
    if (response.type === 'error') throw VdmapError.fromRecord(response.error);
    if (response.type !== 'response' || response.id !== id) {
      throw new VdmapError('VDM_WIRE_UNEXPECTED', `expected the response to request ${id}`, { method });
    }
    if (!response.ok) throw VdmapError.fromRecord(response.error);
    return response.result;
  }
}

/**
 * An admin connection: after the challenge, `request` after `request`, each answered by one `response` with
 * the same id, until the client closes. Serves the controller's methods (admin-handlers.ts) and the agent's
 * admin socket (src/agent/agent-admin.ts) alike: the caller passes the method table.
 *
 * Owns: dispatch by method name, the turning of every failure into an error response, and the log line and
 * metric of each request. Knows nothing about what a method does.
 *
 * Invariants:
 *   AS1. Every request gets exactly one response, in order; a handler's throw becomes {ok: false, error} with
 *        the error's code (an unknown method: VDM_ADMIN_UNKNOWN_METHOD), never a dropped connection.
 *   AS2. A result too large for one frame is answered with VDM_WIRE_FRAME_TOO_LARGE instead of the result.
 *   AS3. Anything but a `request` ends the connection (channel.ts W2); admin frames are never sealed.
 *   AS4. A request is logged at info, or at debug when its method only reads (admin-api.ts ReadOnlyMethods);
 *        a VDM_INTERNAL failure at error.
 *
 * Thread: the daemon's main thread.
 * Errors leaving: none (every failure is a response or a logged refusal).
 */
import type { Logger } from 'pino';
import { toErrorRecord, VdmapError } from '../errors/error.js';
import type { WireChannel } from '../wire/channel.js';
import { ReadOnlyMethods } from './admin-api.js';
import type { MessageType, PlainData, RequestMessage, ResponseMessage } from '../wire/messages.js';

export type MethodTable = Record<string, (params: Record<string, unknown>) => Promise<unknown>>;

export interface AdminSessionOptions {
  logger: Logger;
  onRequest?: (method: string, result: string) => void;
}

const REQUEST: ReadonlySet<MessageType> = new Set<MessageType>(['request']);

/** Serves `first` and every later request on `channel` (AS1-AS3); resolves when the client is gone. */
export async function serveAdmin(channel: WireChannel, first: RequestMessage, methods: MethodTable,
  options: AdminSessionOptions): Promise<void> {
  let request: RequestMessage | undefined = first;
  while (request !== undefined) {
    const response = await answer(request, methods, options);
    await sendResponse(channel, response, options.logger);
    const next = await channel.receive({ allowed: REQUEST });
    request = next !== null && next.type === 'request' ? next : undefined;
  }
}

async function answer(request: RequestMessage, methods: MethodTable, options: AdminSessionOptions): Promise<ResponseMessage> {
  const handler = Object.prototype.hasOwnProperty.call(methods, request.method) ? methods[request.method] : undefined;
  const started = performance.now();
  const quiet = ReadOnlyMethods.has(request.method) ? 'debug' : 'info'; // AS4
  try {
    if (handler === undefined) {
      throw new VdmapError('VDM_ADMIN_UNKNOWN_METHOD', `unknown admin method '${request.method}'`, { method: request.method });
    }
    const result = await handler(request.params);
    options.onRequest?.(request.method, 'ok');
    options.logger[quiet]({ method: request.method, ms: Math.round(performance.now() - started) }, 'admin request');
    return { type: 'response', id: request.id, ok: true, result: result as PlainData };
  } catch (error) {
    const record = toErrorRecord(error);
    options.onRequest?.(request.method, record.code);
    const level = record.code === 'VDM_INTERNAL' ? 'error' : quiet;
    options.logger[level]({ method: request.method, code: record.code, err: record.code === 'VDM_INTERNAL' ? error : undefined },
      `admin request refused: ${record.message}`);
    return { type: 'response', id: request.id, ok: false, error: record };
  }
}

/** AS2: a response that cannot be framed is replaced by the error that says why. */
async function sendResponse(channel: WireChannel, response: ResponseMessage, logger: Logger): Promise<void> {
  try {
    await channel.send(response);
  } catch (error) {
    const record = toErrorRecord(error);
    logger.warn({ code: record.code, id: response.id }, `admin response not sent: ${record.message}`);
    await channel.send({ type: 'response', id: response.id, ok: false, error: { code: record.code, message: record.message } });
  }
}

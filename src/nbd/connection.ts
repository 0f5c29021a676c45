/**
 * Connection: one NBD client on an already-accepted socket (TCP or Unix): the handshake, then the
 * transmission phase, until the socket closes.
 *
 * Owns: the connection's lifetime for the protocol, the handshake timeout, and the defaults of the per-connection
 * limits. Does not know: how the socket was accepted or by whom (server.ts, or a worker that was handed one),
 * what carries the bytes (a Transport: transport.ts), nor what serves them (the ExportRegistry's Exports).
 *
 * Invariants:
 *   C1. serveConnection never rejects and never throws: every failure ends the connection and, when it is
 *       worth an operator's attention, is reported through `onError` as a plain ErrorRecord.
 *   C2. Its promise resolves only after the socket closed and every export call of the connection settled.
 *   C3. A client that leaves the server waiting `handshakeTimeoutMs` for its next handshake message (the client
 *       flags, an option) is dropped; a client that keeps haggling is not (an interactive option-mode client),
 *       and maxOptions bounds how long it can go on.
 *   C4. Aborting `signal` shuts down gracefully: handshaking clients get NBD_REP_ERR_SHUTDOWN, transmission
 *       finishes in-flight requests (new ones get ESHUTDOWN) and then closes.
 *   C5. No main-thread assumptions: no process-wide handlers, no globals; safe inside a worker thread.
 *
 * Thread: any (main or worker): the thread whose event loop owns the connection. Error codes reported:
 * VDM_NBD_PROTOCOL_VIOLATION, VDM_NBD_HANDSHAKE_TIMEOUT, and whatever an export call failed with.
 */
import type { Socket } from 'node:net';
import { type ErrorRecord, toErrorRecord, VdmapError } from '../errors/error.js';
import type { ExportRegistry } from './export.js';
import type { NegotiatedSession } from './export-terms.js';
import { negotiate } from './handshake.js';
import { INTEROPERABLE_PAYLOAD_LENGTH } from './protocol.js';
import { SocketReader } from './socket-reader.js';
import { type RequestMeter, Transmission } from './transmission.js';
import { SocketTransport, type Transport } from './transport.js';

export interface ConnectionOptions {
  /** C3: the longest wait for the client's next handshake message (default 10 s). */
  handshakeTimeoutMs?: number;
  /**
   * Options accepted before the client is deemed a denial of service (default 4096: `nbdinfo --list` sends about
   * two per export on one connection; the handshake timeout bounds the time anyway).
   */
  maxOptions?: number;
  /** Longest option data the server acts on (default 64 KiB); longer is refused with NBD_REP_ERR_TOO_BIG. */
  maxOptionLength?: number;
  /** Longest option data skipped and refused rather than taken for a denial of service (default 16 MiB). */
  maxSkippedOptionLength?: number;
  /** In-flight requests per connection before the socket is paused (default 128). */
  maxInflightRequests?: number;
  /** In-flight bytes per connection before the socket is paused (default 64 MiB). */
  maxInflightBytes?: number;
  /** Hard cap on one request's length, and so on the advertised maximum block size (default 32 MiB). */
  requestCap?: number;
  /** Most descriptors in one BLOCK_STATUS reply (default 16384). */
  maxDescriptors?: number;
  /** After the server ends a session, how long the client gets to close before the socket is destroyed (default 5 s). */
  endTimeoutMs?: number;
  /** C4. */
  signal?: AbortSignal;
  /** C1: problems worth an operator's attention. */
  onError?: (record: ErrorRecord) => void;
  /** Called once when the handshake is over and transmission begins. */
  onTransmission?: (exportName: string) => void;
  /** The meter for requests on the chosen export (X9 of transmission.ts), asked once when transmission begins. */
  meterFor?: (exportName: string) => RequestMeter | undefined;
}

/** How long a client gets to close after the server ended its session (ConnectionOptions.endTimeoutMs). */
export const DEFAULT_END_TIMEOUT_MS = 5_000;

const defaults = {
  handshakeTimeoutMs: 10_000,
  maxOptions: 4096,
  maxOptionLength: 64 * 1024,
  maxSkippedOptionLength: 16 * 1024 * 1024,
  maxInflightRequests: 128,
  maxInflightBytes: 64 * 1024 * 1024,
  requestCap: INTEROPERABLE_PAYLOAD_LENGTH,
  maxDescriptors: 16384,
  endTimeoutMs: DEFAULT_END_TIMEOUT_MS,
};

/** Serves one client on `socket` until it closes (C1, C2). */
export function serveConnection(socket: Socket, registry: ExportRegistry, options: ConnectionOptions = {}): Promise<void> {
  if (!socket.destroyed) socket.setNoDelay(true); // proto.md: both sides SHOULD disable Nagle; a no-op on Unix sockets
  return serveTransport(new SocketTransport(socket), registry, options);
}

/** Serves one client carried by `transport` until it closes (C1, C2). */
export async function serveTransport(transport: Transport, registry: ExportRegistry, options: ConnectionOptions = {}): Promise<void> {
  const settings = { ...defaults, ...definedOnly(options) };
  const report = options.onError ?? ((): void => undefined);
  const closed = transport.whenClosed;
  const signal = options.signal;
  let shuttingDown = signal?.aborted ?? false;
  const reader = new SocketReader(transport, settings.maxOptionLength + 64 * 1024);
  const timer = setTimeout(() => {
    report(new VdmapError('VDM_NBD_HANDSHAKE_TIMEOUT', `the client sent nothing of the handshake for ${settings.handshakeTimeoutMs} ms`).toRecord());
    transport.destroy();
  }, settings.handshakeTimeoutMs);
  const read = (length: number): Promise<Buffer> => {
    timer.refresh(); // C3: the clock runs from the last message
    return reader.read(length);
  };
  const onAbortDuringHandshake = (): void => {
    shuttingDown = true;
  };
  signal?.addEventListener('abort', onAbortDuringHandshake, { once: true });
  let session: NegotiatedSession | undefined;
  try {
    session = await negotiate(
      { read, write: (bytes) => transport.send([bytes]) },
      registry,
      {
        maxOptions: settings.maxOptions, maxOptionLength: settings.maxOptionLength, maxSkippedOptionLength: settings.maxSkippedOptionLength,
        requestCap: settings.requestCap, shuttingDown: () => shuttingDown,
      },
    );
  } catch (error) {
    const record = toErrorRecord(error);
    if (!isPeerClose(record)) report(record);
    transport.destroy();
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbortDuringHandshake);
  }
  if (session === undefined) {
    // NBD_OPT_ABORT (soft disconnect) or a dropped handshake: the ACK, if any, is flushed before the FIN.
    if (!transport.destroyed) transport.end();
    const timeout = setTimeout(() => transport.destroy(), settings.endTimeoutMs);
    timeout.unref();
    await closed;
    clearTimeout(timeout);
    return;
  }
  options.onTransmission?.(session.exportName);
  const transmission = new Transmission(transport, session, {
    maxInflightRequests: settings.maxInflightRequests,
    maxInflightBytes: settings.maxInflightBytes,
    requestCap: settings.requestCap,
    maxDescriptors: settings.maxDescriptors,
    endTimeoutMs: settings.endTimeoutMs,
    onError: report,
    meter: options.meterFor?.(session.exportName),
  });
  const onAbort = (): void => transmission.shutdown();
  if (signal?.aborted) transmission.shutdown();
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await transmission.run(reader.detach());
    await closed;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** A client that simply went away during the handshake is not worth reporting. */
function isPeerClose(record: ErrorRecord): boolean {
  return record.code === 'VDM_NBD_PROTOCOL_VIOLATION' && record.message.startsWith('the client closed');
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

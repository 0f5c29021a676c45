/**
 * A message channel over one stream socket (TCP or Unix): frames + optional sealing + CBOR, pulled one
 * message at a time.
 *
 *   socket bytes -> FrameDecoder -> raw payload queue -> [FrameVerifier.open] -> decodeMessage -> receive()
 *   send(m) -> encodeMessage -> [FrameAuthenticator.seal] -> encodeFrame -> socket
 *
 * Owns: the per-connection pipeline and its failure policy. Knows nothing about what a session does with the
 * messages (handshake.ts and the daemons do); it does not own the listening socket.
 *
 * Invariants:
 *   W1. Payloads are queued raw and decoded only when receive() takes them, so seal() between two receive()s
 *       applies exactly from the next frame on, however the peer's frames were chunked.
 *   W2. Any bad input (frame, seal, CBOR, shape, or a type not allowed by the caller) ends the channel once:
 *       the reason goes to `onRefusal` (the daemon logs it), the peer gets an `error` message (sealed if
 *       sealing is on) when the socket is still writable, and the socket is destroyed. Nothing throws.
 *   W3. At most `maxQueuedFrames` payloads wait in the queue; above it the socket is paused (backpressure),
 *       so a fast peer cannot grow memory beyond maxQueuedFrames x maxFrameBytes.
 *   W4. receive() resolves null once the channel has ended and every payload that arrived before a clean end
 *       was delivered; `endError` then says why (undefined: clean close). A refusal discards queued payloads.
 *
 * Thread: main thread; one channel per connection, receive() not called concurrently with itself.
 * Errors leaving (as endError or returned): VDM_WIRE_*, VDM_AUTH_FORGED, VDM_AUTH_REPLAY.
 */
import type { Duplex } from 'node:stream';
import { VdmapError } from '../errors/error.js';
import { FrameAuthenticator, FrameVerifier, type SessionKeys } from './auth.js';
import { decodeMessage, encodeMessage } from './codec.js';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from './frame.js';
import type { MessageType, WireMessage } from './messages.js';

/** How long a refused peer's socket may linger to flush the error notice before it is destroyed. */
const REFUSAL_LINGER_MS = 1000;
const ERROR_ONLY: ReadonlySet<MessageType> = new Set<MessageType>(['error']);

export interface ChannelOptions {
  maxFrameBytes?: number;
  maxQueuedFrames?: number;
  /** Called once with the reason the channel refused its peer's input (W2). */
  onRefusal?: (error: VdmapError) => void;
}

export interface ReceiveOptions {
  /** Types acceptable now; anything else ends the channel with VDM_WIRE_UNEXPECTED. */
  allowed?: ReadonlySet<MessageType>;
  /** Ends the channel with VDM_WIRE_TIMEOUT when nothing arrives in time. */
  timeoutMs?: number;
  /**
   * Accept a plain (unsealed) `error` in place of a sealed frame: only for the agent's wait for welcome, where
   * a refusing controller cannot seal (it holds no session key). Such an error can end the session, nothing more.
   */
  acceptPlainError?: boolean;
}

export class WireChannel {
  private readonly decoder: FrameDecoder;
  private readonly maxQueuedFrames: number;
  private readonly onRefusal: ((error: VdmapError) => void) | undefined;
  private readonly queue: Uint8Array[] = [];
  private waiter: (() => void) | undefined;
  private authenticator: FrameAuthenticator | undefined;
  private verifier: FrameVerifier | undefined;
  private ended = false;
  private error: VdmapError | undefined;

  constructor(private readonly socket: Duplex, options: ChannelOptions = {}) {
    this.decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes ?? MAX_FRAME_BYTES });
    this.maxQueuedFrames = options.maxQueuedFrames ?? 64;
    this.onRefusal = options.onRefusal;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onStreamEnd());
    socket.on('close', () => this.finish(this.error ?? this.decoder.end()));
    socket.on('error', (cause: Error) => this.finish(new VdmapError('VDM_WIRE_CLOSED',
      `connection failed: ${cause.message}`, { cause: (cause as NodeJS.ErrnoException).code ?? cause.message })));
  }

  /** Why the channel ended; undefined while open or after a clean close. */
  get endError(): VdmapError | undefined {
    return this.error;
  }

  get isOpen(): boolean {
    return !this.ended;
  }

  /** From now on, frames sent are sealed with `send` and frames received are opened with `receive` (W1). */
  seal(keys: SessionKeys, side: 'agent' | 'controller'): void {
    const [sendKey, receiveKey] = side === 'agent'
      ? [keys.agentToController, keys.controllerToAgent]
      : [keys.controllerToAgent, keys.agentToController];
    this.authenticator = new FrameAuthenticator(sendKey);
    this.verifier = new FrameVerifier(receiveKey);
  }

  /** Sends one message; resolves false when the channel already ended. Throws only for an invalid message (codec K3). */
  send(message: WireMessage): Promise<boolean> {
    if (this.ended || this.socket.destroyed) return Promise.resolve(false);
    const frame = this.frameOf(message);
    return new Promise((resolve) => {
      this.socket.write(frame, (error) => resolve(error === undefined || error === null));
    });
  }

  /** The next message, or null once the channel has ended (W4). */
  async receive(options: ReceiveOptions = {}): Promise<WireMessage | null> {
    const payload = await this.nextPayload(options.timeoutMs);
    if (payload === undefined) return null;
    const body = this.verifier === undefined ? payload : this.verifier.open(payload);
    if (body instanceof VdmapError) {
      const plain = options.acceptPlainError === true ? decodeMessage(payload, ERROR_ONLY) : undefined;
      if (plain?.ok === true) return this.endWith(plain.message);
      return this.refuse(body);
    }
    const decoded = decodeMessage(body, options.allowed);
    if (!decoded.ok) return this.refuse(decoded.error);
    return decoded.message;
  }

  /** Ends the channel: an `error` message first when `error` is given, then a graceful end of the socket. */
  async close(error?: VdmapError): Promise<void> {
    if (error !== undefined && !this.ended) await this.send({ type: 'error', error: publicRecord(error) });
    this.finish(error);
    this.socket.end();
  }

  private frameOf(message: WireMessage): Buffer {
    const body = encodeMessage(message);
    return encodeFrame(this.authenticator === undefined ? body : this.authenticator.seal(body), this.decoder.maxFrameBytes);
  }

  private async nextPayload(timeoutMs: number | undefined): Promise<Uint8Array | undefined> {
    while (this.queue.length === 0 && !this.ended) {
      const arrived = await this.waitForData(timeoutMs);
      if (!arrived) {
        this.refuse(new VdmapError('VDM_WIRE_TIMEOUT', `no message from the peer within ${timeoutMs} ms`, { timeoutMs }));
      }
    }
    const payload = this.queue.shift();
    if (this.queue.length < this.maxQueuedFrames && this.socket.isPaused()) this.socket.resume();
    return payload;
  }

  private waitForData(timeoutMs: number | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        this.waiter = undefined;
        resolve(false);
      }, timeoutMs);
      this.waiter = () => {
        if (timer !== undefined) clearTimeout(timer);
        this.waiter = undefined;
        resolve(true);
      };
    });
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    const { frames, error } = this.decoder.push(chunk);
    this.queue.push(...frames);
    if (error !== undefined) {
      // Frames decoded before the bad bytes are dropped too: the stream can no longer be trusted.
      this.refuse(error);
      return;
    }
    if (this.queue.length >= this.maxQueuedFrames) this.socket.pause();
    if (frames.length > 0) this.waiter?.();
  }

  private onStreamEnd(): void {
    this.finish(this.decoder.end());
    this.socket.end();
  }

  /** Delivers a plain refusal from the peer and ends the channel quietly: nothing after it can be trusted. */
  private endWith(message: WireMessage): WireMessage {
    this.queue.length = 0;
    this.finish(message.type === 'error' ? VdmapError.fromRecord(message.error) : undefined);
    this.socket.end();
    return message;
  }

  /** W2: report, tell the peer, drop the connection; returns null for receive(). */
  private refuse(error: VdmapError): null {
    if (this.ended) return null;
    this.onRefusal?.(error);
    if (!this.socket.destroyed && this.socket.writable) {
      try {
        this.socket.write(this.frameOf({ type: 'error', error: publicRecord(error) }));
      } catch {
        // The refusal notice is best effort; the connection is dropped either way.
      }
    }
    this.queue.length = 0;
    this.finish(error);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), REFUSAL_LINGER_MS).unref();
    return null;
  }

  /** Marks the end; payloads already queued by a clean end are still delivered (W4). */
  private finish(error: VdmapError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.waiter?.();
  }
}

/** What a peer may learn of an error: code and message, no details (they can name agents or keys). */
export function publicRecord(error: VdmapError): { code: VdmapError['code']; message: string } {
  return { code: error.code, message: error.message };
}

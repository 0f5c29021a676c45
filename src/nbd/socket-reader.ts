/**
 * SocketReader: exact-length reads from a connection's Transport for the handshake phase, where each step waits
 * for a known number of bytes (a flag word, an option header, an option's data).
 *
 * Owns: the bytes received and not yet consumed during the handshake (copies of borrowed chunks, T1 of
 * transport.ts). When the handshake ends, detach() hands the unconsumed bytes to the transmission phase (a client
 * may pipeline its first requests right behind NBD_OPT_GO), so no byte is lost or read twice.
 * Does not know: what the bytes mean (handshake.ts), nor what carries them.
 *
 * Invariants:
 *   R1. At most one read() is pending at a time (the handshake is sequential).
 *   R2. Buffered, unconsumed bytes never exceed `bufferLimit` plus one chunk: past it the transport is
 *       paused until a read() consumes them.
 *   R3. After the transport ends or closes, a pending or later read() rejects; it never hangs.
 *   R4. After detach() the reader no longer listens to the transport and holds no bytes.
 *
 * Thread: whichever runs the connection. Error codes: VDM_NBD_PROTOCOL_VIOLATION (connection closed during
 * the handshake) leaves read().
 */
import { VdmapError } from '../errors/error.js';
import type { Transport, TransportListener } from './transport.js';

interface PendingRead {
  length: number;
  resolve: (bytes: Buffer) => void;
  reject: (error: VdmapError) => void;
}

export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private pending: PendingRead | undefined;
  private ended: VdmapError | undefined;
  private readonly listener: TransportListener = {
    data: (chunk, borrowed) => this.received(borrowed ? Buffer.from(chunk) : chunk),
    end: () => this.endedBy('the client closed the connection during the handshake'),
    close: () => this.endedBy('the client closed the connection during the handshake'),
  };

  constructor(
    private readonly transport: Transport,
    private readonly bufferLimit: number,
  ) {
    transport.listen(this.listener);
  }

  /** R1, R3: the next `length` bytes. */
  read(length: number): Promise<Buffer> {
    if (this.buffered >= length) return Promise.resolve(this.take(length));
    if (this.ended !== undefined) return Promise.reject(this.ended);
    if (this.transport.paused) this.transport.resume();
    return new Promise((resolve, reject) => {
      this.pending = { length, resolve, reject };
    });
  }

  /** R4: stop listening and return the bytes received but not consumed. */
  detach(): Buffer {
    this.transport.listen(undefined);
    const rest = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    return rest ?? Buffer.alloc(0);
  }

  private received(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const pending = this.pending;
    if (pending !== undefined && this.buffered >= pending.length) {
      this.pending = undefined;
      pending.resolve(this.take(pending.length));
    }
    if (this.pending === undefined && this.buffered > this.bufferLimit) this.transport.pause();
  }

  private endedBy(message: string): void {
    if (this.ended !== undefined) return;
    this.ended = new VdmapError('VDM_NBD_PROTOCOL_VIOLATION', message);
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(this.ended);
  }

  private take(length: number): Buffer {
    if (length === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    if (first.length === length) {
      this.chunks.shift();
      this.buffered -= length;
      return first;
    }
    if (first.length > length) {
      this.chunks[0] = first.subarray(length);
      this.buffered -= length;
      return first.subarray(0, length);
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0];
      const n = Math.min(chunk.length, length - filled);
      chunk.copy(out, filled, 0, n);
      filled += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    this.buffered -= length;
    return out;
  }
}

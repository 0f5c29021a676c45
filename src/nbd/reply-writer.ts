/**
 * ReplyWriter: the third step of a request. Encodes simple replies and structured reply chunks and writes
 * them to the socket in batches (proto.md "Simple reply message", "Structured reply chunk message").
 *
 * Owns: reply framing, the header slab, batching, and the ReadBuffers whose bytes are on their way out.
 * Does not know: why a reply is sent (transmission.ts) or what an error means (errors.ts).
 *
 *   batch (one per tick):   pieces = [ headers... | payload | headers... | payload | headers... ]
 *                                      \ slab run /             \ slab run /
 *   Consecutive headers are written into one slab and leave as one piece; a read's payload leaves as its
 *   own piece, straight from the ReadBuffer. flush() hands the pieces to the transport in one send(), so
 *   they go out as one gather write (writev / sendmsg).
 *
 * Invariants:
 *   W1. A reply is never split or interleaved: all pieces of a reply are queued in one call.
 *   W2. A ReadBuffer is released exactly once, after the send that carried its bytes completed (or failed);
 *       never while the kernel may still read it.
 *   W3. Slab bytes handed to the socket are never written again: a full slab is replaced, not reused.
 *   W4. One flush per batch at most (Transport.afterBatch after the first reply of the batch: the end of a ring's
 *       batch of completions, or the tick), so completions that arrived together leave together; the
 *       transmission may flush at once when nothing else is in flight.
 *
 * Thread: whichever runs the connection. Error codes: none (transport failures end the connection elsewhere).
 */
import type { ReadBuffer } from './export.js';
import {
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  SIMPLE_REPLY_HEADER_LENGTH,
  STRUCTURED_REPLY_HEADER_LENGTH,
} from './protocol.js';
import type { Transport } from './transport.js';

const SLAB_SIZE = 64 * 1024;
const TWO_TO_32 = 4294967296;

export class ReplyWriter {
  private slab = Buffer.allocUnsafe(SLAB_SIZE);
  /** The slab's bytes for header fields: DataView stores compile to plain moves. */
  private fields = new DataView(this.slab.buffer, this.slab.byteOffset, this.slab.byteLength);
  private slabUsed = 0;
  /** Start of the slab bytes reserved since the last piece was cut. */
  private runStart = 0;
  private pieces: Uint8Array[] = [];
  private releases: ReadBuffer[] = [];
  private scheduled = false;
  private readonly flushBound = (): void => this.flush();

  constructor(private readonly transport: Transport) {}

  /** Simple reply, no payload (success of a non-read command, or any error without structured replies). */
  simple(handleHigh: number, handleLow: number, error: number): void {
    const at = this.reserve(SIMPLE_REPLY_HEADER_LENGTH);
    this.writeSimpleHeader(at, handleHigh, handleLow, error);
  }

  /** Simple reply carrying a read's bytes (W2). */
  simpleRead(handleHigh: number, handleLow: number, data: ReadBuffer): void {
    const at = this.reserve(SIMPLE_REPLY_HEADER_LENGTH);
    this.writeSimpleHeader(at, handleHigh, handleLow, 0);
    this.appendPayload(data);
  }

  /** One NBD_REPLY_TYPE_OFFSET_DATA chunk with DONE: the whole read, known good before the header leaves. */
  structuredRead(handleHigh: number, handleLow: number, offset: number, data: ReadBuffer): void {
    const at = this.reserve(STRUCTURED_REPLY_HEADER_LENGTH + 8);
    this.writeStructuredHeader(at, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, handleHigh, handleLow, 8 + data.bytes.length);
    this.writeOffset(at + STRUCTURED_REPLY_HEADER_LENGTH, offset);
    this.appendPayload(data);
  }

  /** NBD_REPLY_TYPE_ERROR (or ERROR_OFFSET when `offset` is given) with DONE. */
  structuredError(handleHigh: number, handleLow: number, error: number, message: Buffer, offset: number | undefined): void {
    const withOffset = offset !== undefined;
    const length = 6 + message.length + (withOffset ? 8 : 0);
    const type = withOffset ? NBD_REPLY_TYPE_ERROR_OFFSET : NBD_REPLY_TYPE_ERROR;
    const at = this.reserve(STRUCTURED_REPLY_HEADER_LENGTH + length);
    this.writeStructuredHeader(at, NBD_REPLY_FLAG_DONE, type, handleHigh, handleLow, length);
    const body = at + STRUCTURED_REPLY_HEADER_LENGTH;
    this.slab.writeUInt32BE(error, body);
    this.slab.writeUInt16BE(message.length, body + 4);
    message.copy(this.slab, body + 6);
    if (withOffset) this.writeOffset(body + 6 + message.length, offset);
  }

  /** One NBD_REPLY_TYPE_BLOCK_STATUS chunk with DONE; `descriptors` is [length, flags, length, flags, ...]. */
  blockStatus(handleHigh: number, handleLow: number, contextId: number, descriptors: readonly number[]): void {
    const length = 4 + descriptors.length * 4;
    const at = this.reserve(STRUCTURED_REPLY_HEADER_LENGTH + length);
    this.writeStructuredHeader(at, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, handleHigh, handleLow, length);
    let position = at + STRUCTURED_REPLY_HEADER_LENGTH;
    this.slab.writeUInt32BE(contextId, position);
    for (const value of descriptors) {
      position += 4;
      this.slab.writeUInt32BE(value, position);
    }
  }

  /** Bytes handed to the transport and not yet to the kernel. */
  get pendingBytes(): number {
    return this.transport.pendingBytes;
  }

  /** W4: sends every queued piece as one batch. */
  flush(): void {
    this.scheduled = false;
    this.cutRun();
    if (this.pieces.length === 0) return;
    const pieces = this.pieces;
    const releases = this.releases;
    this.pieces = [];
    this.releases = [];
    if (this.transport.destroyed) {
      releaseAll(releases);
      return;
    }
    this.transport.send(pieces, releases.length === 0 ? undefined : () => releaseAll(releases));
  }

  /** The connection is gone: drop queued replies and release their buffers (W2). */
  discard(): void {
    this.pieces = [];
    this.runStart = this.slabUsed;
    releaseAll(this.releases);
    this.releases = [];
  }

  /** Reserves `length` contiguous slab bytes for the reply being encoded (W3). */
  private reserve(length: number): number {
    if (this.slabUsed + length > this.slab.length) {
      this.cutRun();
      this.slab = Buffer.allocUnsafe(Math.max(SLAB_SIZE, length));
      this.fields = new DataView(this.slab.buffer, this.slab.byteOffset, this.slab.byteLength);
      this.slabUsed = 0;
      this.runStart = 0;
    }
    const at = this.slabUsed;
    this.slabUsed += length;
    if (!this.scheduled) {
      this.scheduled = true;
      this.transport.afterBatch(this.flushBound);
    }
    return at;
  }

  private appendPayload(data: ReadBuffer): void {
    this.cutRun();
    this.pieces.push(data.bytes);
    this.releases.push(data);
  }

  /** Closes the current run of headers into one piece. */
  private cutRun(): void {
    if (this.slabUsed > this.runStart) this.pieces.push(this.slab.subarray(this.runStart, this.slabUsed));
    this.runStart = this.slabUsed;
  }

  private writeSimpleHeader(at: number, handleHigh: number, handleLow: number, error: number): void {
    const fields = this.fields;
    fields.setUint32(at, NBD_SIMPLE_REPLY_MAGIC);
    fields.setUint32(at + 4, error);
    fields.setUint32(at + 8, handleHigh);
    fields.setUint32(at + 12, handleLow);
  }

  private writeStructuredHeader(at: number, flags: number, type: number, handleHigh: number, handleLow: number, length: number): void {
    const fields = this.fields;
    fields.setUint32(at, NBD_STRUCTURED_REPLY_MAGIC);
    fields.setUint16(at + 4, flags);
    fields.setUint16(at + 6, type);
    fields.setUint32(at + 8, handleHigh);
    fields.setUint32(at + 12, handleLow);
    fields.setUint32(at + 16, length);
  }

  private writeOffset(at: number, offset: number): void {
    const high = Math.floor(offset / TWO_TO_32);
    this.fields.setUint32(at, high);
    this.fields.setUint32(at + 4, offset - high * TWO_TO_32);
  }
}

function releaseAll(buffers: ReadBuffer[]): void {
  for (const buffer of buffers) {
    try {
      buffer.release();
    } catch {
      // A release that throws is the export's bug; the connection must go on releasing the others.
    }
  }
}

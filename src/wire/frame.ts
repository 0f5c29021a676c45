/**
 * Length-prefixed frames: the outermost layer of every agent <-> controller and CLI <-> controller byte stream.
 *
 *   +--------------------------+---------------------------------------+
 *   | length: u32 big-endian   | payload: `length` bytes               |
 *   +--------------------------+---------------------------------------+
 *     4 bytes                    1 .. maxFrameBytes bytes
 *
 * Owns: the 4-byte header, the size limit and the incremental decoder that turns arbitrary socket chunks into
 * whole payloads. Knows nothing about what a payload holds: the authentication envelope (auth.ts) and the CBOR
 * message (codec.ts) sit inside it.
 *
 * Invariants:
 *   F1. A payload is never empty and never longer than maxFrameBytes (default MAX_FRAME_BYTES, 4 MiB).
 *   F2. The decoder checks the announced length BEFORE it allocates or buffers any payload byte: an oversized
 *       announcement fails as soon as its 4 header bytes have arrived.
 *   F3. Any split of the stream into chunks (one byte at a time included) yields the same frames.
 *   F4. The decoder never throws on input: a bad stream is reported once as a VdmapError value, after which the
 *       decoder is failed for good (the framing is lost; the caller must close the connection).
 *
 * Thread: whichever thread owns the socket (the main thread in both daemons). Not shared.
 * Errors leaving: VDM_WIRE_FRAME_TOO_LARGE, VDM_WIRE_MALFORMED (empty frame), VDM_WIRE_TRUNCATED (end()).
 */
import { VdmapError } from '../errors/error.js';

export const FRAME_HEADER_BYTES = 4;
/** The largest payload a frame may carry (F1). A 1M-entry table travels as several frames below this. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

/**
 * One frame around `payload`. Throws VdmapError when the payload breaks F1: too large is the sender's refusal
 * (details side=sender: an admin answer or request can be that big), empty would be a bug here.
 */
export function encodeFrame(payload: Uint8Array, maxFrameBytes: number = MAX_FRAME_BYTES): Buffer {
  if (payload.byteLength > maxFrameBytes) {
    throw new VdmapError('VDM_WIRE_FRAME_TOO_LARGE',
      `a message of ${payload.byteLength} bytes does not fit one frame (limit ${maxFrameBytes} bytes) and was not sent`,
      { length: payload.byteLength, maxFrameBytes, side: 'sender' });
  }
  const problem = payloadLengthProblem(payload.byteLength, maxFrameBytes);
  if (problem !== undefined) throw problem;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  frame.writeUInt32BE(payload.byteLength, 0);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

function payloadLengthProblem(length: number, maxFrameBytes: number): VdmapError | undefined {
  if (length === 0) {
    return new VdmapError('VDM_WIRE_MALFORMED', 'frame announces an empty payload', { reason: 'empty-frame' });
  }
  if (length > maxFrameBytes) {
    return new VdmapError('VDM_WIRE_FRAME_TOO_LARGE',
      `frame announces ${length} bytes, above the ${maxFrameBytes}-byte limit`, { length, maxFrameBytes });
  }
  return undefined;
}

export interface FrameDecoderOptions {
  maxFrameBytes?: number;
}

/** What one push() produced: the payloads completed by this chunk, and the error that failed the stream, if any. */
export interface DecodedFrames {
  frames: Uint8Array[];
  error: VdmapError | undefined;
}

/**
 * Incremental decoder. State machine: reading the header (0..3 of 4 bytes held) -> reading a payload of a
 * length that passed F1 -> back to the header. A payload that arrives whole inside one chunk is returned as a
 * view of that chunk without a copy (the caller must not reuse the chunk; socket chunks never are); otherwise
 * its buffer is allocated once, at its exact length, when its first bytes arrive.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  /** Length of the payload being read; 0 while reading a header (F1 forbids empty payloads). */
  private payloadLength = 0;
  private payload: Uint8Array | undefined;
  private payloadFilled = 0;
  private failure: VdmapError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  }

  /** The error that failed this decoder, if any (F4). */
  get failed(): VdmapError | undefined {
    return this.failure;
  }

  /** True when no partial frame is buffered. */
  get idle(): boolean {
    return this.headerFilled === 0 && this.payloadLength === 0;
  }

  push(chunk: Uint8Array): DecodedFrames {
    const frames: Uint8Array[] = [];
    if (this.failure !== undefined) return { frames, error: this.failure };
    let position = 0;
    while (position < chunk.byteLength) {
      position = this.payloadLength === 0
        ? this.readHeader(chunk, position)
        : this.readPayload(chunk, position, frames);
      if (this.failure !== undefined) return { frames, error: this.failure };
    }
    return { frames, error: undefined };
  }

  /** The stream ended: a partial frame is VDM_WIRE_TRUNCATED, anything else is a clean end (undefined). */
  end(): VdmapError | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.idle) return undefined;
    const had = this.payloadLength === 0
      ? `${this.headerFilled} of ${FRAME_HEADER_BYTES} header bytes`
      : `${this.payloadFilled} of ${this.payloadLength} payload bytes`;
    this.failure = new VdmapError('VDM_WIRE_TRUNCATED', `stream ended inside a frame (${had})`, {
      headerBytes: this.headerFilled, payloadBytes: this.payloadFilled, payloadLength: this.payloadLength,
    });
    return this.failure;
  }

  /** Consumes header bytes; a complete header is checked against F1 before any payload byte is kept (F2). */
  private readHeader(chunk: Uint8Array, position: number): number {
    const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.byteLength - position);
    this.header.set(chunk.subarray(position, position + take), this.headerFilled);
    this.headerFilled += take;
    if (this.headerFilled < FRAME_HEADER_BYTES) return position + take;
    this.headerFilled = 0;
    const length = this.header.readUInt32BE(0);
    const problem = payloadLengthProblem(length, this.maxFrameBytes);
    if (problem !== undefined) this.failure = problem;
    else this.payloadLength = length;
    return position + take;
  }

  private readPayload(chunk: Uint8Array, position: number, frames: Uint8Array[]): number {
    const available = chunk.byteLength - position;
    if (this.payload === undefined && available >= this.payloadLength) {
      frames.push(chunk.subarray(position, position + this.payloadLength));
      return this.finishPayload(position + this.payloadLength);
    }
    this.payload ??= new Uint8Array(this.payloadLength);
    const take = Math.min(this.payloadLength - this.payloadFilled, available);
    this.payload.set(chunk.subarray(position, position + take), this.payloadFilled);
    this.payloadFilled += take;
    if (this.payloadFilled < this.payloadLength) return position + take;
    frames.push(this.payload);
    return this.finishPayload(position + take);
  }

  private finishPayload(position: number): number {
    this.payload = undefined;
    this.payloadLength = 0;
    this.payloadFilled = 0;
    return position;
  }
}

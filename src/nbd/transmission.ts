/**
 * Transmission: the request loop of one connection after the handshake (proto.md "Transmission",
 * "Request message", "Request types"). Each request goes through three separate steps:
 *   1. validate  (request-validation.ts: protocol rules, before the export sees anything)
 *   2. execute   (one call on the Export, here)
 *   3. reply     (reply-writer.ts: simple or structured, batched)
 *
 * Owns: parsing the byte stream into requests, the in-flight request pool, backpressure, DISC, graceful
 * shutdown and hard disconnects. Does not know: the handshake, or what serves the bytes (the Export).
 *
 * Invariants:
 *   X1. Every complete request in a received chunk is parsed and dispatched in the same tick (the export
 *       batches one tick's calls into one submission), unless a bound (X2) stops parsing first.
 *   X2. At most `maxInflightRequests` requests and about `maxInflightBytes` bytes (reads, write payloads and
 *       unsent replies; one request may overshoot) are held per connection; past that the transport is paused
 *       and the unparsed bytes wait, so a flood cannot grow memory.
 *   X3. Requests complete and reply in any order; a slow request never delays another's reply.
 *   X4. A WRITE payload is copied at most once on its way to the export: into the export's WriteBuffer when it
 *       offers one (X6 of export.ts), else taken in place from a chunk the transport does not reuse, else
 *       assembled once into one buffer. Bytes kept past a borrowed chunk's delivery are copies (T1 of transport.ts).
 *       Copies use copyBytes (a memmove: V8's own copy of shared I/O memory goes byte by byte, src/native/copy.ts).
 *   X5. A request magic other than NBD_REQUEST_MAGIC, or a WRITE payload over `requestCap`, drops the
 *       connection at once (hard disconnect). A rejected WRITE within the cap has its payload skipped.
 *   X6. DISC: no further bytes are parsed; every in-flight request is replied to, then the transport ends.
 *       The client shutting its sending side (end of input, with or without a DISC) is the same, after every
 *       complete request it sent before is parsed and served, even those still waiting behind an X2 bound; a
 *       request cut short by the end is dropped unexecuted. The transport never ends our side by itself (T5).
 *       shutdown(): new requests fail with ESHUTDOWN; once in-flight reaches zero the transport ends.
 *   X7. run() resolves only when the transport has closed and every export call has settled; a ReadBuffer that
 *       completes after the transport closed is released at once; a WriteBuffer being filled is abandoned.
 *   X8. Per request: no closure, no promise and no BigInt on the data path: a pooled request slot is the
 *       Completion the export reports to (X7 of export.ts); the rarer commands' promises settle into it.
 *   X9. The meter, when given, hears of every request the export settled, once, with the seconds from its
 *       parsing to its reply, as read from a clock sampled once per batch of transport events (T6).
 *
 * Thread: whichever runs the connection (main or a worker); export completions run on the same thread.
 * Error codes: VDM_NBD_PROTOCOL_VIOLATION (reported through onError on a hard disconnect); everything a
 * request fails with goes to the client as an NBD error (errors.ts), and export failures are also reported.
 */
import { type ErrorRecord, toErrorRecord, VdmapError } from '../errors/error.js';
import { allocationDescriptors } from './block-status.js';
import { nbdErrorOf } from './errors.js';
import type { AllocationExtent, Completion, Export, ReadBuffer, WriteBuffer } from './export.js';
import type { NegotiatedSession } from './export-terms.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_REQUEST_MAGIC,
  REQUEST_HEADER_LENGTH,
} from './protocol.js';
import { copyBytes } from '../native/index.js';
import { ReplyWriter } from './reply-writer.js';
import { RequestRules } from './request-validation.js';
import type { Transport, TransportListener } from './transport.js';

export interface TransmissionSettings {
  maxInflightRequests: number;
  maxInflightBytes: number;
  /** A WRITE announcing a payload longer than this is a denial of service (X5). */
  requestCap: number;
  /** Most descriptors in one BLOCK_STATUS reply. */
  maxDescriptors: number;
  /** How long an ended transport may wait for the client to close before it is destroyed (ms). */
  endTimeoutMs: number;
  onError: (record: ErrorRecord) => void;
  /** X9. */
  meter?: RequestMeter;
}

/** Told of every request the export settled (X9): for metrics. `command` is an NBD_CMD_* value. */
export interface RequestMeter {
  settled(command: number, bytes: number, seconds: number, failed: boolean): void;
}

const TWO_TO_32 = 4294967296;

/** One request between validation and reply. Pooled (X8): it is the Completion its export call reports to. */
class InflightRequest implements Completion<unknown> {
  handleHigh = 0;
  handleLow = 0;
  type = 0;
  flags = 0;
  offset = 0;
  length = 0;
  /** Bytes this request holds against maxInflightBytes. */
  cost = 0;
  payload: Uint8Array | null = null;
  /** The export's memory the payload is being assembled into (X4), if it offered some. */
  writeBuffer: WriteBuffer | null = null;
  /** The batch clock when parsed, when metered (X9). */
  startedAt = 0;

  constructor(private readonly owner: Transmission) {}

  succeeded(value: unknown): void {
    this.owner.completed(this, value);
  }

  failed(error: unknown): void {
    this.owner.failed(this, error);
  }
}

export class Transmission {
  private readonly target: Export;
  private readonly rules: RequestRules;
  private readonly writer: ReplyWriter;
  private readonly structured: boolean;
  private readonly contextId: number;
  private readonly free: InflightRequest[] = [];
  private inflight = 0;
  private inflightBytes = 0;

  // Parser state.
  private input: Buffer | null = null;
  /** `input` is a borrowed chunk (T1): valid only while received() runs. */
  private inputBorrowed = false;
  private inputOffset = 0;
  private backlog: Buffer[] = [];
  private readonly headerScratch = Buffer.allocUnsafe(REQUEST_HEADER_LENGTH);
  private headerFilled = 0;
  private payloadSlot: InflightRequest | null = null;
  private payloadBuffer: Buffer | null = null;
  private payloadFilled = 0;
  private skipRemaining = 0;

  // Lifecycle.
  private blocked = false;
  /** The client shut its sending side: what is held is all that will come (X6). */
  private inputEnd = false;
  /** No more bytes are parsed (DISC, hard disconnect, transport gone, finishing). */
  private stopped = false;
  private draining = false;
  private shuttingDown = false;
  private finishing = false;
  private closed = false;
  private resolveDone: (() => void) | undefined;
  private readonly listener: TransportListener = {
    data: (chunk, borrowed) => this.received(chunk, borrowed),
    end: () => this.inputEnded(),
    close: () => this.transportClosed(),
  };
  private awaitingDrain = false;
  /** X9: the batch clock, or -1 when it must be read again. */
  private clock = -1;
  private readonly clockExpires = (): void => {
    this.clock = -1;
  };
  private endTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly onDrain = (): void => {
    this.awaitingDrain = false;
    this.unblock();
  };

  constructor(
    private readonly transport: Transport,
    session: NegotiatedSession,
    private readonly settings: TransmissionSettings,
  ) {
    this.target = session.export;
    this.rules = new RequestRules(session);
    this.writer = new ReplyWriter(transport);
    this.structured = session.structuredReplies;
    this.contextId = session.allocationContextId ?? 0;
  }

  /** Serves requests until the connection ends; `leftover` holds bytes the handshake received past its end (X7). */
  run(leftover: Buffer): Promise<void> {
    const done = new Promise<void>((resolve) => {
      this.resolveDone = resolve;
    });
    const transport = this.transport;
    if (transport.closed) {
      this.transportClosed();
      return done;
    }
    if (leftover.length > 0) this.received(leftover, false);
    transport.listen(this.listener);
    if (transport.paused && !this.blocked && !this.stopped) transport.resume();
    return done;
  }

  /** X6: graceful shutdown. */
  shutdown(): void {
    this.shuttingDown = true;
    this.draining = true;
    if (this.inflight === 0) this.finish();
  }

  private received(chunk: Buffer, borrowed: boolean): void {
    if (this.stopped) return;
    if (this.input !== null) {
      this.backlog.push(borrowed ? Buffer.from(chunk) : chunk);
      return;
    }
    this.input = chunk;
    this.inputBorrowed = borrowed;
    this.inputOffset = 0;
    this.consume();
    if (this.input === chunk && borrowed) {
      // Blocked (X2) part-way through a borrowed chunk: keep a copy of the rest (T1).
      this.input = Buffer.from(chunk.subarray(this.inputOffset));
      this.inputBorrowed = false;
      this.inputOffset = 0;
    }
  }

  /** X1, X2: parses every complete request held, until the input runs out or a bound blocks. */
  private consume(): void {
    while (!this.stopped) {
      const input = this.input;
      if (input === null) {
        if (this.inputEnd) this.allInputServed();
        return;
      }
      const at = this.inputOffset;
      const available = input.length - at;
      if (available === 0) {
        this.input = this.backlog.shift() ?? null;
        this.inputBorrowed = false;
        this.inputOffset = 0;
        continue;
      }
      if (this.skipRemaining > 0) {
        const n = Math.min(this.skipRemaining, available);
        this.skipRemaining -= n;
        this.inputOffset = at + n;
        continue;
      }
      if (this.payloadSlot !== null) {
        this.fillPayload(input, at, available);
        continue;
      }
      if (!this.canAdmit()) {
        this.block();
        return;
      }
      if (this.headerFilled === 0 && available >= REQUEST_HEADER_LENGTH) {
        this.inputOffset = at + REQUEST_HEADER_LENGTH;
        this.request(input, at);
        continue;
      }
      const n = Math.min(REQUEST_HEADER_LENGTH - this.headerFilled, available);
      input.copy(this.headerScratch, this.headerFilled, at, at + n);
      this.headerFilled += n;
      this.inputOffset = at + n;
      if (this.headerFilled === REQUEST_HEADER_LENGTH) {
        this.headerFilled = 0;
        this.request(this.headerScratch, 0);
      }
    }
  }

  /** Step 1 for the request whose 28-byte header starts at `bytes[at]`. */
  private request(bytes: Buffer, at: number): void {
    if (uint32(bytes, at) !== NBD_REQUEST_MAGIC) {
      this.hardDisconnect(`bad request magic 0x${uint32(bytes, at).toString(16)}`);
      return;
    }
    const flags = uint16(bytes, at + 4);
    const type = uint16(bytes, at + 6);
    const handleHigh = uint32(bytes, at + 8);
    const handleLow = uint32(bytes, at + 12);
    const offset = uint32(bytes, at + 16) * TWO_TO_32 + uint32(bytes, at + 20);
    const length = uint32(bytes, at + 24);
    if (type === NBD_CMD_DISC) {
      this.disconnectRequested();
      return;
    }
    const rejection = this.rules.validate(type, flags, offset, length, this.shuttingDown);
    if (type === NBD_CMD_WRITE && rejection !== undefined) {
      if (length > this.settings.requestCap) {
        this.hardDisconnect(`WRITE announces a ${length}-byte payload, over the ${this.settings.requestCap}-byte cap`);
        return;
      }
      this.skipRemaining = length;
    }
    if (rejection !== undefined) {
      this.replyError(handleHigh, handleLow, type, offset, length, rejection, false);
      return;
    }
    const slot = this.acquire(handleHigh, handleLow, type, flags, offset, length);
    if (type === NBD_CMD_WRITE) {
      this.payloadSlot = slot;
      this.payloadFilled = 0;
      this.payloadBuffer = null;
      slot.writeBuffer = this.offeredWriteBuffer(offset, length);
      return;
    }
    this.execute(slot);
  }

  /** The export's memory for a payload (X6), or null; an export that throws here simply offers none. */
  private offeredWriteBuffer(offset: number, length: number): WriteBuffer | null {
    try {
      return this.target.writeBuffer?.(offset, length) ?? null;
    } catch {
      return null;
    }
  }

  /** X4: the WRITE payload into the export's buffer, or in place when this chunk holds it, else into one buffer. */
  private fillPayload(input: Buffer, at: number, available: number): void {
    const slot = this.payloadSlot as InflightRequest;
    const length = slot.length;
    if (slot.writeBuffer === null && this.payloadBuffer === null && available >= length) {
      slot.payload = this.inputBorrowed ? copyOf(input, at, length) : input.subarray(at, at + length);
      this.inputOffset = at + length;
      this.payloadSlot = null;
      this.execute(slot);
      return;
    }
    const target = slot.writeBuffer?.bytes ?? (this.payloadBuffer ??= Buffer.allocUnsafe(length));
    const n = Math.min(length - this.payloadFilled, available);
    copyBytes(target, this.payloadFilled, input, at, n);
    this.payloadFilled += n;
    this.inputOffset = at + n;
    if (this.payloadFilled === length) {
      if (slot.writeBuffer === null) slot.payload = this.payloadBuffer;
      this.payloadBuffer = null;
      this.payloadSlot = null;
      this.execute(slot);
    }
  }

  /** Step 2: one call on the export; its outcome comes back to the slot (X8). */
  private execute(slot: InflightRequest): void {
    const target = this.target;
    const fua = (slot.flags & NBD_CMD_FLAG_FUA) !== 0;
    let pending: Promise<unknown>;
    try {
      switch (slot.type) {
        case NBD_CMD_READ:
          target.read(slot.offset, slot.length, slot);
          return;
        case NBD_CMD_WRITE:
          if (slot.writeBuffer !== null) slot.writeBuffer.commit(fua, slot);
          else target.write(slot.offset, slot.payload as Uint8Array, fua, slot);
          return;
        case NBD_CMD_FLUSH:
          pending = target.flush();
          break;
        case NBD_CMD_TRIM:
          pending = target.trim(slot.offset, slot.length, fua);
          break;
        case NBD_CMD_WRITE_ZEROES:
          pending = target.writeZeroes(slot.offset, slot.length, {
            noHole: (slot.flags & NBD_CMD_FLAG_NO_HOLE) !== 0,
            fastZero: (slot.flags & NBD_CMD_FLAG_FAST_ZERO) !== 0,
          }, fua);
          break;
        case NBD_CMD_CACHE:
          pending = target.cache(slot.offset, slot.length);
          break;
        case NBD_CMD_BLOCK_STATUS:
          pending = target.blockStatus(slot.offset, slot.length);
          break;
        default:
          throw new VdmapError('VDM_INTERNAL', `validated command ${slot.type} has no executor`);
      }
    } catch (error) {
      this.failed(slot, error);
      return;
    }
    pending.then((value) => slot.succeeded(value), (error) => slot.failed(error));
  }

  /** Step 3 on success. Called by the slot (X8). */
  completed(slot: InflightRequest, value: unknown): void {
    this.meter(slot, false);
    if (this.closed) {
      if (slot.type === NBD_CMD_READ) releaseQuietly(value as ReadBuffer);
    } else if (slot.type === NBD_CMD_READ) {
      this.replyRead(slot, value as ReadBuffer);
    } else if (slot.type === NBD_CMD_BLOCK_STATUS) {
      this.replyBlockStatus(slot, value as AllocationExtent[]);
    } else {
      this.writer.simple(slot.handleHigh, slot.handleLow, 0);
    }
    this.flushIfLast();
    this.recycle(slot);
  }

  /** Step 3 on failure. Called by the slot (X8). */
  failed(slot: InflightRequest, error: unknown): void {
    this.meter(slot, true);
    if (!this.closed) this.replyFailure(slot, error);
    this.flushIfLast();
    this.recycle(slot);
  }

  /** X9: performance.now(), read once per batch of transport events (the requests of a chunk, the completions of a reap). */
  private batchClock(): number {
    if (this.clock < 0) {
      this.clock = performance.now();
      this.transport.afterBatch(this.clockExpires);
    }
    return this.clock;
  }

  /** X9. */
  private meter(slot: InflightRequest, failed: boolean): void {
    const meter = this.settings.meter;
    if (meter === undefined) return;
    const bytes = slot.type === NBD_CMD_FLUSH || slot.type === NBD_CMD_BLOCK_STATUS ? 0 : slot.length;
    meter.settled(slot.type, bytes, (this.batchClock() - slot.startedAt) / 1000, failed);
  }

  /**
   * W4 of reply-writer.ts batches a tick's replies; when this was the only request in flight no other reply can
   * join the batch, so it leaves now rather than a nextTick later (the latency of queue depth 1).
   */
  private flushIfLast(): void {
    if (this.inflight === 1 && !this.closed) this.writer.flush();
  }

  private replyFailure(slot: InflightRequest, error: unknown): void {
    this.settings.onError(withRequest(toErrorRecord(error), slot));
    this.replyError(slot.handleHigh, slot.handleLow, slot.type, slot.offset, slot.length, error, true);
  }

  private replyRead(slot: InflightRequest, data: ReadBuffer): void {
    if (data === null || typeof data !== 'object' || data.bytes?.length !== slot.length) {
      releaseQuietly(data);
      this.replyFailure(slot, new VdmapError('VDM_INTERNAL', `the export answered a ${slot.length}-byte read with a buffer of another length`));
      return;
    }
    if (this.structured) this.writer.structuredRead(slot.handleHigh, slot.handleLow, slot.offset, data);
    else this.writer.simpleRead(slot.handleHigh, slot.handleLow, data);
  }

  private replyBlockStatus(slot: InflightRequest, extents: AllocationExtent[]): void {
    const descriptors = allocationDescriptors(Array.isArray(extents) ? extents : [], {
      length: slot.length,
      available: this.rules.size - slot.offset,
      minimumBlockSize: this.rules.minimumBlockSize,
      reqOne: (slot.flags & NBD_CMD_FLAG_REQ_ONE) !== 0,
      maxDescriptors: this.settings.maxDescriptors,
    });
    this.writer.blockStatus(slot.handleHigh, slot.handleLow, this.contextId, descriptors);
  }

  /** Structured error chunk when negotiated (with the offset when the export named one inside the request), else a simple reply. */
  private replyError(handleHigh: number, handleLow: number, type: number, offset: number, length: number, error: unknown, fromExport: boolean): void {
    const nbd = nbdErrorOf(error);
    if (!this.structured) {
      this.writer.simple(handleHigh, handleLow, nbd.value);
      return;
    }
    const errorOffset = fromExport && type !== NBD_CMD_FLUSH && nbd.offset !== undefined &&
      nbd.offset >= offset && nbd.offset < offset + length ? nbd.offset : undefined;
    this.writer.structuredError(handleHigh, handleLow, nbd.value, nbd.message, errorOffset);
  }

  private acquire(handleHigh: number, handleLow: number, type: number, flags: number, offset: number, length: number): InflightRequest {
    const slot = this.free.pop() ?? new InflightRequest(this);
    slot.handleHigh = handleHigh;
    slot.handleLow = handleLow;
    slot.type = type;
    slot.flags = flags;
    slot.offset = offset;
    slot.length = length;
    slot.cost = type === NBD_CMD_READ || type === NBD_CMD_WRITE ? length : 0;
    slot.startedAt = this.settings.meter === undefined ? 0 : this.batchClock();
    this.inflight++;
    this.inflightBytes += slot.cost;
    return slot;
  }

  private recycle(slot: InflightRequest): void {
    this.inflight--;
    this.inflightBytes -= slot.cost;
    slot.payload = null;
    slot.writeBuffer = null;
    if (this.free.length < this.settings.maxInflightRequests) this.free.push(slot);
    this.afterSettle();
  }

  private afterSettle(): void {
    if (this.closed) {
      this.resolveIfDone();
      return;
    }
    if (this.blocked) this.unblock();
    if (this.draining && this.inflight === 0) this.finish();
  }

  private canAdmit(): boolean {
    return this.inflight < this.settings.maxInflightRequests &&
      this.inflightBytes < this.settings.maxInflightBytes &&
      this.writer.pendingBytes < this.settings.maxInflightBytes;
  }

  /** X2: stop reading until a request settles or the transport drains. */
  private block(): void {
    if (!this.blocked) {
      this.blocked = true;
      this.transport.pause();
    }
    this.awaitDrainIfOutputFull();
  }

  private unblock(): void {
    if (!this.blocked || this.stopped) return;
    if (!this.canAdmit()) {
      this.awaitDrainIfOutputFull();
      return;
    }
    this.blocked = false;
    this.consume();
    if (!this.blocked && !this.stopped) this.transport.resume();
  }

  /** Unsent replies past the budget: only the transport draining (not a settling request) can free it. */
  private awaitDrainIfOutputFull(): void {
    if (this.awaitingDrain || this.writer.pendingBytes < this.settings.maxInflightBytes) return;
    this.awaitingDrain = true;
    this.transport.onceDrained(this.onDrain);
  }

  /** X6: NBD_CMD_DISC. */
  private disconnectRequested(): void {
    this.stop();
    this.draining = true;
    if (this.inflight === 0) this.finish();
  }

  /** X6: the client sent its last byte; what is held (blocked behind X2) is still parsed first. */
  private inputEnded(): void {
    this.inputEnd = true;
    if (this.input === null) this.allInputServed();
  }

  /** X6: every complete request of the input is dispatched; one cut short by the end is dropped. */
  private allInputServed(): void {
    this.headerFilled = 0;
    this.skipRemaining = 0;
    this.abandonPayload();
    this.disconnectRequested();
  }

  /** No more bytes will be parsed (bytes still delivered are ignored). */
  private stop(): void {
    this.stopped = true;
    this.input = null;
    this.backlog = [];
  }

  /** X6: replies flushed, then the transport ends; destroyed if the client does not close in time. */
  private finish(): void {
    if (this.finishing || this.closed) return;
    this.finishing = true;
    this.stop();
    this.writer.flush();
    this.transport.end();
    this.endTimer = setTimeout(() => this.transport.destroy(), this.settings.endTimeoutMs);
    this.endTimer.unref();
  }

  /** X5. */
  private hardDisconnect(reason: string): void {
    this.settings.onError(new VdmapError('VDM_NBD_PROTOCOL_VIOLATION', reason, { phase: 'transmission' }).toRecord());
    this.stop();
    this.writer.discard();
    this.transport.destroy();
  }

  private transportClosed(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.endTimer !== undefined) clearTimeout(this.endTimer);
    this.stop();
    this.writer.discard();
    this.abandonPayload();
    this.resolveIfDone();
  }

  /** A WRITE whose payload will never be complete is not executed; its slot (and lent buffer) is given back. */
  private abandonPayload(): void {
    const slot = this.payloadSlot;
    if (slot === null) return;
    this.payloadSlot = null;
    this.payloadBuffer = null;
    slot.writeBuffer?.abandon();
    this.recycle(slot);
  }

  private resolveIfDone(): void {
    if (this.closed && this.inflight === 0 && this.resolveDone !== undefined) {
      const resolve = this.resolveDone;
      this.resolveDone = undefined;
      resolve();
    }
  }
}

function withRequest(record: ErrorRecord, slot: InflightRequest): ErrorRecord {
  return { ...record, details: { ...record.details, command: slot.type, offset: slot.offset, length: slot.length } };
}

function releaseQuietly(data: ReadBuffer | undefined | null): void {
  try {
    data?.release?.();
  } catch {
    // The export's bug; nothing more to do for a buffer nobody will read.
  }
}

/** Big-endian fields of a request header already known to be in `bytes` (no bounds checks, inlined). */
function uint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

function uint16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

/** `length` bytes of `input` from `at`, in memory of their own (copyBytes: the input may be shared I/O memory). */
function copyOf(input: Buffer, at: number, length: number): Buffer {
  const copy = Buffer.allocUnsafe(length);
  copyBytes(copy, 0, input, at, length);
  return copy;
}

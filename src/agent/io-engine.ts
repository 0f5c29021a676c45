/**
 * IoEngine: one thread's io_uring, its aligned buffer pool, and the batching that turns many calls in one tick
 * into one submission.
 *
 * Owns: the thread's Ring (src/native), its BufferPool, the table of operations in flight (user data slot ->
 * completion callback) and the queue of operations not yet submitted. Knows nothing about tables, disks or
 * states: callers hand it fds, buffer blocks and device offsets (policy lives in VirtualDisk).
 *
 * Flow: read()/write()/fsync()/fallocate() write a descriptor into the ring's submission array and schedule one
 * flush as a microtask, so every operation issued in the same tick (for NBD: every request parsed from one
 * socket chunk) goes to the kernel in ONE Node-API call. Completions wake the thread through the ring's eventfd
 * (libuv poll, no spinning, no blocked event loop); one reap call returns a batch of [user data, result] pairs.
 *
 * Invariants:
 *   E1. A user data slot is in use from enqueue until its completion was reaped; slots are never reused early.
 *   E2. At most `maxInflight` operations are in the kernel (the completion queue cannot overflow); the rest
 *       wait in `backlog` in FIFO order.
 *   E3. The ring keeps the event loop alive only while operations are in flight (ref/unref).
 *   E4. Completion callbacks receive the kernel's result (bytes or -errno) and are called exactly once.
 * Thread: the owning thread only (the ring is SINGLE_ISSUER).
 * Errors leaving: VDM_RING_SUBMIT (thrown into every callback of a batch the kernel refused), VDM_IO_TOO_LARGE.
 */
import { constants } from 'node:os';
import { BufferPool, type PoolBlock } from './buffer-pool.js';
import { allocateAligned, Field, FsyncFlag, Opcode, Ring, SUBMISSION_STRIDE } from '../native/index.js';
import { VdmapError } from '../errors/error.js';

export { FallocateMode, WriteFlag } from '../native/index.js';

export type Completion = (result: number) => void;

export interface IoEngineOptions {
  /** Submission queue entries (a power of two). */
  ringEntries?: number;
  /** Bytes of aligned I/O memory (a power of two multiple of 4096). */
  poolBytes?: number;
  /**
   * Hybrid polling: after submitting while at most `pollMaxInflight` operations are in flight, poll the
   * completion queue for up to this many microseconds before returning to the event loop (0: never poll).
   * Saves the eventfd -> epoll -> callback wake-up at low queue depth, at the price of CPU while polling.
   */
  pollMicroseconds?: number;
  pollMaxInflight?: number;
}

interface Pending {
  opcode: number;
  fd: number;
  bufferOffset: number;
  length: number;
  fileOffset: number;
  flags: number;
  done: Completion;
}

const NoBuffer = 0;

export class IoEngine {
  readonly pool: BufferPool;
  private readonly ring: Ring;
  private readonly poolBuffer: number;
  private readonly maxInflight: number;
  private readonly callbacks: Array<Completion | undefined>;
  private readonly freeSlots: Int32Array;
  private freeCount: number;
  /** Descriptors written to ring.submissions but not yet submitted. */
  private queued = 0;
  private readonly backlog: Pending[] = [];
  private flushScheduled = false;
  private inflight = 0;
  private closed = false;
  private readonly pollMilliseconds: number;
  private readonly pollMaxInflight: number;

  constructor(options: IoEngineOptions = {}) {
    this.pollMilliseconds = (options.pollMicroseconds ?? 0) / 1000;
    this.pollMaxInflight = options.pollMaxInflight ?? 1;
    const entries = options.ringEntries ?? 256;
    this.ring = new Ring({ entries });
    this.pool = new BufferPool(allocateAligned(options.poolBytes ?? 64 * 1024 * 1024));
    this.poolBuffer = this.ring.registerBuffer(this.pool.slab);
    this.maxInflight = entries * 2;
    this.callbacks = new Array<Completion | undefined>(this.maxInflight).fill(undefined);
    this.freeSlots = Int32Array.from({ length: this.maxInflight }, (_, i) => this.maxInflight - 1 - i);
    this.freeCount = this.maxInflight;
    this.ring.onCompletion(() => this.reapAll());
    this.ring.unref();
  }

  get features(): Record<string, unknown> {
    return { ...this.ring.features };
  }

  /** Operations handed to the kernel and not yet completed. */
  get operationsInFlight(): number {
    return this.inflight;
  }

  read(fd: number, block: PoolBlock, blockOffset: number, length: number, fileOffset: number, done: Completion): void {
    this.enqueue(Opcode.READ, fd, block.offset + blockOffset, length, fileOffset, 0, done);
  }

  write(fd: number, block: PoolBlock, blockOffset: number, length: number, fileOffset: number, flags: number, done: Completion): void {
    this.enqueue(Opcode.WRITE, fd, block.offset + blockOffset, length, fileOffset, flags, done);
  }

  /** fdatasync(2) through the ring. */
  fsync(fd: number, done: Completion): void {
    this.enqueue(Opcode.FSYNC, fd, NoBuffer, 0, 0, FsyncFlag.DATASYNC, done);
  }

  fallocate(fd: number, mode: number, fileOffset: number, length: number, done: Completion): void {
    this.enqueue(Opcode.FALLOCATE, fd, NoBuffer, length, fileOffset, mode, done);
  }

  /** Waits for in-flight operations, then releases the ring. Later calls fail their callbacks with ECANCELED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ring.close();
    for (const pending of this.backlog.splice(0)) pending.done(-constants.errno.ECANCELED);
  }

  private enqueue(opcode: number, fd: number, bufferOffset: number, length: number, fileOffset: number, flags: number, done: Completion): void {
    if (this.closed) {
      queueMicrotask(() => done(-constants.errno.ECANCELED));
      return;
    }
    if (this.backlog.length > 0 || this.freeCount === 0 || this.queued === this.ring.submissions.length / SUBMISSION_STRIDE) {
      this.backlog.push({ opcode, fd, bufferOffset, length, fileOffset, flags, done });
    } else {
      this.writeDescriptor(opcode, fd, bufferOffset, length, fileOffset, flags, done);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private writeDescriptor(opcode: number, fd: number, bufferOffset: number, length: number, fileOffset: number, flags: number, done: Completion): void {
    const slot = this.freeSlots[--this.freeCount];
    this.callbacks[slot] = done;
    const base = this.queued * SUBMISSION_STRIDE;
    const submissions = this.ring.submissions;
    submissions[base + Field.opcode] = opcode;
    submissions[base + Field.fd] = fd;
    submissions[base + Field.bufferIndex] = this.poolBuffer;
    submissions[base + Field.bufferOffset] = bufferOffset;
    submissions[base + Field.length] = length;
    submissions[base + Field.fileOffset] = fileOffset;
    submissions[base + Field.userData] = slot;
    submissions[base + Field.flags] = flags;
    this.queued++;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    this.moveBacklogToRing();
    if (this.queued === 0) return;
    let submitted: number;
    try {
      submitted = this.ring.submit(this.queued);
    } catch (error) {
      submitted = this.acceptedDespite(error);
      if (submitted < 0) return;
    }
    if (this.inflight === 0 && submitted > 0) this.ring.ref();
    this.inflight += submitted;
    const left = this.queued - submitted;
    if (left > 0) {
      const submissions = this.ring.submissions;
      submissions.copyWithin(0, submitted * SUBMISSION_STRIDE, this.queued * SUBMISSION_STRIDE);
    }
    this.queued = left;
    if (this.pollMilliseconds > 0 && this.inflight > 0 && this.inflight <= this.pollMaxInflight) this.poll();
  }

  /** Hybrid polling (see IoEngineOptions.pollMicroseconds): spins on reap, dispatching what arrives. */
  private poll(): void {
    const deadline = performance.now() + this.pollMilliseconds;
    while (performance.now() < deadline) {
      const count = this.ring.reap();
      if (count > 0) {
        this.dispatch(count);
        this.reapAll();
        return;
      }
    }
  }

  /**
   * A submit call that threw. VDM_RING_SUBMIT: the kernel call failed but details.queued descriptors were
   * queued in the ring and go with the next submit: count them in flight and retry soon. Anything else (a bad
   * descriptor, a closed ring): nothing was queued; every caller of the batch hears -errno. Returns how many
   * were taken, or -1 when the batch was failed.
   */
  private acceptedDespite(error: unknown): number {
    const queued = error instanceof VdmapError && error.code === 'VDM_RING_SUBMIT' ? error.details?.queued : undefined;
    if (typeof queued === 'number') {
      setTimeout(() => this.resubmit(), 1);
      return queued;
    }
    this.failQueued(error);
    return -1;
  }

  private moveBacklogToRing(): void {
    const capacity = this.ring.submissions.length / SUBMISSION_STRIDE;
    while (this.backlog.length > 0 && this.freeCount > 0 && this.queued < capacity) {
      const pending = this.backlog.shift()!;
      this.writeDescriptor(pending.opcode, pending.fd, pending.bufferOffset, pending.length, pending.fileOffset, pending.flags, pending.done);
    }
  }

  /** Pushes descriptors the kernel left queued after a failed submit (submit(0) flushes them), then the rest. */
  private resubmit(): void {
    if (this.closed) return;
    try {
      this.ring.submit(0);
    } catch {
      setTimeout(() => this.resubmit(), 1);
      return;
    }
    this.flush();
  }

  /** A submit call the kernel refused: nothing of the batch was issued; every caller hears -errno. */
  private failQueued(error: unknown): void {
    const errno = errnoOf(error);
    const submissions = this.ring.submissions;
    const failed: Completion[] = [];
    for (let i = 0; i < this.queued; i++) {
      const slot = submissions[i * SUBMISSION_STRIDE + Field.userData];
      failed.push(this.releaseSlot(slot));
    }
    this.queued = 0;
    for (const done of failed) done(-errno);
  }

  private releaseSlot(slot: number): Completion {
    const done = this.callbacks[slot]!;
    this.callbacks[slot] = undefined;
    this.freeSlots[this.freeCount++] = slot;
    return done;
  }

  /** Calls the callbacks of the `count` completions reap() just wrote. */
  private dispatch(count: number): void {
    const completions = this.ring.completions;
    this.inflight -= count;
    for (let i = 0; i < count; i++) {
      const done = this.releaseSlot(completions[2 * i] >>> 0);
      done(completions[2 * i + 1]);
    }
  }

  /** Called from the ring's eventfd poll: drains every available completion, then refills the ring. */
  private reapAll(): void {
    for (;;) {
      const count = this.ring.reap();
      if (count === 0) break;
      this.dispatch(count);
    }
    if (this.inflight === 0) this.ring.unref();
    if (this.backlog.length > 0 || this.queued > 0) this.flush();
  }
}

function errnoOf(error: unknown): number {
  const code = (error as { details?: { errno?: unknown } }).details?.errno;
  const errno = typeof code === 'string' ? (constants.errno as Record<string, number>)[code] : undefined;
  return errno ?? constants.errno.EIO;
}

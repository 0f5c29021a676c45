/**
 * IoEngine: one thread's io_uring, its aligned buffer pool, and the batching that turns many calls in one tick
 * into one submission.
 *
 * Owns: the thread's Ring (src/native), its BufferPool, the table of operations in flight (user data slot ->
 * completion callback), the queue of operations not yet submitted, and how the thread waits for completions.
 * Knows nothing about tables, disks, states or protocols: callers hand it fds, buffer blocks and offsets (policy
 * lives in VirtualDisk; sockets are driven by src/agent/workers/ring-transport.ts).
 *
 * Flow: read()/write()/fsync()/fallocate()/receive()/pollReady() write a descriptor into the ring's submission
 * array and schedule one turn in the event loop's check phase (setImmediate), after every microtask and nextTick
 * of the tick: so every operation issued in the tick (for NBD: every request parsed from one received chunk, and
 * the receive that follows it) goes to the kernel in ONE system call. One reap call returns a batch of
 * [user data, result] pairs.
 *
 * Waiting for completions, two modes:
 *   idle   the ring's eventfd, watched by the thread's own libuv loop: the thread sleeps in epoll with everything
 *          else it watches; each wake-up costs an epoll return, an eventfd read, a callback and a reap syscall.
 *   busy   (waitMicroseconds > 0) once operations flow, each turn submits what the tick queued and, in the SAME
 *          io_uring_enter, sleeps until the next completion or waitMicroseconds; the kernel runs the thread's
 *          deferred task work (socket receives, device completions) inside that call, and the eventfd is off
 *          (setWake), so the loop is not woken for what the turn reaps itself. A busy turn runs several such
 *          rounds before the event loop gets the thread back (E5); between turns the event loop runs (timers,
 *          messages and other handles wait at most one turn). A round whose wait ends with nothing returns the
 *          thread to idle. Measured at queue depth 1 over NBD (strace): four system calls per request (an
 *          io_uring_enter that finds the request, one that submits its read and the next receive, one that finds
 *          the read done, the reply's sendmsg), one epoll poll per eight requests and no eventfd wake-up, against
 *          nine system calls and two event-loop wake-ups per request in idle mode.
 *   Hybrid polling (pollMicroseconds > 0): at low device queue depth (at most pollMaxInflight device operations
 *   in flight), a busy round first spins on the completion queue for up to that long, which saves the sleep and the
 *   wake-up (13-18 us each way on a small VM) when another CPU is free to run the device's and the client's work.
 *   It backs off by itself: when spins keep ending empty (the other CPUs are busy, or the device is slow), the
 *   engine stops spinning for a while (SpinBackoffRounds) and then tries again, so a loaded machine is not starved
 *   by a thread burning a CPU for nothing.
 *   At high device depth (DeepQueue) a busy wait asks for a small batch of completions rather than one: fewer
 *   wake-ups and fuller reply batches, while most of the queue stays in flight.
 *   Busy waits delay the loop's other handles: a thread whose sockets are serviced by libuv, not by this ring,
 *   should run with waitMicroseconds 0.
 *
 * Invariants:
 *   E1. A user data slot is in use from enqueue until its completion was reaped; slots are never reused early.
 *   E2. At most `maxInflight` operations are in the kernel (the completion queue cannot overflow); the rest
 *       wait in `backlog` in FIFO order.
 *   E3. The ring keeps the event loop alive while operations are in flight or queued; once the thread is idle with
 *       none, it no longer does (ref/unref, each called only when the state changes).
 *   E4. Completion callbacks receive the kernel's result (bytes or -errno) and are called exactly once.
 *   E5. A turn never starts while JavaScript work of the tick is pending (it is a check-phase callback, after every
 *       microtask and nextTick). While completions keep arriving, a busy turn runs up to RoundsPerTurn rounds (each:
 *       submit, wait, reap, dispatch) before it lets the event loop run, so it holds the loop at most
 *       RoundsPerTurn x (pollMicroseconds + waitMicroseconds); work that completions queue as microtasks or
 *       nextTicks (promise-based paths) waits for the end of the turn.
 *   E6. The eventfd is off only while busy, and while busy a turn is always running or scheduled: a completion is
 *       never left unreaped while the thread sleeps in epoll. Turning it back on is followed by one more reap (W5
 *       of native-bindings/src/ring_wake.c).
 *   E7. Callbacks given to afterBatch() during a dispatch run once, right after that batch of completions (before
 *       the next round sleeps): the replies a batch produced leave before the thread waits again. Outside a
 *       dispatch they run on the next tick.
 * Thread: the owning thread only (the ring is SINGLE_ISSUER).
 * Errors leaving: VDM_RING_SUBMIT (thrown into every callback of a batch the kernel refused), VDM_IO_TOO_LARGE.
 */
import { constants } from 'node:os';
import { BufferPool, type PoolBlock } from './buffer-pool.js';
import { allocateAligned, COMPLETION_STRIDE, Field, FsyncFlag, Opcode, PollEvent, Ring, SUBMISSION_STRIDE } from '../native/index.js';
import { VdmapError } from '../errors/error.js';

export { FallocateMode, PollEvent, WriteFlag } from '../native/index.js';

export type Completion = (result: number) => void;

export interface IoEngineOptions {
  /** Submission queue entries (a power of two). */
  ringEntries?: number;
  /** Bytes of aligned I/O memory (a power of two multiple of 4096). */
  poolBytes?: number;
  /**
   * Hybrid polling (see the file comment): before sleeping for a completion in a busy turn, spin on the completion
   * queue for up to this many microseconds (0: never spin). Saves the sleep and the wake-up when another CPU is free
   * to complete the I/O meanwhile, at the price of this CPU while spinning: on a machine with few CPUs, the device's
   * kernel worker and the client may need this one, hence the low-depth limit and the back-off.
   */
  pollMicroseconds?: number;
  /** Spin only while at most this many device operations are in flight (socket receives do not count; default 2). */
  pollMaxInflight?: number;
  /**
   * Busy mode (see the file comment): the longest a turn sleeps in io_uring_enter for the next completion before
   * letting the event loop run; 0 disables busy mode (every completion comes through the eventfd).
   */
  waitMicroseconds?: number;
}

/** Default busy wait: covers a client's turnaround at queue depth 1, short enough for the event loop's other work. */
export const DefaultWaitMicroseconds = 200;
/** At this many device operations in flight, a busy wait asks for WaitBatch completions rather than one. */
const DeepQueue = 16;
const WaitBatch = 4;
/** E5: rounds of a busy turn before the event loop gets the thread back. */
const RoundsPerTurn = 8;
/** A spin reads the clock once every this many reaps. */
const SpinClockRounds = 16;
/** Rounds without spinning after spins kept ending empty. */
export const SpinBackoffRounds = 512;
const SpinScoreLimit = 8;

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
  private inflight = 0;
  private closed = false;
  private readonly pollMilliseconds: number;
  private readonly pollMaxInflight: number;
  private readonly waitMicroseconds: number;
  /** Socket operations (RECV, POLL) in flight or queued: they wait for a peer, not for the device. */
  private socketOperations = 0;
  private readonly socketSlot: Uint8Array;
  /** Recent spins: + for one that found a completion, - for one that ended empty (back-off below the limit). */
  private spinScore = 0;
  private spinPausedRounds = 0;
  /** A turn is scheduled (setImmediate). */
  private turnScheduled = false;
  /** Busy mode (E6): the eventfd is off and turns keep coming. */
  private busy = false;
  /** E3: the ring's completion watch keeps the event loop alive. */
  private referenced = false;
  /** E7: completions are being dispatched; afterBatch() callbacks wait for the end of the batch. */
  private dispatching = false;
  private batchEnd: Array<() => void> = [];
  private readonly turnBound = (): void => this.turn();

  constructor(options: IoEngineOptions = {}) {
    this.pollMilliseconds = (options.pollMicroseconds ?? 0) / 1000;
    this.pollMaxInflight = options.pollMaxInflight ?? 2;
    this.waitMicroseconds = options.waitMicroseconds ?? DefaultWaitMicroseconds;
    const entries = options.ringEntries ?? 256;
    this.ring = new Ring({ entries });
    this.pool = new BufferPool(allocateAligned(options.poolBytes ?? 64 * 1024 * 1024, { hugePages: true }));
    this.poolBuffer = this.ring.registerBuffer(this.pool.slab);
    this.maxInflight = entries * 2;
    this.callbacks = new Array<Completion | undefined>(this.maxInflight).fill(undefined);
    this.socketSlot = new Uint8Array(this.maxInflight);
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

  /** recv(2) from socket `fd` into the block: completes with the bytes received, 0 when the peer closed, or -errno. */
  receive(fd: number, block: PoolBlock, blockOffset: number, length: number, done: Completion): void {
    this.enqueue(Opcode.RECV, fd, block.offset + blockOffset, length, 0, 0, done);
  }

  /** Completes once `fd` is ready for `events` (PollEvent bits), with the events that happened, or -errno. */
  pollReady(fd: number, events: number, done: Completion): void {
    this.enqueue(Opcode.POLL, fd, NoBuffer, 0, 0, events, done);
  }

  /** E7: runs `callback` once after the batch of completions being dispatched now, or on the next tick. */
  afterBatch(callback: () => void): void {
    if (this.dispatching) this.batchEnd.push(callback);
    else process.nextTick(callback);
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
    this.scheduleTurn();
  }

  private writeDescriptor(opcode: number, fd: number, bufferOffset: number, length: number, fileOffset: number, flags: number, done: Completion): void {
    const slot = this.freeSlots[--this.freeCount];
    this.callbacks[slot] = done;
    if (opcode === Opcode.RECV || opcode === Opcode.POLL) {
      this.socketSlot[slot] = 1;
      this.socketOperations++;
    }
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

  private scheduleTurn(): void {
    if (this.turnScheduled || this.closed) return;
    this.turnScheduled = true;
    setImmediate(this.turnBound);
  }

  /**
   * One turn (E5): rounds of submit-wait-dispatch while completions keep arriving (up to RoundsPerTurn), then stay
   * busy (another turn after the event loop ran), or go idle.
   */
  private turn(): void {
    this.turnScheduled = false;
    let active = false;
    for (let round = 0; round < RoundsPerTurn && !this.closed; round++) {
      active = this.round();
      if (!active || this.waitMicroseconds === 0) break;
      this.enterBusyMode(); // the next round sleeps in io_uring_enter, not in epoll (E6)
    }
    if (this.closed) return;
    if (this.queued > 0 || this.backlog.length > 0) this.scheduleTurn();
    // Activity keeps the thread busy even with nothing in flight right now: the microtasks of what was just
    // dispatched may issue more (a request parsed from a receive). The next turn with nothing to do goes idle.
    if (this.waitMicroseconds > 0 && active) {
      this.becomeBusy();
    } else if (this.busy) {
      this.becomeIdle();
    }
  }

  /**
   * One round: submit what is queued and, when busy mode is on and something is in flight, sleep in the same call
   * until a completion arrives or the wait ends; dispatch what arrived. Returns whether anything happened.
   */
  private round(): boolean {
    this.moveBacklogToRing();
    const submitting = this.queued > 0;
    const waits = this.waitMicroseconds > 0 && (this.busy || submitting);
    let count = 0;
    if (waits && this.spinsNow()) {
      if (submitting) this.submitQueued(0);
      count = this.spin();
      this.learnFromSpin(count > 0);
    }
    if (count === 0 && (this.queued > 0 || (waits && this.inflight > 0))) {
      this.submitQueued(waits && this.inflight + this.queued > 0 ? this.waitMicroseconds : 0, this.completionsToWaitFor());
    }
    count += this.reapAndDispatch();
    // At low depth (pollMaxInflight), what the completions just issued synchronously (a request parsed from a
    // receive, on the fast path) goes to the device now, so it works while the rest of the round runs. Deeper, it
    // waits for the next round's submission, which batches more per call.
    if (this.queued > 0 && this.waitMicroseconds > 0 && this.deviceOperations() <= this.pollMaxInflight) {
      this.moveBacklogToRing();
      this.submitQueued(0);
    }
    return count > 0 || submitting;
  }

  /** E6. */
  private becomeBusy(): void {
    if (this.closed) return;
    this.enterBusyMode();
    this.scheduleTurn();
  }

  /** E6: the eventfd is off; only a running or scheduled turn may call this. */
  private enterBusyMode(): void {
    if (!this.busy) {
      this.busy = true;
      this.ring.setWake(false);
    }
  }

  /** E6: the eventfd is on again; whatever slipped in meanwhile is reaped now, and keeps the thread busy. */
  private becomeIdle(): void {
    this.busy = false;
    if (this.closed) return;
    this.ring.setWake(true);
    if (this.reapAndDispatch() > 0) this.becomeBusy();
    else this.releaseLoopIfIdle();
  }

  /** E3: with nothing in flight or queued, the ring no longer keeps the event loop alive. */
  private releaseLoopIfIdle(): void {
    if (this.inflight === 0 && this.queued === 0 && this.backlog.length === 0 && !this.closed && this.referenced) {
      this.referenced = false;
      this.ring.unref();
    }
  }

  /**
   * Reaps and dispatches what is available; returns how many. One reap takes everything ready unless the batch
   * filled `completions`: only then is another needed. Whatever arrives later is a later turn's (busy) or wakes the
   * eventfd (idle, E6).
   */
  private reapAndDispatch(): number {
    let reaped = 0;
    const capacity = this.ring.completions.length / COMPLETION_STRIDE;
    while (!this.closed) {
      const count = this.ring.reap();
      reaped += count;
      if (count > 0) this.dispatch(count);
      if (count < capacity) break;
    }
    return reaped;
  }

  /** Submits the queued descriptors (and, with `waitMicroseconds`, sleeps for a completion in the same call). */
  private submitQueued(waitMicroseconds: number, waitCount = 1): void {
    let submitted: number;
    try {
      submitted = this.ring.submit(this.queued, 0, waitMicroseconds, waitCount);
    } catch (error) {
      submitted = this.acceptedDespite(error);
      if (submitted < 0) return;
    }
    if (!this.referenced && submitted > 0) {
      this.referenced = true;
      this.ring.ref();
    }
    this.inflight += submitted;
    const left = this.queued - submitted;
    if (left > 0) {
      const submissions = this.ring.submissions;
      submissions.copyWithin(0, submitted * SUBMISSION_STRIDE, this.queued * SUBMISSION_STRIDE);
    }
    this.queued = left;
  }

  /** Hybrid polling is on, at low device depth, and not backing off. */
  private spinsNow(): boolean {
    if (this.pollMilliseconds === 0) return false;
    if (this.spinPausedRounds > 0) {
      this.spinPausedRounds--;
      return false;
    }
    return this.deviceOperations() <= this.pollMaxInflight;
  }

  /**
   * How many completions a busy wait asks for: one, or at high device depth a small batch (at most a quarter of
   * what is in flight, so the device never runs dry), so one wake-up and one round of replies serve several.
   */
  private completionsToWaitFor(): number {
    const depth = this.deviceOperations();
    return depth >= DeepQueue ? Math.min(WaitBatch, depth >> 2) : 1;
  }

  /** Device operations (not socket ones) in flight or queued. */
  private deviceOperations(): number {
    return this.inflight + this.queued - this.socketOperations;
  }

  private learnFromSpin(found: boolean): void {
    this.spinScore = found ? Math.min(SpinScoreLimit, this.spinScore + 1) : this.spinScore - 2;
    if (this.spinScore < -SpinScoreLimit) {
      this.spinScore = 0;
      this.spinPausedRounds = SpinBackoffRounds;
    }
  }

  /** Hybrid polling (IoEngineOptions.pollMicroseconds): reaps until something arrives or the time is up; dispatches it. */
  private spin(): number {
    const deadline = performance.now() + this.pollMilliseconds;
    for (let round = 1; ; round++) {
      const count = this.ring.reap();
      if (count > 0) {
        this.dispatch(count);
        return count;
      }
      // The clock allocates on every call (a garbage collection every ~50 ms if read each round): read it
      // once every SpinClockRounds reaps (a few microseconds).
      if (round % SpinClockRounds === 0 && performance.now() >= deadline) return 0;
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
    this.scheduleTurn();
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
    if (this.socketSlot[slot] === 1) {
      this.socketSlot[slot] = 0;
      this.socketOperations--;
    }
    return done;
  }

  /** Calls the callbacks of the `count` completions reap() just wrote, then the batch's afterBatch callbacks (E7). */
  private dispatch(count: number): void {
    const completions = this.ring.completions;
    this.inflight -= count;
    this.dispatching = true;
    try {
      for (let i = 0; i < count; i++) {
        const done = this.releaseSlot(completions[2 * i] >>> 0);
        done(completions[2 * i + 1]);
      }
    } finally {
      this.dispatching = false;
    }
    this.runBatchEnd();
  }

  private runBatchEnd(): void {
    if (this.batchEnd.length === 0) return;
    const callbacks = this.batchEnd;
    this.batchEnd = [];
    for (const callback of callbacks) callback();
  }

  /** Called from the ring's eventfd poll (idle mode): drains every available completion; activity turns busy mode on. */
  private reapAll(): void {
    const reaped = this.reapAndDispatch();
    if (this.backlog.length > 0 || this.queued > 0) this.scheduleTurn();
    if (reaped > 0 && this.waitMicroseconds > 0) this.becomeBusy();
    else if (!this.busy) this.releaseLoopIfIdle();
  }
}

function errnoOf(error: unknown): number {
  const code = (error as { details?: { errno?: unknown } }).details?.errno;
  const errno = typeof code === 'string' ? (constants.errno as Record<string, number>)[code] : undefined;
  return errno ?? constants.errno.EIO;
}

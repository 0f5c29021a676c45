/**
 * Ring: a typed facade over one native io_uring, for the one thread that owns it.
 *
 * Owns: the Ring class used by I/O workers, and the mapping of the addon's errno names to ring error codes.
 * Does not know: tables, devices (an fd is a number), queues or retries: a caller queues what submit() did not
 * take and decides what a completion's -errno means (src/errors/errno.ts).
 *
 * How to drive it (one Node-API call per batch, never per I/O):
 *   1. registerBuffer(allocateAligned(n)) once per buffer; the index goes into descriptors.
 *   2. Fill descriptors 0..count-1 of `submissions` (setDescriptor, layout in submission.ts), call submit(count):
 *      it returns how many it took (fewer when the submission queue is full; the rest start at that index).
 *   3. onCompletion(callback) wakes this thread through an eventfd watched by its own event loop; the callback
 *      calls reap() until it returns 0 and reads pairs from `completions`.
 *   3b. Or, while I/O keeps flowing, submit(count, first, waitMicroseconds) sleeps in the kernel until the next
 *      completion, with setWake(false) so the eventfd stays quiet meanwhile (and setWake(true) before going idle).
 *   4. unref() lets an idle thread exit; close() waits for I/O in flight, then releases everything.
 *
 * BUFFER SAFETY RULE: a region submitted to the ring is not reused (neither written for another request nor read
 * as a result, nor handed elsewhere) until its completion has been reaped. The ring keeps every registered buffer
 * alive until close() has seen every completion, so the kernel never writes into memory JavaScript freed; what a
 * region contains while its I/O is in flight is undefined.
 *
 * Invariants:
 *   G1. One ring per thread, used only by that thread (the kernel enforces SINGLE_ISSUER when it has it).
 *   G2. The data path never throws: a failed I/O is only its negative errno in `completions`.
 *   G3. submit() with a bad descriptor throws VDM_RING_ARGUMENT and queues nothing.
 *   G4. After close(), every method but close() throws VDM_RING_CLOSED; close() is idempotent.
 *   G5. Bad options or arguments are VDM_RING_ARGUMENT (details.errno 'EINVAL'); kernel refusals keep their errno
 *       name in details.errno.
 *
 * Thread: the creating thread only (main or a worker_threads worker). The kernel completes I/O concurrently.
 * Errors leaving: VDM_RING_SETUP, VDM_RING_SUBMIT, VDM_RING_ARGUMENT, VDM_RING_BUFFER, VDM_RING_CLOSED,
 * VDM_NATIVE_MISSING.
 */
import type { ErrorCode } from '../errors/catalogue.js';
import { VdmapError } from '../errors/error.js';
import { loadAddon, type NativeError, type NativeRing, type NativeRingFeatures, nativeErrno } from './addon.js';

export type RingFeatures = NativeRingFeatures;

export interface RingOptions {
  /** Submission queue entries: a power of two (e.g. 256). Completions hold 2 * entries. */
  entries: number;
  /** Experimental: a kernel thread polls the submission queue; it sleeps after idleMilliseconds (default 1000). */
  sqpoll?: { idleMilliseconds?: number };
  /** How many buffers registerBuffer can hold (default 64). */
  maxBuffers?: number;
  /**
   * Register buffers with the kernel as fixed buffers (default true; READ_FIXED/WRITE_FIXED, no page pinning per
   * I/O). false forces plain READ/WRITE, to compare; features.fixedBuffers says what is in use.
   */
  fixedBuffers?: boolean;
}

/** Turns an addon error into a VdmapError: EINVAL is always an argument error, EBADF a closed ring. */
function ringError(error: unknown, otherwise: ErrorCode, operation: string): VdmapError {
  const errno = nativeErrno(error);
  const message = error instanceof Error ? error.message : String(error);
  const details: Record<string, unknown> = { operation, errno };
  const queued = (error as NativeError | undefined)?.queued;
  if (typeof queued === 'number') details.queued = queued;
  if (errno === 'EBADF') return new VdmapError('VDM_RING_CLOSED', message, details);
  if (errno === 'EINVAL') return new VdmapError('VDM_RING_ARGUMENT', message, details);
  return new VdmapError(otherwise, message, details);
}

const MAX_ENTRIES = 32768;

/** Options are checked here so that a bad option is VDM_RING_ARGUMENT and every native refusal VDM_RING_SETUP. */
function checkOptions(options: RingOptions): void {
  const { entries, maxBuffers, sqpoll } = options;
  const powerOfTwo = Number.isInteger(entries) && entries >= 1 && entries <= MAX_ENTRIES && (entries & (entries - 1)) === 0;
  const buffersValid = maxBuffers === undefined || (Number.isInteger(maxBuffers) && maxBuffers >= 1 && maxBuffers <= 16384);
  const idle = sqpoll?.idleMilliseconds;
  const idleValid = idle === undefined || (Number.isInteger(idle) && idle >= 0 && idle <= 600000);
  if (!powerOfTwo || !buffersValid || !idleValid) {
    throw new VdmapError('VDM_RING_ARGUMENT', 'Ring options: entries must be a power of two up to 32768, maxBuffers an integer in [1, 16384], sqpoll.idleMilliseconds an integer in [0, 600000]', {
      operation: 'setup',
      errno: 'EINVAL',
      entries,
      maxBuffers,
      idleMilliseconds: idle,
    });
  }
}

export class Ring {
  /** Descriptors, SUBMISSION_STRIDE doubles each, capacity `entries` (submission.ts). */
  readonly submissions: Float64Array;
  /** [userData, result] pairs written by reap(), capacity 2 * entries. */
  readonly completions: Int32Array;
  /** Which setup flags took effect and whether fixed buffers are in use. */
  readonly features: RingFeatures;
  readonly #native: NativeRing;

  constructor(options: RingOptions) {
    checkOptions(options);
    const addon = loadAddon();
    try {
      this.#native = new addon.Ring({
        entries: options.entries,
        maxBuffers: options.maxBuffers,
        fixedBuffers: options.fixedBuffers,
        sqpollIdleMilliseconds: options.sqpoll === undefined ? undefined : (options.sqpoll.idleMilliseconds ?? 1000),
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new VdmapError('VDM_RING_SETUP', message, { operation: 'setup', errno: nativeErrno(error) });
    }
    this.submissions = this.#native.submissions;
    this.completions = this.#native.completions;
    this.features = this.#native.features;
  }

  /** Descriptors accepted by submit() whose completion has not been reaped yet. */
  get inFlight(): number {
    return this.#native.inFlight;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /**
   * Registers a page-aligned Uint8Array (allocateAligned) and returns its index for descriptors. The ring holds it
   * until close(). Obey the buffer safety rule above for every region of it.
   */
  registerBuffer(view: Uint8Array): number {
    try {
      return this.#native.registerBuffer(view);
    } catch (error) {
      throw ringError(error, 'VDM_RING_BUFFER', 'registerBuffer');
    }
  }

  /**
   * Submits descriptors [first, first + count) in one system call and returns how many were taken, in order.
   * A bad descriptor anywhere in the batch throws VDM_RING_ARGUMENT and nothing is queued. VDM_RING_SUBMIT means
   * the kernel call failed; details.queued descriptors stay queued in the ring and go with the next submit.
   * With `waitMicroseconds` (at most 1 000 000) the same system call then sleeps until at least `waitCount`
   * (default 1, at most the completion capacity) completions are ready or the time is up (this thread's deferred
   * task work, such as a socket receive, runs meanwhile); reap() afterwards. Running out of time is not an error.
   * submit(0, 0, us) only waits.
   */
  submit(count: number, first = 0, waitMicroseconds = 0, waitCount = 1): number {
    try {
      return this.#native.submit(count, first, waitMicroseconds, waitCount);
    } catch (error) {
      throw ringError(error, 'VDM_RING_SUBMIT', 'submit');
    }
  }

  /** Copies available completions into `completions` and returns how many; call until it returns 0. */
  reap(): number {
    try {
      return this.#native.reap();
    } catch (error) {
      throw ringError(error, 'VDM_INTERNAL', 'reap');
    }
  }

  /** Calls `callback` on this thread's event loop when completions may be ready; replaces any earlier callback. */
  onCompletion(callback: () => void): void {
    try {
      this.#native.onCompletion(callback);
    } catch (error) {
      throw ringError(error, 'VDM_RING_SETUP', 'onCompletion');
    }
  }

  /** The completion watch keeps the event loop (and so the thread) alive: the default. */
  ref(): void {
    try {
      this.#native.ref();
    } catch (error) {
      throw ringError(error, 'VDM_INTERNAL', 'ref');
    }
  }

  /** The completion watch no longer keeps the event loop alive. */
  unref(): void {
    try {
      this.#native.unref();
    } catch (error) {
      throw ringError(error, 'VDM_INTERNAL', 'unref');
    }
  }

  /**
   * Whether completions signal the eventfd and so wake the event loop (default on). A caller that reaps and waits by
   * itself for a while (submit with waitMicroseconds) turns it off, and back on before it leaves the event loop to
   * sleep; turning it on is followed by a full barrier, so the reap() that must follow sees everything that arrived
   * while it was off. Where the kernel cannot turn it off, the eventfd simply keeps firing.
   */
  setWake(enabled: boolean): void {
    try {
      this.#native.setWake(enabled);
    } catch (error) {
      throw ringError(error, 'VDM_INTERNAL', 'setWake');
    }
  }

  /** Cancels what can be cancelled, waits for I/O in flight, releases buffers and the ring. Idempotent. */
  close(): void {
    this.#native.close();
  }
}

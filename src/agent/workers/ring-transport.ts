/**
 * RingTransport: an NBD connection carried by the I/O worker's own io_uring instead of a net.Socket, so a client's
 * requests, their disk I/O and the thread's sleep all go through one ring (src/nbd/transport.ts has the contract).
 *
 *   receive   one RECV is armed whenever someone listens and the transport is not paused; it lands in a pool
 *             block registered with the ring, and the bytes are lent to the listener (borrowed, T1) before the
 *             next RECV reuses the block. No per-read allocation, no stream machinery. The block starts small
 *             (an idle connection holds 16 KiB of the worker's I/O pool) and doubles, up to receiveBytes, each
 *             time a receive fills it, when the pool has a bigger block at hand.
 *   send      a non-blocking sendmsg straight from the reply pieces (sendVector); what the socket does not take
 *             waits in a queue, in order, and goes when a POLL for writability completes.
 *   close     end(): once the queue is empty the sending side is shut; the transport closes when the peer closes
 *             too. destroy(): both sides are shut at once, which ends an armed RECV or POLL; the fd is closed only
 *             after every ring operation on it completed, so no operation ever meets a reused descriptor number.
 *
 * Owns: the connection's fd (closed here, once), its receive block, its send queue.
 * Does not know: NBD (src/nbd) or disks; how the ring waits (io-engine.ts).
 *
 * Invariants:
 *   G1. At most one RECV and one POLL of this fd are in flight; a receive block is released (outgrown or at
 *       close) only while no RECV is in flight (buffer safety rule of src/native/ring.ts).
 *   G2. Bytes leave in send() order: nothing is sent directly while older bytes wait in the queue.
 *   G3. Every `sent` callback runs exactly once: after the kernel took its bytes, or when they are dropped by
 *       destroy() or a failed send.
 *   G4. The fd is closed exactly once, after G1's operations completed; close() reaches the listener last (T4).
 *   G5. The peer's end (RECV of 0 bytes) is delivered (T5) and nothing more is received; this side stays open
 *       for sending until the listener calls end(). A reset connection (ECONNRESET) is destroyed.
 *
 * Thread: the I/O worker that owns the engine. Error codes: none; failures close the transport.
 */
import { constants } from 'node:os';
import type { Transport, TransportListener } from '../../nbd/transport.js';
import { closeDescriptor, MAX_SEND_VECTOR, sendVector, setSendBufferSize, Shutdown, shutdownSocket } from '../../native/index.js';
import type { PoolBlock } from '../buffer-pool.js';
import { type IoEngine, PollEvent } from '../io-engine.js';

export interface RingTransportOptions {
  /** Most bytes one RECV may bring: the size the receive block may grow to (default 256 KiB, at least 16 KiB). */
  receiveBytes?: number;
  /** SO_SNDBUF to ask for, so a large reply leaves in one call (default 4 MiB; the kernel caps it at wmem_max). */
  sendBufferBytes?: number;
}

interface QueuedSend {
  pieces: Uint8Array[];
  bytes: number;
  sent: (() => void) | undefined;
  /** `pieces` is this transport's own array (the caller's is never changed). */
  owned?: boolean;
}

const { EAGAIN } = constants.errno;
/** The receive block an idle connection holds. */
const FirstReceiveBytes = 16 * 1024;
const DefaultReceiveBytes = 256 * 1024;

export class RingTransport implements Transport {
  private listener: TransportListener | undefined;
  private isPaused = false;
  /** Copies of bytes that arrived while paused or while nobody listened (T1). */
  private waiting: Buffer[] = [];
  private receiving = false;
  private polling = false;
  private peerEnded = false;
  private endDelivered = false;
  private ending = false;
  private writeShut = false;
  private isDestroyed = false;
  private isClosed = false;
  private readonly queue: QueuedSend[] = [];
  private queuedBytes = 0;
  private drainWaiters: Array<() => void> = [];
  private block: PoolBlock;
  private view: Buffer;
  private readonly maxReceiveBytes: number;
  readonly whenClosed: Promise<void>;
  private resolveClosed!: () => void;
  private readonly onReceivedBound = (result: number): void => this.received(result);
  private readonly onWritableBound = (result: number): void => this.writable(result);

  /** Takes ownership of `fd` (a connected stream socket) once its receive block is allocated. */
  static async open(fd: number, engine: IoEngine, options: RingTransportOptions = {}): Promise<RingTransport> {
    const maxReceiveBytes = Math.max(FirstReceiveBytes, options.receiveBytes ?? DefaultReceiveBytes);
    let block: PoolBlock;
    try {
      block = await engine.pool.allocate(FirstReceiveBytes);
    } catch (error) {
      closeDescriptor(fd);
      throw error;
    }
    setSendBufferSize(fd, options.sendBufferBytes ?? 4 * 1024 * 1024);
    return new RingTransport(fd, engine, block, maxReceiveBytes);
  }

  private constructor(
    private readonly fd: number,
    private readonly engine: IoEngine,
    block: PoolBlock,
    maxReceiveBytes: number,
  ) {
    this.block = block;
    this.view = viewOf(block);
    this.maxReceiveBytes = maxReceiveBytes;
    this.whenClosed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  listen(listener: TransportListener | undefined): void {
    this.listener = listener;
    if (listener === undefined) return;
    this.deliverWaiting();
    if (this.isClosed) {
      listener.close();
      return;
    }
    this.armReceive();
  }

  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    this.isPaused = false;
    this.deliverWaiting();
    this.armReceive();
  }

  get paused(): boolean {
    return this.isPaused;
  }

  send(pieces: readonly Uint8Array[], sent?: () => void): void {
    if (this.isDestroyed || this.writeShut) {
      sent?.();
      return;
    }
    let bytes = 0;
    for (const piece of pieces) bytes += piece.length;
    const entry: QueuedSend = { pieces: pieces as Uint8Array[], bytes, sent };
    if (this.queue.length > 0) {
      entry.pieces = [...pieces];
      entry.owned = true;
      this.enqueue(entry);
      return;
    }
    const outcome = this.sendNow(entry);
    if (outcome === 'done') {
      sent?.();
    } else if (outcome === 'partial') {
      if (entry.owned !== true) entry.pieces = [...entry.pieces]; // the caller may reuse its array after send()
      entry.owned = true;
      this.enqueue(entry);
    }
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  onceDrained(drained: () => void): void {
    if (this.queue.length === 0 || this.isClosed) drained();
    else this.drainWaiters.push(drained);
  }

  end(): void {
    if (this.ending || this.isDestroyed) return;
    this.ending = true;
    if (this.queue.length === 0) this.shutWrite();
  }

  destroy(): void {
    if (this.isDestroyed) return;
    this.isDestroyed = true;
    shutdownSocket(this.fd, Shutdown.BOTH); // ends an armed RECV (0 bytes) and POLL (G1)
    this.dropQueue();
    this.closeWhenIdle();
  }

  get destroyed(): boolean {
    return this.isDestroyed || this.isClosed;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** T6: after the engine's current batch of completions (a reap), or on the next tick. */
  afterBatch(callback: () => void): void {
    this.engine.afterBatch(callback);
  }

  // ---- receiving ---------------------------------------------------------------------------------------

  private armReceive(): void {
    if (this.receiving || this.isPaused || this.peerEnded || this.isDestroyed || this.listener === undefined) return;
    this.receiving = true;
    this.engine.receive(this.fd, this.block, 0, this.block.size, this.onReceivedBound);
  }

  private received(result: number): void {
    this.receiving = false;
    if (this.isDestroyed) {
      this.closeWhenIdle();
      return;
    }
    if (result > 0) {
      const chunk = this.view.subarray(0, result);
      if (this.isPaused || this.listener === undefined) this.waiting.push(Buffer.from(chunk));
      else this.listener.data(chunk, true);
      if (result === this.block.size) this.growReceiveBlock();
      this.armReceive();
      return;
    }
    if (result === 0) {
      this.peerEnded = true; // G5
      this.deliverEnd();
      this.closeWhenIdle();
      return;
    }
    this.destroy(); // -ECONNRESET, -ECANCELED (the ring is closing) or another failure
  }

  /** A receive filled the block: more was probably waiting. Doubles it when the pool has one at hand (G1). */
  private growReceiveBlock(): void {
    if (this.isClosed || this.block.size >= this.maxReceiveBytes) return;
    const bigger = this.engine.pool.tryAllocate(Math.min(this.block.size * 2, this.maxReceiveBytes));
    if (bigger === undefined) return;
    this.engine.pool.release(this.block);
    this.block = bigger;
    this.view = viewOf(bigger);
  }

  private deliverWaiting(): void {
    while (this.waiting.length > 0 && !this.isPaused && this.listener !== undefined) {
      this.listener.data(this.waiting.shift()!, false);
    }
    if (this.waiting.length === 0) this.deliverEnd();
  }

  /** T5: the listener hears end once, after every byte that came before it. */
  private deliverEnd(): void {
    if (!this.peerEnded || this.endDelivered || this.waiting.length > 0 || this.listener === undefined) return;
    this.endDelivered = true;
    this.listener.end();
  }

  // ---- sending -----------------------------------------------------------------------------------------

  /** Sends as much of `entry` as the socket takes now, trimming what went from its pieces. */
  private sendNow(entry: QueuedSend): 'done' | 'partial' | 'failed' {
    while (entry.bytes > 0) {
      const batch = entry.pieces.length > MAX_SEND_VECTOR ? entry.pieces.slice(0, MAX_SEND_VECTOR) : entry.pieces;
      const result = sendVector(this.fd, batch);
      if (result === -EAGAIN) return 'partial';
      if (result < 0) {
        this.failSending();
        return 'failed';
      }
      trimSent(entry, result);
    }
    return 'done';
  }

  private enqueue(entry: QueuedSend): void {
    this.queue.push(entry);
    this.queuedBytes += entry.bytes;
    this.armWritable();
  }

  private armWritable(): void {
    if (this.polling || this.isDestroyed) return;
    this.polling = true;
    this.engine.pollReady(this.fd, PollEvent.OUT, this.onWritableBound);
  }

  private writable(result: number): void {
    this.polling = false;
    if (this.isDestroyed) {
      this.closeWhenIdle();
      return;
    }
    if (result < 0) {
      this.failSending();
      return;
    }
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const before = head.bytes;
      const outcome = this.sendNow(head);
      if (outcome === 'failed') return;
      this.queuedBytes -= before - head.bytes;
      if (outcome === 'partial') {
        this.armWritable();
        return;
      }
      this.queue.shift();
      head.sent?.();
    }
    this.drained();
  }

  private drained(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
    if (this.ending) this.shutWrite();
  }

  private shutWrite(): void {
    if (this.writeShut) return;
    this.writeShut = true;
    shutdownSocket(this.fd, Shutdown.WRITE);
    this.closeWhenIdle();
  }

  /** The peer cannot take bytes any more: drop what waits and close (G3). */
  private failSending(): void {
    this.destroy();
  }

  private dropQueue(): void {
    const queue = this.queue.splice(0);
    this.queuedBytes = 0;
    for (const entry of queue) entry.sent?.();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  // ---- closing -----------------------------------------------------------------------------------------

  /** G4: closes once nothing of this fd is in the ring, when destroyed or when both sides have ended. */
  private closeWhenIdle(): void {
    if (this.isClosed || this.receiving || this.polling) return;
    if (!this.isDestroyed && !(this.peerEnded && this.writeShut)) return;
    this.isDestroyed = true;
    this.isClosed = true;
    closeDescriptor(this.fd);
    this.engine.pool.release(this.block);
    this.waiting = [];
    this.resolveClosed();
    this.listener?.close();
  }
}

/** Removes the first `sent` bytes from the entry's pieces (on its own copy of the array: the caller's stays intact). */
function trimSent(entry: QueuedSend, sent: number): void {
  entry.bytes -= sent;
  if (entry.bytes > 0 && !entry.owned) {
    entry.pieces = [...entry.pieces];
    entry.owned = true;
  }
  let remaining = sent;
  let skip = 0;
  while (skip < entry.pieces.length && remaining >= entry.pieces[skip].length) {
    remaining -= entry.pieces[skip].length;
    skip++;
  }
  if (skip > 0) entry.pieces.splice(0, skip);
  if (remaining > 0) entry.pieces[0] = entry.pieces[0].subarray(remaining);
}

function viewOf(block: PoolBlock): Buffer {
  return Buffer.from(block.bytes.buffer, block.bytes.byteOffset, block.size);
}

/**
 * Transport: the byte stream of one NBD connection, as the handshake and the transmission phase use it. The
 * protocol code never touches a socket directly, so a connection can be carried by a net.Socket (this file's
 * SocketTransport: the NbdServer, tests) or by anything else that moves bytes in order, such as an agent I/O
 * worker that receives and sends on its own io_uring (src/agent/workers/ring-transport.ts).
 *
 * Owns: the Transport contract and SocketTransport, its net.Socket implementation.
 * Does not know: the protocol (handshake.ts, transmission.ts) or who accepted the connection.
 *
 * Contract (every implementation):
 *   T1. Bytes reach the listener in order, each exactly once. A chunk marked `borrowed` is valid only during the
 *       data() call: the listener copies whatever it keeps. Bytes that arrive while nobody listens, or while
 *       paused, wait (in order) for the next listener or resume().
 *   T2. send() keeps the order of every byte sent; `sent` runs once, after the kernel took all of the call's bytes
 *       (so their memory may be reused) or the connection failed. It may run before send() returns.
 *   T3. end() sends what is pending, then shuts the sending side; close() follows when the peer closes, or at
 *       destroy(). destroy() drops pending bytes (their `sent` callbacks still run) and closes now.
 *   T4. close() is the last event, exactly once; after it the transport never calls its listener again.
 *   T5. end() of the listener (the peer shut its sending side) comes at most once, after every byte the peer
 *       sent and before close(). The transport does not end its own sending side then (a half-open connection):
 *       the listener still replies to what it received and calls end() when it is done (X6 of transmission.ts).
 *   T6. afterBatch(callback) runs the callback once, after the batch of events being delivered now (so the
 *       replies one batch of completions produced leave in one send), or on the next tick outside a batch.
 *
 * Thread: the thread whose event loop owns the connection. Error codes: none (failures close the transport).
 */
import type { Socket } from 'node:net';

export interface TransportListener {
  /** Bytes from the peer (T1). */
  data(chunk: Buffer, borrowed: boolean): void;
  /** The peer shut its sending side: no more data (T5). */
  end(): void;
  /** The connection is gone (T4). */
  close(): void;
}

export interface Transport {
  /** Replaces who hears the transport's events; `undefined` leaves bytes waiting (T1). */
  listen(listener: TransportListener | undefined): void;
  /** Stops delivering bytes until resume() (backpressure). */
  pause(): void;
  resume(): void;
  readonly paused: boolean;
  /** Sends `pieces` in order, after everything sent before (T2). */
  send(pieces: readonly Uint8Array[], sent?: () => void): void;
  /** Bytes given to send() that the kernel has not taken yet. */
  readonly pendingBytes: number;
  /** Calls `drained` once, when pendingBytes next reaches zero or the transport closes. */
  onceDrained(drained: () => void): void;
  /** T3. */
  end(): void;
  /** T3. */
  destroy(): void;
  /** True once destroy() was called or the transport closed. */
  readonly destroyed: boolean;
  /** True once close() was delivered (or would have been, with no listener). */
  readonly closed: boolean;
  /** Resolves when the transport has closed, whoever listens. */
  readonly whenClosed: Promise<void>;
  /** T6. */
  afterBatch(callback: () => void): void;
}

/** A Transport over a net.Socket (TCP or Unix): Node's stream machinery does the buffering. */
export class SocketTransport implements Transport {
  private listener: TransportListener | undefined;
  private waiting: Buffer[] = [];
  private endedWaiting = false;
  private closedWaiting = false;
  private isClosed = false;
  readonly whenClosed: Promise<void>;
  private resolveClosed!: () => void;

  constructor(private readonly socket: Socket) {
    this.whenClosed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    if (socket.destroyed && socket.closed) {
      this.isClosed = true;
      this.closedWaiting = true;
      this.resolveClosed();
    }
    socket.on('error', () => undefined); // 'close' follows and ends the connection
    socket.on('data', (chunk: Buffer) => {
      if (this.listener === undefined) this.waiting.push(chunk);
      else this.listener.data(chunk, false);
    });
    socket.on('end', () => {
      if (this.listener === undefined) this.endedWaiting = true;
      else this.listener.end();
    });
    socket.on('close', () => {
      this.isClosed = true;
      this.resolveClosed();
      if (this.listener === undefined) this.closedWaiting = true;
      else this.listener.close();
    });
  }

  /** T6: Node's stream delivers one chunk per callback; the batch is the tick. */
  afterBatch(callback: () => void): void {
    process.nextTick(callback);
  }

  listen(listener: TransportListener | undefined): void {
    this.listener = listener;
    if (listener === undefined) return;
    const waiting = this.waiting;
    this.waiting = [];
    for (const chunk of waiting) {
      if (this.listener !== listener) {
        this.waiting.push(chunk);
        continue;
      }
      listener.data(chunk, false);
    }
    if (this.listener !== listener) return;
    if (this.endedWaiting) {
      this.endedWaiting = false;
      listener.end();
    }
    if (this.closedWaiting && this.listener === listener) {
      this.closedWaiting = false;
      listener.close();
    }
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  get paused(): boolean {
    return this.socket.isPaused();
  }

  send(pieces: readonly Uint8Array[], sent?: () => void): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable || pieces.length === 0) {
      sent?.();
      return;
    }
    socket.cork();
    const last = pieces.length - 1;
    for (let i = 0; i < last; i++) socket.write(pieces[i]);
    socket.write(pieces[last], sent === undefined ? undefined : () => sent());
    socket.uncork();
  }

  get pendingBytes(): number {
    return this.socket.writableLength;
  }

  onceDrained(drained: () => void): void {
    if (this.isClosed) {
      drained();
      return;
    }
    let called = false;
    const once = (): void => {
      if (called) return;
      called = true;
      this.socket.off('drain', once);
      this.socket.off('close', once);
      drained();
    };
    this.socket.on('drain', once);
    this.socket.on('close', once);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  get closed(): boolean {
    return this.isClosed;
  }
}

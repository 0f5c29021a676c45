/**
 * IoWorkerPool: the agent's I/O threads, owned by piscina (start, size, replacement of a crashed thread,
 * graceful close). Each thread runs one long `serve` task (io-worker.ts) with its own ring and reader slot.
 *
 * Owns: which disks every worker serves, the control channel to each worker, and the restart policy. Knows
 * nothing about NBD or the controller: faults are handed to `onFault`.
 *
 * Invariants:
 *   P1. Worker i (0-based) reads every table with reader slot i + 1; slot 0 belongs to the main thread.
 *   P2. A worker that dies is replaced: its reader slots are reset (its ring is gone with its thread, so none of
 *       its I/O can still be in flight or ever decrement them), then a new serve task gets every attached disk.
 *   P3. close() stops every worker (held requests fail with VDM_IO_CLOSED, in-flight I/O completes) before the
 *       pool is destroyed; nothing is restarted while closing.
 * Thread: the agent's main thread.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { type ErrorRecord, VdmapError } from '../../errors/error.js';
import type { AgentDisk } from '../agent-disk.js';
import { DefaultWaitMicroseconds } from '../io-engine.js';
import type { Fault } from '../faults.js';
import type { IoStatsSnapshot } from './io-stats.js';
import type { FromWorker, ServeResult, ServeTask, ToWorker } from './messages.js';

export interface IoWorkerPoolOptions {
  threads: number;
  ringEntries?: number;
  poolBytes?: number;
  holdTimeoutMs?: number;
  /**
   * IoEngine hybrid polling: at low device queue depth, spin this long before sleeping for a completion, backing off
   * when spins keep ending empty (default DefaultWorkerPollMicroseconds; 0: never spin).
   */
  pollMicroseconds?: number;
  /**
   * IoEngine busy mode: longest sleep inside io_uring_enter between event-loop rounds (default DefaultWaitMicroseconds
   * when connections are carried by the ring, else 0: libuv must see the sockets).
   */
  waitMicroseconds?: number;
  /** Carry NBD connections on each worker's ring (default true) rather than on a net.Socket. */
  socketsOnRing?: boolean;
  onFault: (fault: Fault) => void;
  /** Told when a worker died and was replaced. */
  onRestart?: (slot: number, error: unknown) => void;
  onError?: (slot: number, error: ErrorRecord) => void;
  /** A worker's batch of I/O counts (io-stats.ts). */
  onIoStats?: (slot: number, stats: IoStatsSnapshot) => void;
}

/** Hybrid polling in I/O workers by default: covers a device completion or a client's turnaround at queue depth 1. */
export const DefaultWorkerPollMicroseconds = 100;

interface WorkerHandle {
  slot: number;
  connections: number;
  port: MessagePort;
  ready: Promise<void>;
  serving: Promise<ServeResult | undefined>;
}

export class IoWorkerPool {
  private readonly piscina: Piscina<ServeTask, ServeResult>;
  private readonly handles: WorkerHandle[] = [];
  private readonly disks = new Map<string, AgentDisk>();
  private readonly pendingIo = new Map<number, { slot: number; resolve: (data: Uint8Array | undefined) => void; reject: (error: Error) => void }>();
  private nextIoId = 1;
  private closing = false;
  restarts = 0;

  constructor(private readonly options: IoWorkerPoolOptions) {
    this.piscina = new Piscina({
      filename: new URL('./io-worker.js', import.meta.url).href,
      minThreads: options.threads, maxThreads: options.threads,
      concurrentTasksPerWorker: 1, idleTimeout: Number.MAX_SAFE_INTEGER,
    });
  }

  get threads(): number {
    return this.options.threads;
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.options.threads; i++) this.handles.push(this.startWorker(i + 1));
    await Promise.all(this.handles.map((handle) => handle.ready));
  }

  /** Serves `disk` on every worker. Its table must have a reader slot per worker plus one (P1). */
  attach(disk: AgentDisk): void {
    if (disk.views.readerSlots < this.options.threads + 1) {
      throw new VdmapError('VDM_TABLE_INVALID', `disk ${disk.name} has ${disk.views.readerSlots} reader slots, ${this.options.threads + 1} are needed`);
    }
    this.disks.set(disk.name, disk);
    for (const handle of this.handles) this.send(handle, { type: 'attach', share: disk.share(), holdTimeoutMs: this.options.holdTimeoutMs });
  }

  detach(name: string): void {
    this.disks.delete(name);
    for (const handle of this.handles) this.send(handle, { type: 'detach', disk: name });
  }

  /**
   * Hands an accepted NBD client (a duplicated fd, now owned by the worker) to the worker with the fewest
   * connections; from then on the client's requests and their disk I/O stay on that thread.
   */
  handConnection(fd: number): void {
    const handle = this.handles.reduce((best, candidate) => (candidate.connections < best.connections ? candidate : best));
    handle.connections++;
    this.send(handle, { type: 'connection', fd });
  }

  /** Open NBD connections per worker. */
  connectionCounts(): number[] {
    return this.handles.map((handle) => handle.connections);
  }

  /** Control-plane I/O through worker `index`'s data path (admin reads and writes, tests). */
  io(index: number, disk: string, operation: 'read' | 'write' | 'flush', offset: number, lengthOrData: number | Uint8Array): Promise<Uint8Array | undefined> {
    const handle = this.handles[index];
    const id = this.nextIoId++;
    const data = typeof lengthOrData === 'number' ? undefined : lengthOrData;
    const length = typeof lengthOrData === 'number' ? lengthOrData : lengthOrData.length;
    return new Promise((resolve, reject) => {
      this.pendingIo.set(id, { slot: handle.slot, resolve, reject });
      this.send(handle, { type: 'io', id, disk, operation, offset, length, data });
    });
  }

  /** The worker threads piscina runs (for inspection and tests). */
  workerThreads() {
    return this.piscina.threads;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const handle of this.handles) this.send(handle, { type: 'stop' });
    await Promise.all(this.handles.map((handle) => handle.serving));
    for (const handle of this.handles) this.failPendingIo(handle.slot, 'the pool closed');
    await this.piscina.close();
  }

  private startWorker(slot: number): WorkerHandle {
    const { port1, port2 } = new MessageChannel();
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => { markReady = resolve; });
    const task: ServeTask = {
      slot, port: port2, ringEntries: this.options.ringEntries ?? 256, poolBytes: this.options.poolBytes ?? 64 * 1024 * 1024,
      pollMicroseconds: this.options.pollMicroseconds ?? DefaultWorkerPollMicroseconds,
      waitMicroseconds: this.options.waitMicroseconds ?? (this.options.socketsOnRing === false ? 0 : DefaultWaitMicroseconds),
      socketsOnRing: this.options.socketsOnRing ?? true,
    };
    port1.on('message', (message: FromWorker) => this.receive(slot, message, markReady));
    const serving = this.piscina.run(task, { transferList: [port2] as never })
      .catch((error: unknown) => this.replace(slot, error));
    const handle: WorkerHandle = { slot, connections: 0, port: port1, ready, serving };
    for (const disk of this.disks.values()) this.send(handle, { type: 'attach', share: disk.share(), holdTimeoutMs: this.options.holdTimeoutMs });
    return handle;
  }

  /** P2. */
  private async replace(slot: number, error: unknown): Promise<undefined> {
    const old = this.handles[slot - 1];
    old?.port.close();
    this.failPendingIo(slot, error);
    if (this.closing) return undefined;
    this.restarts++;
    for (const disk of this.disks.values()) disk.writer.resetReaderSlot(slot);
    this.options.onRestart?.(slot, error);
    const handle = this.startWorker(slot);
    this.handles[slot - 1] = handle;
    await handle.ready;
    return undefined;
  }

  private failPendingIo(slot: number, cause: unknown): void {
    for (const [id, pending] of this.pendingIo) {
      if (pending.slot !== slot) continue;
      this.pendingIo.delete(id);
      pending.reject(new VdmapError('VDM_IO_CLOSED', `I/O worker ${slot} stopped before answering: ${String(cause)}`));
    }
  }

  private receive(slot: number, message: FromWorker, markReady: () => void): void {
    if (message.type === 'ready') markReady();
    else if (message.type === 'fault') this.options.onFault(message.fault);
    else if (message.type === 'error') this.options.onError?.(slot, message.error);
    else if (message.type === 'io-stats') this.options.onIoStats?.(slot, message.stats);
    else if (message.type === 'connection-closed') {
      const handle = this.handles[slot - 1];
      if (handle) handle.connections = Math.max(0, handle.connections - 1);
    } else if (message.type === 'io-done') {
      const pending = this.pendingIo.get(message.id);
      this.pendingIo.delete(message.id);
      if (message.error) pending?.reject(VdmapError.fromRecord(message.error));
      else pending?.resolve(message.data);
    }
  }

  private send(handle: WorkerHandle, message: ToWorker): void {
    handle.port.postMessage(message);
  }
}

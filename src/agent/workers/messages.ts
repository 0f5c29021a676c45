/**
 * Messages between the agent's main thread and its I/O workers (control plane only: the data path never
 * crosses threads). Plain records, so they survive postMessage; errors travel as ErrorRecords.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ErrorRecord } from '../../errors/error.js';
import type { DiskShare } from '../agent-disk.js';
import type { Fault } from '../faults.js';
import type { IoStatsSnapshot } from './io-stats.js';

export type ToWorker =
  | { type: 'attach'; share: DiskShare; holdTimeoutMs?: number }
  | { type: 'detach'; disk: string }
  /** Control-plane I/O on behalf of the agent (admin reads and writes); never the hot path. */
  | { type: 'io'; id: number; disk: string; operation: 'read' | 'write' | 'flush'; offset: number; length: number; data?: Uint8Array }
  /** An accepted NBD client socket, duplicated for this worker: the worker owns the fd from now on. */
  | { type: 'connection'; fd: number }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready'; slot: number; ring: Record<string, unknown> }
  | { type: 'fault'; fault: Fault }
  | { type: 'io-done'; id: number; data?: Uint8Array; error?: ErrorRecord }
  | { type: 'error'; error: ErrorRecord }
  | { type: 'connection-closed' }
  /** I/O counts since the last batch (io-stats.ts), about once a second while there is I/O. */
  | { type: 'io-stats'; stats: IoStatsSnapshot };

/** The long-running task piscina runs once per I/O worker. */
export interface ServeTask {
  slot: number;
  port: MessagePort;
  ringEntries: number;
  poolBytes: number;
  /** IoEngine hybrid polling: spin before sleeping in a busy step (microseconds; 0 = off). */
  pollMicroseconds: number;
  /** IoEngine busy steps: longest sleep in io_uring_enter (microseconds; 0 = only the eventfd). */
  waitMicroseconds: number;
  /** Carry NBD connections on the ring (RingTransport) rather than on a net.Socket. */
  socketsOnRing: boolean;
}

export interface ServeResult {
  slot: number;
  disks: number;
}

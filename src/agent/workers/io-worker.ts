/**
 * The I/O worker: one thread with its own ring (IoEngine) serving every attached disk through its own
 * VirtualDisk, all reading the disks' shared tables with this thread's reader slot.
 *
 * Owns: this thread's engine and VirtualDisks. Runs as ONE long piscina task (`serve`) that lives until the
 * main thread says stop; control messages arrive on the task's MessagePort. NBD connections handed over by the
 * listener are served on this thread too, so a request never changes thread between the socket and the ring; by
 * default the connection itself is carried by the ring (RingTransport: its receives and the disk I/O they cause
 * share one ring and one wait), else by a net.Socket on this thread's event loop.
 *
 * Invariants:
 *   T1. Only this thread touches its engine and its VirtualDisks.
 *   T2. stop closes every disk (held requests fail with VDM_IO_CLOSED) and then the engine, which waits for
 *       in-flight I/O before releasing buffers.
 * Errors leaving: whatever VirtualDisk reports, as ErrorRecords in io-done.
 */
import { Socket } from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import { type ConnectionOptions, serveConnection, serveTransport } from '../../nbd/connection.js';
import { type Export, type ExportRegistry, readFrom, writeTo } from '../../nbd/export.js';
import { toErrorRecord, VdmapError } from '../../errors/error.js';
import { viewsOf } from '../../table/layout.js';
import { IoEngine } from '../io-engine.js';
import { IoStats } from './io-stats.js';
import { VirtualDisk } from '../virtual-disk.js';
import { WriteLocks } from '../write-locks.js';
import type { FromWorker, ServeResult, ServeTask, ToWorker } from './messages.js';
import { RingTransport } from './ring-transport.js';

export default function serve(task: ServeTask): Promise<ServeResult> {
  const port = task.port;
  const engine = new IoEngine({
    ringEntries: task.ringEntries, poolBytes: task.poolBytes, pollMicroseconds: task.pollMicroseconds, waitMicroseconds: task.waitMicroseconds,
  });
  const disks = new Map<string, VirtualDisk>();
  const controlRequests = new Set<Promise<void>>();
  const connections = new Set<Promise<void>>();
  const shutdown = new AbortController();
  const stats = new IoStats(); // batched I/O counts for the agent's metrics (io-stats.ts)
  const registry: ExportRegistry = {
    list: (): Export[] => [...disks.values()],
    get: (name: string) => disks.get(name),
    defaultName: () => (disks.has('vd0') ? 'vd0' : disks.keys().next().value),
  };
  const post = (message: FromWorker) => port.postMessage(message);
  const postStats = () => { const batch = stats.take(); if (batch) post({ type: 'io-stats', stats: batch }); };
  const statsTimer = setInterval(postStats, 1000);

  return new Promise((resolve) => {
    const stop = async () => {
      shutdown.abort();
      await Promise.allSettled(connections); // C4 of connection.ts: in-flight NBD requests finish first
      for (const disk of disks.values()) disk.close();
      await Promise.allSettled(controlRequests); // their answers (VDM_IO_CLOSED for held ones) go out first
      engine.close();
      clearInterval(statsTimer);
      postStats();
      port.close();
      resolve({ slot: task.slot, disks: disks.size });
    };
    port.on('message', (message: ToWorker) => {
      try {
        if (message.type === 'stop') void stop();
        else if (message.type === 'attach') attach(message.share, message.holdTimeoutMs);
        else if (message.type === 'detach') detach(message.disk);
        else if (message.type === 'connection') serveClient(message.fd);
        else if (message.type === 'io') {
          const request = controlIo(message);
          controlRequests.add(request);
          void request.finally(() => controlRequests.delete(request));
        }
      } catch (error) {
        post({ type: 'error', error: toErrorRecord(error) });
      }
    });
    post({ type: 'ready', slot: task.slot, ring: engine.features });
  });

  function attach(share: ToWorkerAttach['share'], holdTimeoutMs: number | undefined): void {
    disks.get(share.name)?.close();
    disks.set(share.name, new VirtualDisk({
      ...share, table: viewsOf(share.table), readerSlot: task.slot, engine, locks: new WriteLocks(share.locks), holdTimeoutMs,
      faults: (fault) => post({ type: 'fault', fault }),
    }));
  }

  /** Serves one NBD client on this thread: its requests meet this thread's ring with no further hop. */
  function serveClient(fd: number): void {
    const options: ConnectionOptions = {
      signal: shutdown.signal, onError: (error) => post({ type: 'error', error }), meterFor: (disk) => stats.meterFor(disk),
    };
    const served = (task.socketsOnRing ? serveOnRing(fd, options) : serveOnSocket(fd, options))
      .finally(() => {
        connections.delete(served);
        post({ type: 'connection-closed' });
      });
    connections.add(served);
  }

  /** Half-open allowed (T5 of src/nbd/transport.ts): a client's FIN does not end the replies still owed to it. */
  function serveOnSocket(fd: number, options: ConnectionOptions): Promise<void> {
    return serveConnection(new Socket({ fd, readable: true, writable: true, allowHalfOpen: true }), registry, options);
  }

  async function serveOnRing(fd: number, options: ConnectionOptions): Promise<void> {
    let transport: RingTransport;
    try {
      transport = await RingTransport.open(fd, engine);
    } catch (error) {
      post({ type: 'error', error: toErrorRecord(error) });
      return;
    }
    await serveTransport(transport, registry, options);
  }

  function detach(name: string): void {
    disks.get(name)?.close();
    disks.delete(name);
  }

  async function controlIo(message: Extract<ToWorker, { type: 'io' }>): Promise<void> {
    try {
      const disk = disks.get(message.disk);
      if (!disk) throw new VdmapError('VDM_IO_CLOSED', `disk ${message.disk} is not attached to I/O worker ${task.slot}`);
      if (message.operation === 'read') {
        const result = await readFrom(disk, message.offset, message.length);
        const data = result.bytes.slice();
        result.release();
        post({ type: 'io-done', id: message.id, data });
      } else if (message.operation === 'write') {
        await writeTo(disk, message.offset, message.data ?? new Uint8Array(0), false);
        post({ type: 'io-done', id: message.id });
      } else {
        await disk.flush();
        post({ type: 'io-done', id: message.id });
      }
    } catch (error) {
      post({ type: 'io-done', id: message.id, error: toErrorRecord(error) });
    }
  }
}

type ToWorkerAttach = Extract<ToWorker, { type: 'attach' }>;

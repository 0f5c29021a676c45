/**
 * IoWorkerPool (src/agent/workers/): piscina-owned I/O threads, each with its own ring and reader slot, serving
 * the same shared tables. Oracles: bytes written through one worker read back through another; fault records
 * arriving on the main thread; a flip completing after a worker died mid-I/O; errors on close.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AgentDisk } from '../../src/agent/agent-disk.js';
import type { Fault } from '../../src/agent/faults.js';
import { IoWorkerPool } from '../../src/agent/workers/io-worker-pool.js';
import { emptyDocument, ExtentState, NoDevice } from '../../src/table/document.js';
import { VdmapError } from '../../src/errors/error.js';
import { cleanupDevices, sparseFile } from '../support/devices.js';
import { pattern } from './fixtures/disk.js';
import { until } from '../support/wait.js';

const extentSize = 1024 * 1024;
const extentCount = 16;

async function diskWithPool(threads = 2) {
  const disk = new AgentDisk({ name: 'vd0', size: extentSize * extentCount, extentCapacity: extentCount, readerSlots: threads + 1 });
  disk.attachDevice('d0', sparseFile(extentSize * extentCount));
  const doc = emptyDocument('vd0', 1, extentSize, extentCount);
  doc.devices = ['d0'];
  for (let i = 0; i < extentCount; i++) { doc.device[i] = 0; doc.physicalExtent[i] = i; doc.state[i] = 0; }
  await disk.applyDocument(doc);
  const faults: Fault[] = [];
  const pool = new IoWorkerPool({ threads, ringEntries: 64, poolBytes: 8 * 1024 * 1024, holdTimeoutMs: 5000, onFault: (fault) => faults.push(fault) });
  await pool.start();
  pool.attach(disk);
  return { disk, pool, faults };
}

async function setInvalid(disk: AgentDisk, extent: number, invalid: boolean): Promise<void> {
  const from = disk.epoch;
  await disk.applyDelta({
    disk: 'vd0', fromEpoch: from, toEpoch: from + 1, devices: ['d0'], extent: Uint32Array.of(extent),
    device: Int32Array.of(invalid ? NoDevice : 0), physicalExtent: Uint32Array.of(invalid ? 0 : extent), state: Uint8Array.of(invalid ? ExtentState.Invalid : 0),
  });
}

after(cleanupDevices);

describe('I/O worker pool', () => {
  it('serves one disk from every worker over the same shared table', async () => {
    const { disk, pool } = await diskWithPool();
    try {
      const data = pattern(4096, 3 * extentSize, 21);
      await pool.io(0, 'vd0', 'write', 4096, data);
      const back = await pool.io(1, 'vd0', 'read', 4096, data.length);
      assert.deepEqual(back, data);
    } finally {
      await pool.close();
      disk.close();
    }
  });

  it('forwards a worker fault to the main thread', async () => {
    const { disk, pool, faults } = await diskWithPool();
    try {
      await setInvalid(disk, 3, true);
      const held = pool.io(0, 'vd0', 'read', 3 * extentSize, 4096);
      await until(() => faults.length > 0, 'the fault of the held read');
      assert.equal(faults[0].extent, 3);
      assert.equal(faults[0].kind, 'invalid');
      await setInvalid(disk, 3, false);
      await held;
    } finally {
      await pool.close();
      disk.close();
    }
  });

  it('replaces a worker that died and keeps flips working (its reader slot is reset)', async () => {
    const { disk, pool } = await diskWithPool();
    try {
      const victim = pool.workerThreads()[0];
      const inflight = pool.io(0, 'vd0', 'read', 0, 4 * extentSize).catch(() => undefined);
      await victim.terminate();
      await inflight;
      await until(() => pool.restarts > 0, 'the pool to replace the terminated worker');
      await setInvalid(disk, 1, false);
      const data = pattern(0, 8192, 22);
      await pool.io(0, 'vd0', 'write', 0, data);
      assert.deepEqual(await pool.io(1, 'vd0', 'read', 0, 8192), data);
      assert.deepEqual(disk.header().inflight, [0, 0, 0]);
    } finally {
      await pool.close();
      disk.close();
    }
  });

  it('fails requests held at close with VDM_IO_CLOSED and stops every worker', async () => {
    const { disk, pool } = await diskWithPool();
    await setInvalid(disk, 2, true);
    const held = pool.io(1, 'vd0', 'read', 2 * extentSize, 4096);
    const outcome = assert.rejects(held, (e: unknown) => e instanceof VdmapError && e.code === 'VDM_IO_CLOSED');
    await new Promise((resolve) => setTimeout(resolve, 30));
    await pool.close();
    await outcome;
    disk.close();
  });
});

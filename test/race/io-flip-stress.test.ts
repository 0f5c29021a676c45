/**
 * Stress: I/O worker threads read a virtual disk through their own rings (8 requests in flight each) while the
 * main thread remaps every extent of the disk on each of thousands of flips. Proves V1/I2 end to end with real
 * O_DIRECT I/O: every request completes against the mapping of one epoch, the one it started in.
 *
 * Encoding: the device holds P = 2N physical extents; every 32-bit word of physical extent p is p. Epoch E maps
 * virtual extent i to physical (i + E) mod P. A read spanning extents i and i+1 therefore shows which epoch
 * served each half: they must agree (no mixed epochs), and lie between the epochs live before and after the
 * request. Half the reads lie inside one extent (VirtualDisk's single-piece fast path) and are held to the same
 * window. Seeded: the seed is printed.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, writeSync, closeSync } from 'node:fs';
import { AgentDisk } from '../../src/agent/agent-disk.js';
import { emptyDocument } from '../../src/table/document.js';
import { cleanupDevices, sparseFile } from '../support/devices.js';
import { keepRacing, startStressWorkers, stopStressWorkers, WorkCounter } from './fixtures/stress-workers.js';

const extentSize = 16 * 1024;
const extentCount = 256;
const physicalCount = 2 * extentCount;
const workers = 2;
const flips = Number(process.env.VDMAP_STRESS_FLIPS ?? 2000);
/** Flipping goes on past `flips` until the workers made this many reads (or a minute passed). */
const minimumReads = 4000;

function stampedDevice(): string {
  const path = sparseFile(physicalCount * extentSize);
  const fd = openSync(path, 'r+');
  for (let p = 0; p < physicalCount; p++) writeSync(fd, new Uint32Array(extentSize / 4).fill(p), 0, extentSize, p * extentSize);
  closeSync(fd);
  return path;
}

after(cleanupDevices);

describe('I/O under continuous table flips', () => {
  it(`V1/I2: at least ${flips} remapping flips under ${workers} reading workers never mix or misplace an epoch`, async () => {
    const seed = Number(process.env.VDMAP_SEED ?? Date.now() % 1_000_000);
    console.log(`io-flip-stress seed ${seed} (rerun with VDMAP_SEED=${seed})`);
    const disk = new AgentDisk({ name: 'vd0', size: extentSize * extentCount, extentCapacity: extentCount, readerSlots: workers + 1 });
    disk.attachDevice('d0', stampedDevice());
    const doc = emptyDocument('vd0', 0, extentSize, extentCount);
    doc.devices = ['d0'];
    for (let i = 0; i < extentCount; i++) { doc.device[i] = 0; doc.physicalExtent[i] = i; doc.state[i] = 0; }
    await disk.applyDocument(doc);
    const work = new WorkCounter();
    const threads = await startStressWorkers(new URL('./fixtures/io-reader.js', import.meta.url), workers,
      (i) => ({ share: disk.share(), slot: i + 1, seed: seed + i, extentSize, extentCount, physicalCount, work: work.shared }));
    const deadline = performance.now() + 60_000;
    let epoch = 0;
    const extents = Uint32Array.from({ length: extentCount }, (_, i) => i);
    try {
      while (++epoch <= flips || keepRacing(work, minimumReads, deadline)) {
        await disk.applyDelta({
          disk: 'vd0', fromEpoch: epoch - 1, toEpoch: epoch, devices: ['d0'], extent: extents,
          device: new Int32Array(extentCount), physicalExtent: extents.map((i) => (i + epoch) % physicalCount), state: new Uint8Array(extentCount),
        }, { drainTimeoutMs: 10_000 });
        if (epoch % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      const results = await stopStressWorkers<{ reads: number; violations: string[] }>(threads);
      disk.close();
      const reads = results.reduce((sum, r) => sum + r.reads, 0);
      console.log(`io-flip-stress: ${epoch - 1} flips, ${reads} reads by ${workers} workers`);
      assert.deepEqual(results.flatMap((r) => r.violations), []);
      assert.ok(reads >= minimumReads, `workers made only ${reads} reads in a minute of flips: the test did not exercise concurrency`);
    }
  });
});

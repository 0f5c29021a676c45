/**
 * Stress: I/O worker threads write whole blocks (the single-piece fast path) while the main thread migrates extents
 * underneath them the way a controller does: mark the extent NOWRITE (the flip drains writes in flight, new ones
 * are held), copy its physical extent to a free one, flip the mapping to the copy with the state cleared (held
 * writes resume against it). Proves V1/V2/I2 for writes end to end with real O_DIRECT I/O: a write that was
 * acknowledged is never lost, which it would be if a request left the table before its I/O completed (its data
 * would land in the old place after the copy).
 * Oracle: every block read back from the device at the place the final table maps it holds the last stamp its
 * writer saw acknowledged. Seeded: the seed is printed.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { AgentDisk } from '../../src/agent/agent-disk.js';
import { emptyDocument, ExtentState } from '../../src/table/document.js';
import { cleanupDevices, isRoot, loopDevice, sparseFile } from '../support/devices.js';
import { keepRacing, startStressWorkers, stopStressWorkers, WorkCounter } from './fixtures/stress-workers.js';

const extentSize = 16 * 1024;
const extentCount = 32;
const physicalCount = 2 * extentCount;
const blockSize = 4096;
const blockCount = (extentSize / blockSize) * extentCount;
const workers = 2;
const migrations = Number(process.env.VDMAP_STRESS_MIGRATIONS ?? 4000);
/** Migrating goes on past `migrations` until the workers made this many writes (or a minute passed). */
const minimumWrites = 4000;

after(cleanupDevices);

describe('writes under continuous migration', () => {
  it(`V2/I2: at least ${migrations} NOWRITE-copy-flip migrations under ${workers} writing workers lose no acknowledged write`, async () => {
    const seed = Number(process.env.VDMAP_SEED ?? Date.now() % 1_000_000);
    console.log(`write-migration-stress seed ${seed} (rerun with VDMAP_SEED=${seed})`);
    let random = seed >>> 0;
    const next = (n: number) => (random = (Math.imul(random, 1664525) + 1013904223) >>> 0) % n;
    // As root the workers write through a loop device (its kernel worker queues the writes: a wide window for one
    // still in flight) while the copy and the final check use the loop device's backing file directly, so they do
    // not queue behind the writes: a write left in flight by a flip is seen landing after the copy.
    const path = isRoot() ? loopDevice(physicalCount * extentSize) : sparseFile(physicalCount * extentSize);
    const backing = isRoot() ? execFileSync('losetup', ['-n', '-O', 'BACK-FILE', path], { encoding: 'utf8' }).trim() : path;
    const disk = new AgentDisk({ name: 'vd0', size: extentSize * extentCount, extentCapacity: extentCount, readerSlots: workers + 1 });
    disk.attachDevice('d0', path);
    const physical = Array.from({ length: extentCount }, (_, i) => i);
    const free = Array.from({ length: physicalCount - extentCount }, (_, i) => extentCount + i);
    const doc = emptyDocument('vd0', 0, extentSize, extentCount);
    doc.devices = ['d0'];
    for (let i = 0; i < extentCount; i++) { doc.device[i] = 0; doc.physicalExtent[i] = i; doc.state[i] = ExtentState.Valid; }
    await disk.applyDocument(doc);
    let epoch = 0;
    const setExtent = (extent: number, physicalExtent: number, state: number) => disk.applyDelta({
      disk: 'vd0', fromEpoch: epoch, toEpoch: ++epoch, devices: ['d0'], extent: Uint32Array.of(extent),
      device: Int32Array.of(0), physicalExtent: Uint32Array.of(physicalExtent), state: Uint8Array.of(state),
    }, { drainTimeoutMs: 10_000 });
    const work = new WorkCounter();
    const threads = await startStressWorkers(new URL('./fixtures/io-writer.js', import.meta.url), workers,
      (i) => ({ share: disk.share(), slot: i + 1, seed: seed + i, index: i, workers, blockCount, work: work.shared }));
    const deadline = performance.now() + 60_000;
    let migrated = 0;
    const device = openSync(backing, 'r+');
    const copy = Buffer.alloc(extentSize);
    let results: Array<{ writes: number; failures: string[]; acknowledged: Array<[number, number]> }> = [];
    try {
      for (; migrated < migrations || keepRacing(work, minimumWrites, deadline); migrated++) {
        const extent = next(extentCount);
        const from = physical[extent];
        const to = free.splice(next(free.length), 1)[0];
        await setExtent(extent, from, ExtentState.NoWrite);
        readSync(device, copy, 0, extentSize, from * extentSize);
        writeSync(device, copy, 0, extentSize, to * extentSize);
        await setExtent(extent, to, ExtentState.Valid);
        physical[extent] = to;
        free.push(from);
        if (migrated % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    } finally {
      results = await stopStressWorkers<typeof results[number]>(threads);
      disk.close();
    }
    const lost: string[] = [];
    const block = Buffer.alloc(blockSize);
    for (const [index, stamp] of results.flatMap((result) => result.acknowledged)) {
      const extent = Math.floor((index * blockSize) / extentSize);
      const within = (index * blockSize) % extentSize;
      readSync(device, block, 0, blockSize, physical[extent] * extentSize + within);
      const held = block.readUInt32LE(0);
      if (held !== stamp && lost.length < 20) lost.push(`block ${index} (extent ${extent}) holds stamp ${held}, acknowledged ${stamp}`);
    }
    closeSync(device);
    const writes = results.reduce((sum, result) => sum + result.writes, 0);
    console.log(`write-migration-stress: ${migrated} migrations, ${writes} writes by ${workers} workers`);
    assert.deepEqual(results.flatMap((result) => result.failures), []);
    assert.deepEqual(lost, []);
    assert.ok(writes >= minimumWrites, `workers made only ${writes} writes in a minute of migrations: the test did not exercise concurrency`);
  });
});

/**
 * Proves the addon is context-aware (A1 of native-bindings/src/addon.c, R1 of ring.h): several threads each own
 * a ring at the same time and move their own bytes, and a worker terminated with its ring busy neither crashes the
 * process nor leaks the ring's fds (the env-teardown hook closes it).
 * Oracles: each worker's read-back compared with its own patterns; the main thread's own ring still working
 * afterwards; the count of entries in /proc/self/fd before and after the worker's life.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Opcode, Ring, closeDevice, setDescriptor } from '../../src/native/index.js';
import { BLOCK } from './fixtures/patterns.js';
import { type Scratch, collectCompletions, ext4Directory, makeFifo, openFileDescriptorCount } from './fixtures/system.js';

const workerUrl = new URL('./fixtures/ring-worker.js', import.meta.url);

interface RoundTripReport {
  ok: boolean;
  mismatches: number;
  threadId: number;
  features: { singleIssuer: boolean; fixedBuffers: boolean };
}

async function mainThreadNops(count: number): Promise<Map<number, number>> {
  const ring = new Ring({ entries: 16 });
  try {
    for (let slot = 0; slot < count; slot++) setDescriptor(ring.submissions, slot, Opcode.NOP, 0, 0, 0, 0, 0, 100 + slot, 0);
    ring.submit(count);
    return await collectCompletions(ring, count);
  } finally {
    ring.close();
  }
}

describe('Ring in worker threads', () => {
  let scratch: Scratch;
  before(() => {
    scratch = ext4Directory('ring-workers');
  });
  after(() => scratch.release());

  it('round-trips in two workers at once, each with its own ring, while the main thread uses a third', async () => {
    const blocks = 256;
    const workers = [0, 1].map((number) => {
      const path = join(scratch.directory, `worker-${number}.img`);
      writeFileSync(path, Buffer.alloc(blocks * BLOCK));
      return new Worker(workerUrl, { workerData: { mode: 'round-trip', path, blocks, seed: 10000 * (number + 1) } });
    });
    const reports = workers.map(async (worker) => {
      /* Both listeners go on before either event: a worker that posts and exits at once has its message drained
       * and 'exit' emitted in one synchronous call, so a listener added after awaiting the message would miss it. */
      const exited = once(worker, 'exit');
      const [report] = (await once(worker, 'message')) as [RoundTripReport];
      const [exitCode] = (await exited) as [number];
      return { report, exitCode };
    });
    const mainResults = await mainThreadNops(16);
    const outcomes = await Promise.all(reports);
    for (const { report, exitCode } of outcomes) {
      assert.equal(report.ok, true, `worker ${report.threadId}: ${report.mismatches} mismatches`);
      assert.equal(report.features.singleIssuer, true);
      assert.equal(exitCode, 0);
    }
    assert.notEqual(outcomes[0].report.threadId, outcomes[1].report.threadId);
    assert.equal(mainResults.size, 16);
  });

  it('survives, and releases the ring fds, when a worker is terminated with its ring open and I/O pending', async () => {
    const path = join(scratch.directory, 'held.img');
    writeFileSync(path, Buffer.alloc(64 * BLOCK));
    const fifoPath = makeFifo(scratch.directory, 'held-fifo');
    const baseline = openFileDescriptorCount();
    const worker = new Worker(workerUrl, { workerData: { mode: 'hold-open', path, blocks: 64, seed: 1, fifoPath } });
    const exited = once(worker, 'exit');
    const [message] = (await once(worker, 'message')) as [{ ready: boolean; deviceFd: number }];
    assert.equal(message.ready, true);
    await worker.terminate();
    await exited;
    closeDevice(message.deviceFd); /* openDevice fds belong to the process, not to the worker that opened them */
    let count = openFileDescriptorCount();
    for (let attempt = 0; attempt < 50 && count !== baseline; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      count = openFileDescriptorCount();
    }
    assert.equal(count, baseline, 'the worker ring fd and eventfd were closed by the env-teardown hook');
    const results = await mainThreadNops(4);
    assert.deepEqual([...results.values()], [0, 0, 0, 0], 'the main thread ring still works');
  });
});

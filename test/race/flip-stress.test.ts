/**
 * Stress: reader threads look entries up lock-free and hold requests "in flight" while the writer flips the
 * table thousands of times with random deltas. Proves I1 (no reader sees a copy being written: no torn entry,
 * no entry from a later epoch, sentinel and device fds always match the copy's epoch) and I2 (no flip lands
 * while a request of the old epoch is in flight), and that delta levelling keeps the table equal to a model.
 *
 * Encoding of epoch E: extent 0 (the sentinel) holds physical extent E; device fd slot 0 holds 1000 + E % 50;
 * each flip rewrites a few random extents x with physical extent E and device slot (x + E) % 64, so a torn
 * pair or a value from a staged-but-unpublished epoch (E + 1) is detectable. Seeded: the seed is printed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TableWriter } from '../../src/table/epoch-flip.js';
import { createTableBuffer, entryPhysicalExtent, entryWord } from '../../src/table/layout.js';
import { keepRacing, startStressWorkers, stopStressWorkers, WorkCounter } from './fixtures/stress-workers.js';

const extentCount = 4096;
const readers = 3;
const flips = Number(process.env.VDMAP_STRESS_FLIPS ?? 3000);
/** Flipping goes on past `flips` until the readers made this many entry checks (or a minute passed). */
const minimumChecks = 20_000;

describe('epoch flip under concurrent readers', () => {
  it(`I1/I2: at least ${flips} flips with ${readers} reader threads see no torn, future or changed-in-flight entry`, async () => {
    const seed = Number(process.env.VDMAP_SEED ?? Date.now() % 1_000_000);
    console.log(`flip-stress seed ${seed} (rerun with VDMAP_SEED=${seed})`);
    const views = createTableBuffer(extentCount, readers + 1);
    const writer = new TableWriter(views);
    const model = new Uint32Array(extentCount);
    const geometry = (epoch: number) => ({ epoch, extentSizeLog2: 20, extentCount, deviceFds: [1000 + (epoch % 50)] });
    await writer.commit(writer.stageFull(geometry(0), (stage) => {
      for (let x = 0; x < extentCount; x++) stage.set(x, x % 64, 0, 0);
    }));
    const work = new WorkCounter();
    const workers = await startStressWorkers(new URL('./fixtures/flip-reader.js', import.meta.url), readers,
      (i) => ({ buffer: views.buffer, slot: i + 1, seed: seed + i, extentCount, work: work.shared }));
    const deadline = performance.now() + 60_000;
    let epoch = 0;
    let random = seed >>> 0;
    const next = (n: number) => (random = (Math.imul(random, 1664525) + 1013904223) >>> 0) % n;
    try {
      while (++epoch <= flips || keepRacing(work, minimumChecks, deadline)) {
        const stage = writer.stage(geometry(epoch));
        stage.set(0, 0, epoch, 0);
        model[0] = epoch;
        for (let k = next(16); k >= 0; k--) {
          const x = 1 + next(extentCount - 1);
          stage.set(x, (x + epoch) % 64, epoch, 0);
          model[x] = epoch;
        }
        await writer.commit(stage, { drainTimeoutMs: 10_000 });
        if (next(8) === 0) await new Promise((resolve) => setImmediate(resolve)); // let readers catch the new epoch
        if (epoch % 500 === 0) {
          for (let x = 0; x < extentCount; x++) assert.equal(entryPhysicalExtent(views, entryWord(views, writer.activeCopy, x)), model[x], `extent ${x} after epoch ${epoch}`);
        }
      }
    } finally {
      const results = await stopStressWorkers<{ checks: number; violations: string[] }>(workers);
      const violations = results.flatMap((r) => r.violations);
      const checks = results.reduce((sum, r) => sum + r.checks, 0);
      console.log(`flip-stress: ${epoch - 1} flips, ${checks} entry checks by ${readers} readers`);
      assert.deepEqual(violations, []);
      assert.ok(checks >= minimumChecks, `readers made only ${checks} checks in a minute of flips: the test did not exercise concurrency`);
    }
  });
});

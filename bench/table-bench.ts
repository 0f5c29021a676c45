/**
 * npm run bench:table: micro-benchmarks (benchmark.js) of the shared table.
 *   lookup      one request's R1..R5 (enter, read an entry, exit) on 1K- and 1M-entry tables, alone (the
 *               thread's slot goes 0 -> 1 -> 0) and with other requests of the thread in flight (queue depth > 1)
 *   stage+flip  a delta of 1, 64 and 4096 entries applied and committed (W1..W5, no readers in flight)
 * Flip cost should not depend on the table's size (invariant I4): compare the 1K and 1M rows.
 */
import Benchmark from 'benchmark';
import { TableReader, TableWriter } from '../src/table/epoch-flip.js';
import { createTableBuffer, entryPhysicalExtent, entryWord } from '../src/table/layout.js';

const suite = new Benchmark.Suite('table');
const tables = [1024, 1024 * 1024].map((entries) => {
  const views = createTableBuffer(entries, 4);
  const writer = new TableWriter(views);
  const reader = new TableReader(views, 1);
  return { entries, views, writer, reader };
});
let sink = 0;

for (const { entries, views, reader } of tables) {
  let extent = 0;
  suite.add(`lookup (enter, entry, exit), ${entries} entries`, () => {
    const copy = reader.enter() as 0 | 1;
    sink ^= entryPhysicalExtent(views, entryWord(views, copy, extent));
    reader.exit();
    extent = (extent + 7919) % entries;
  });
  suite.add(`lookup with other requests in flight, ${entries} entries`, {
    onStart: () => { reader.enter(); },
    onComplete: () => { reader.exit(); },
    fn: () => {
      const copy = reader.enter() as 0 | 1;
      sink ^= entryPhysicalExtent(views, entryWord(views, copy, extent));
      reader.exit();
      extent = (extent + 7919) % entries;
    },
  });
}

for (const { entries, writer } of tables) {
  for (const delta of [1, 64, 4096]) {
    let epoch = 0;
    let first = 0;
    suite.add(`stage + flip, delta of ${delta}, ${entries} entries`, {
      defer: true,
      fn: (deferred: { resolve(): void }) => {
        epoch++;
        const stage = writer.stage({ epoch, extentSizeLog2: 20, extentCount: entries, deviceFds: [3] });
        for (let k = 0; k < delta; k++) stage.set((first + k * 31) % entries, 0, epoch, 0);
        first = (first + 1) % entries;
        writer.commit(stage).then(() => deferred.resolve(), (error) => { throw error; });
      },
    });
  }
}

suite
  .on('cycle', (event: { target: Benchmark }) => {
    const target = event.target;
    const nanoseconds = (target.stats.mean * 1e9).toFixed(target.stats.mean < 1e-6 ? 1 : 0);
    console.log(`${String(target.name).padEnd(48)} ${nanoseconds.padStart(10)} ns/op  ±${target.stats.rme.toFixed(1)}%  (${target.stats.sample.length} samples)`);
  })
  .on('complete', () => { if (sink === 0.5) console.log(sink); })
  .run({ async: true });

/**
 * Proves src/table/codec.ts: runs are maximal and expand back exactly (J1), so a thin or contiguous 1M-entry
 * table prints as a few lines of JSON; the JSON form round-trips and malformed JSON is refused with every bad
 * entry named (J2); apply(a, diff(a, b)) = b on seeded random tables (J3; the seed is printed); applying
 * replaces the device list (J4) and never modifies its inputs (J5). Sizes and times of the 1M-entry cases are
 * printed, not asserted. Oracle: documents built by hand or from the seed, compared column for column.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyDeltaToDocument, diffDocuments, documentFromRuns, formatTableJson, parseTableJson, tableFromJson, tableRuns,
  tableToJson,
} from '../../src/table/codec.js';
import { emptyDocument, ExtentState, NoDevice, type TableDocument } from '../../src/table/document.js';
import { VdmapError } from '../../src/errors/error.js';
import { seededRandom, type SeededRandom } from '../wire/fixtures/seeded-random.js';

const MILLION = 1 << 20;

function thinTable(): TableDocument {
  const doc = emptyDocument('thin', 3, 1 << 20, MILLION);
  doc.state.fill(ExtentState.Zero);
  return doc;
}

function contiguousTable(): TableDocument {
  const doc = emptyDocument('flat', 3, 1 << 20, MILLION);
  doc.devices = ['a'];
  doc.device.fill(0);
  doc.state.fill(0);
  for (let extent = 0; extent < MILLION; extent++) doc.physicalExtent[extent] = 5000 + extent;
  return doc;
}

function randomTable(random: SeededRandom, extentCount: number, epoch = 1): TableDocument {
  const doc = emptyDocument('vol', epoch, 4096, extentCount);
  doc.devices = ['a', 'b', 'c'];
  for (let extent = 0; extent < extentCount; extent++) {
    const slot = random.below(4) - 1;
    doc.device[extent] = slot;
    doc.physicalExtent[extent] = slot === NoDevice ? 0 : random.below(2 ** 32);
    doc.state[extent] = slot === NoDevice ? [ExtentState.Zero, ExtentState.Invalid][random.below(2)] : random.below(2) * ExtentState.NoWrite;
  }
  return doc;
}

function timed<T>(work: () => T): [T, number] {
  const start = process.hrtime.bigint();
  const result = work();
  return [result, Number(process.hrtime.bigint() - start) / 1e6];
}

describe('table runs', () => {
  it('J1: a thin 1M-entry table is one run', () => {
    assert.equal(tableRuns(thinTable()).count.length, 1);
  });

  it('J1: a contiguous 1M-entry mapping is one run', () => {
    const runs = tableRuns(contiguousTable());
    assert.deepEqual([...runs.count], [MILLION]);
    assert.deepEqual([...runs.physicalExtent], [5000]);
  });

  it('J1: breaks a run where the device, the state or the physical sequence changes', () => {
    const doc = emptyDocument('v', 1, 4096, 6);
    doc.devices = ['a', 'b'];
    doc.device.set([0, 0, 0, 1, 1, NoDevice]);
    doc.physicalExtent.set([7, 8, 10, 11, 12, 0]);
    doc.state.set([0, 0, 0, 0, ExtentState.NoWrite, ExtentState.Zero]);
    assert.deepEqual([...tableRuns(doc).count], [2, 1, 1, 1, 1]);
  });

  it('J1: expands runs back into the same columns', () => {
    const random = seededRandom('runs round trip');
    const doc = randomTable(random, 5000);
    for (let extent = 100; extent < 900; extent++) [doc.device[extent], doc.physicalExtent[extent], doc.state[extent]] = [1, extent, 0];
    assert.deepEqual(documentFromRuns(doc, tableRuns(doc)), doc);
  });
});

describe('table JSON', () => {
  it('J2: round-trips a 1M-entry thin table as a few hundred bytes (size and time printed)', () => {
    const doc = thinTable();
    const [text, formatMs] = timed(() => formatTableJson(doc));
    const [parsed, parseMs] = timed(() => parseTableJson(text));
    console.log(`thin 1M table: ${text.length} bytes of JSON, format ${formatMs.toFixed(1)} ms, parse ${parseMs.toFixed(1)} ms`);
    assert.ok(text.length < 500);
    assert.deepEqual(parsed, doc);
  });

  it('J2: round-trips a 1M-entry table of 4096 runs (size and time printed)', () => {
    const doc = contiguousTable();
    doc.devices = ['a', 'b'];
    for (let extent = 0; extent < MILLION; extent += 256) {
      doc.device[extent] = 1;
      doc.state[extent] = ExtentState.NoWrite;
    }
    const [text, formatMs] = timed(() => formatTableJson(doc));
    const [parsed, parseMs] = timed(() => parseTableJson(text));
    console.log(`1M table in ${tableRuns(doc).count.length} runs: ${text.length} bytes of JSON, format ${formatMs.toFixed(1)} ms, parse ${parseMs.toFixed(1)} ms`);
    assert.deepEqual(parsed, doc);
  });

  it('J2: round-trips a random table entry for entry', () => {
    const doc = randomTable(seededRandom('json random table'), 3000);
    assert.deepEqual(tableFromJson(JSON.parse(JSON.stringify(tableToJson(doc)))), doc);
  });

  it('prints one run per line, naming devices and states', () => {
    const doc = emptyDocument('v', 2, 4096, 4);
    doc.devices = ['a'];
    doc.device.set([0, 0, NoDevice, NoDevice]);
    doc.physicalExtent.set([9, 10, 0, 0]);
    doc.state.set([0, 0, ExtentState.Zero, ExtentState.Zero]);
    const lines = formatTableJson(doc).split('\n');
    assert.ok(lines.includes('    {"extent":0,"count":2,"device":"a","physical":9},'));
    assert.ok(lines.includes('    {"extent":2,"count":2,"state":["ZERO"]}'));
  });

  function refusal(work: () => unknown): VdmapError {
    try {
      work();
    } catch (error) {
      assert.ok(error instanceof VdmapError, `expected a VdmapError, got ${String(error)}`);
      assert.equal(error.code, 'VDM_TABLE_INVALID');
      return error;
    }
    return assert.fail('expected the table to be refused');
  }

  function messages(error: VdmapError): string[] {
    return (error.details?.problems as { message: string }[]).map((problem) => problem.message);
  }

  const header = { disk: 'v', epoch: 1, extentSize: 4096, extentCount: 4, devices: ['a'] };

  it('J2: refuses text that is not JSON', () => {
    assert.equal(refusal(() => parseTableJson('{"disk": ')).details?.reason, 'json');
  });

  it('J2: refuses a document that is not an object', () => {
    refusal(() => tableFromJson([1, 2]));
  });

  it('J2: names every bad header field and unknown field', () => {
    const error = refusal(() => tableFromJson({ disk: '', epoch: -1, extentSize: 'big', extentCount: 4, devices: 'a', entries: [], colour: 'red' }));
    assert.equal(error.details?.problemCount, 5);
  });

  it('J2: names every bad entry in one refusal', () => {
    const error = refusal(() => tableFromJson({
      ...header,
      entries: [
        { extent: 0, device: 'zz', physical: 1 },
        { extent: 1, state: ['ZERO', 'SHINY'] },
        { extent: 2, count: 0 },
        'not an entry',
        { extent: 3, device: 'a', physical: 2 ** 32 },
        { extent: 3, count: 5, colour: 'red' },
      ],
    }));
    const text = messages(error).join('\n');
    assert.match(text, /entries\[0\]: device "zz" is not in the devices list/);
    assert.match(text, /entries\[1\]: state .* is not a list of INVALID, NOWRITE, ZERO/);
    assert.match(text, /entries\[2\]: count is not a positive integer/);
    assert.match(text, /entries\[3\]: is not an object/);
    assert.match(text, /entries\[4\]: physical is not an integer/);
    assert.match(text, /entries\[5\]: unknown field 'colour'/);
  });

  it('J2: refuses entries that leave a gap', () => {
    const error = refusal(() => tableFromJson({ ...header, entries: [{ extent: 0, count: 2, state: ['ZERO'] }, { extent: 3, state: ['ZERO'] }] }));
    assert.match(messages(error).join('\n'), /starts at extent 3, expected 2/);
  });

  it('J2: refuses entries that do not reach the end of the table', () => {
    const error = refusal(() => tableFromJson({ ...header, entries: [{ extent: 0, count: 3, state: ['ZERO'] }] }));
    assert.match(messages(error).join('\n'), /entries cover 3 extents, the table has 4/);
  });

  it('J2: refuses an entry that reaches past the table', () => {
    const error = refusal(() => tableFromJson({ ...header, entries: [{ extent: 0, count: 9, state: ['ZERO'] }] }));
    assert.match(messages(error).join('\n'), /reaches extent 9, past the table's 4 extents/);
  });

  it('J2: names an entry with a device missing from the devices list once, and not the entries after it', () => {
    for (const device of [1, 'ghost']) {
      const error = refusal(() => tableFromJson({
        ...header, extentCount: 1024, entries: [
          { extent: 0, count: 768, device: 'a', physical: 0 },
          { extent: 768, count: 128, device, physical: 768 },
          { extent: 896, count: 128, device: 'a', physical: 896 },
        ],
      }));
      assert.deepEqual(messages(error), [`entries[1]: device ${JSON.stringify(device)} is not in the devices list`]);
      assert.equal(error.details?.problemCount, 1);
    }
  });

  it('J2: names an entry with a bad state, physical or unknown field once, and not the entries after it', () => {
    const error = refusal(() => tableFromJson({
      ...header, entries: [{ extent: 0, state: ['SHINY'] }, { extent: 1, device: 'a', physical: -1 }, { extent: 2, count: 2, state: ['ZERO'], colour: 1 }],
    }));
    assert.equal(error.details?.problemCount, 3);
    assert.doesNotMatch(messages(error).join('\n'), /starts at extent|entries cover/);
  });

  it('J2: after an entry whose place is unknown, takes the next entry\'s extent as given', () => {
    const error = refusal(() => tableFromJson({
      ...header, entries: [{ extent: 0, state: ['ZERO'] }, 'junk', { extent: 2, count: 2, state: ['ZERO'] }],
    }));
    assert.deepEqual(messages(error), ['entries[1]: is not an object but "junk"']);
  });

  it('J2: refuses an extent count too large to allocate before allocating it', () => {
    refusal(() => tableFromJson({ ...header, extentCount: 2 ** 40, entries: [] }));
  });
});

describe('diff and apply', () => {
  it('J3: applying the diff of two random tables turns the first into the second', () => {
    const random = seededRandom('diff/apply');
    for (let round = 0; round < 20; round++) {
      const a = randomTable(random, 2000, 10);
      const b = structuredClone(a);
      b.epoch = 11;
      for (let change = random.below(300); change > 0; change--) {
        const extent = random.below(2000);
        b.device[extent] = random.below(3);
        b.physicalExtent[extent] = random.below(1000);
        b.state[extent] = 0;
      }
      const delta = diffDocuments(a, b);
      assert.deepEqual(applyDeltaToDocument(a, delta), b);
    }
  });

  it('finds no change between equal tables', () => {
    const doc = randomTable(seededRandom('diff equal'), 500);
    assert.equal(diffDocuments(doc, structuredClone(doc)).extent.length, 0);
  });

  it('refuses to diff tables of different disks or sizes', () => {
    const a = emptyDocument('a', 1, 4096, 10);
    assert.throws(() => diffDocuments(a, emptyDocument('b', 2, 4096, 10)), { code: 'VDM_TABLE_INVALID' });
    assert.throws(() => diffDocuments(a, emptyDocument('a', 2, 4096, 11)), { code: 'VDM_TABLE_INVALID' });
  });

  it('refuses a delta built on another epoch with VDM_TABLE_EPOCH_STALE', () => {
    const doc = emptyDocument('a', 5, 4096, 10);
    const delta = diffDocuments({ ...doc, epoch: 4 }, { ...doc, epoch: 5 });
    assert.throws(() => applyDeltaToDocument(doc, delta), { code: 'VDM_TABLE_EPOCH_STALE' });
  });

  it('refuses a delta whose extents are out of order or past the table', () => {
    const doc = emptyDocument('a', 5, 4096, 10);
    const delta = {
      disk: 'a', fromEpoch: 5, toEpoch: 6, devices: [], extent: Uint32Array.of(4, 2),
      device: Int32Array.of(-1, -1), physicalExtent: Uint32Array.of(0, 0), state: Uint8Array.of(4, 4),
    };
    assert.throws(() => applyDeltaToDocument(doc, delta), { code: 'VDM_TABLE_INVALID' });
    assert.throws(() => applyDeltaToDocument(doc, { ...delta, extent: Uint32Array.of(4, 10) }), { code: 'VDM_TABLE_INVALID' });
  });

  it('J4: replaces the device list; untouched extents keep their slot numbers', () => {
    const doc = emptyDocument('a', 1, 4096, 2);
    doc.devices = ['x', 'y'];
    doc.device.set([1, 0]);
    doc.state.fill(0);
    const delta = {
      disk: 'a', fromEpoch: 1, toEpoch: 2, devices: ['y', 'x'], extent: Uint32Array.of(0),
      device: Int32Array.of(0), physicalExtent: Uint32Array.of(0), state: Uint8Array.of(0),
    };
    const result = applyDeltaToDocument(doc, delta);
    assert.deepEqual(result.devices, ['y', 'x']);
    assert.deepEqual([...result.device], [0, 0]);
    assert.equal(result.epoch, 2);
  });

  it('J5: leaves both inputs untouched', () => {
    const random = seededRandom('apply untouched');
    const a = randomTable(random, 300, 1);
    const b = { ...randomTable(random, 300, 2), disk: a.disk };
    const [aCopy, bCopy] = [structuredClone(a), structuredClone(b)];
    const delta = diffDocuments(a, b);
    const deltaCopy = structuredClone(delta);
    applyDeltaToDocument(a, delta);
    assert.deepEqual(a, aCopy);
    assert.deepEqual(b, bCopy);
    assert.deepEqual(delta, deltaCopy);
  });
});

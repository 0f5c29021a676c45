/**
 * Proves src/table/validate.ts: each rule V1-V7 refuses exactly the entries that break it with its code; one
 * pass names every bad entry of a table with many planted faults (I1; seeded, the seed is printed); the input
 * is left untouched (I3); the refusal error caps its listing but counts everything. Also measures validation
 * of a 1M-entry table (printed, never asserted: I2). Oracle: hand-built tables whose bad entries are known.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExtentState, NoDevice, type TableDelta, type TableDocument } from '../../src/table/document.js';
import {
  type DeviceGeometry, type TableProblem, tableProblemsError, validateDelta, validateDocument,
} from '../../src/table/validate.js';
import { seededRandom } from '../wire/fixtures/seeded-random.js';

const MiB = 1 << 20;
const devices = new Map<string, DeviceGeometry>([
  ['a', { size: 64 * MiB, logicalBlockSize: 512 }],
  ['b', { size: 64 * MiB, logicalBlockSize: 4096 }],
]);

/** 16 extents of 1 MiB: 0-7 on 'a' at 0-7, 8-11 on 'b' at 0-3, 12-13 ZERO, 14-15 INVALID. */
function goodTable(): TableDocument {
  const doc: TableDocument = {
    disk: 'vol1', epoch: 4, extentSize: MiB, extentCount: 16, devices: ['a', 'b'],
    device: new Int32Array(16), physicalExtent: new Uint32Array(16), state: new Uint8Array(16),
  };
  for (let extent = 0; extent < 16; extent++) {
    if (extent < 8) [doc.device[extent], doc.physicalExtent[extent]] = [0, extent];
    else if (extent < 12) [doc.device[extent], doc.physicalExtent[extent]] = [1, extent - 8];
    else {
      doc.device[extent] = NoDevice;
      doc.state[extent] = extent < 14 ? ExtentState.Zero : ExtentState.Invalid;
    }
  }
  return doc;
}

function summary(problems: TableProblem[]): [number | null, string][] {
  return problems.map((problem) => [problem.extent, problem.code]);
}

describe('validateDocument', () => {
  it('accepts a valid table', () => {
    assert.deepEqual(validateDocument(goodTable(), devices), []);
  });

  it('accepts a table whose disk size matches its extents', () => {
    assert.deepEqual(validateDocument(goodTable(), devices, { diskSize: 16 * MiB - 512 }), []);
  });

  it('V1: refuses an extent size that is not a power of two', () => {
    const problems = validateDocument({ ...goodTable(), extentSize: 3 * MiB }, devices);
    assert.ok(summary(problems).some(([extent, code]) => extent === null && code === 'VDM_TABLE_MISALIGNED'));
  });

  it('V1: refuses an extent size below 4096', () => {
    const doc = { ...goodTable(), extentSize: 2048 };
    assert.deepEqual(summary(validateDocument(doc, devices)).filter(([extent]) => extent === null), [[null, 'VDM_TABLE_MISALIGNED']]);
  });

  it('V1: refuses every entry on a device whose block size does not divide the extent size', () => {
    const large = new Map(devices).set('b', { size: 64 * MiB, logicalBlockSize: 2 * MiB });
    assert.deepEqual(summary(validateDocument(goodTable(), large)),
      [[8, 'VDM_TABLE_MISALIGNED'], [9, 'VDM_TABLE_MISALIGNED'], [10, 'VDM_TABLE_MISALIGNED'], [11, 'VDM_TABLE_MISALIGNED']]);
  });

  it('V2: refuses a column with the wrong number of items', () => {
    const doc = { ...goodTable(), state: new Uint8Array(15) };
    const problems = validateDocument(doc, devices);
    assert.ok(problems.some((problem) => problem.extent === null && problem.code === 'VDM_TABLE_INVALID' && /state has 15/.test(problem.message)));
  });

  it('V2: refuses a column of the wrong typed array class', () => {
    const doc = { ...goodTable(), physicalExtent: new Int32Array(16) as unknown as Uint32Array };
    assert.ok(validateDocument(doc, devices).some((problem) => /physicalExtent is not a Uint32Array/.test(problem.message)));
  });

  it('V2: refuses extents that do not cover the disk size', () => {
    const problems = validateDocument(goodTable(), devices, { diskSize: 20 * MiB });
    assert.deepEqual(summary(problems), [[null, 'VDM_TABLE_INVALID']]);
  });

  it('V3: refuses an entry whose device slot is not in the list', () => {
    const doc = goodTable();
    doc.device[3] = 2;
    assert.deepEqual(summary(validateDocument(doc, devices)), [[3, 'VDM_TABLE_UNKNOWN_DEVICE']]);
  });

  it('V3: refuses an unregistered device and every entry on it', () => {
    const only = new Map([['a', devices.get('a') as DeviceGeometry]]);
    assert.deepEqual(summary(validateDocument(goodTable(), only)), [
      [null, 'VDM_TABLE_UNKNOWN_DEVICE'], [8, 'VDM_TABLE_UNKNOWN_DEVICE'], [9, 'VDM_TABLE_UNKNOWN_DEVICE'],
      [10, 'VDM_TABLE_UNKNOWN_DEVICE'], [11, 'VDM_TABLE_UNKNOWN_DEVICE'],
    ]);
  });

  it('V3: refuses a device listed twice', () => {
    const doc = { ...goodTable(), devices: ['a', 'b', 'a'] };
    assert.deepEqual(summary(validateDocument(doc, devices)), [[null, 'VDM_TABLE_INVALID']]);
  });

  it('V4: refuses an entry with no device that is VALID', () => {
    const doc = goodTable();
    doc.state[12] = 0;
    assert.deepEqual(summary(validateDocument(doc, devices)), [[12, 'VDM_TABLE_INVALID']]);
  });

  it('V4: refuses an entry with no device that is only NOWRITE', () => {
    const doc = goodTable();
    doc.state[14] = ExtentState.NoWrite;
    assert.deepEqual(summary(validateDocument(doc, devices)), [[14, 'VDM_TABLE_INVALID']]);
  });

  it('V4: refuses unknown state bits', () => {
    const doc = goodTable();
    doc.state[5] = 0x40;
    assert.deepEqual(summary(validateDocument(doc, devices)), [[5, 'VDM_TABLE_INVALID']]);
  });

  it('V5: refuses an entry past the end of its device and accepts the last whole extent', () => {
    const doc = goodTable();
    doc.physicalExtent[2] = 63;
    doc.physicalExtent[3] = 64;
    assert.deepEqual(summary(validateDocument(doc, devices)), [[3, 'VDM_TABLE_OUT_OF_BOUNDS']]);
  });

  it('V6: refuses two VALID entries on one physical extent and names both', () => {
    const doc = goodTable();
    doc.physicalExtent[6] = 1;
    const problems = validateDocument(doc, devices);
    assert.deepEqual(summary(problems), [[1, 'VDM_TABLE_OVERLAP'], [6, 'VDM_TABLE_OVERLAP']]);
    assert.match(problems[0].message, /device 'a' physical extent 1, also mapped by extents 1, 6/);
  });

  it('V6: refuses sharing when one of the sharers is not NOWRITE', () => {
    const doc = goodTable();
    doc.physicalExtent[6] = 1;
    doc.state[6] = ExtentState.NoWrite;
    assert.deepEqual(summary(validateDocument(doc, devices)), [[1, 'VDM_TABLE_OVERLAP'], [6, 'VDM_TABLE_OVERLAP']]);
  });

  it('V6: accepts sharing when every sharer is NOWRITE', () => {
    const doc = goodTable();
    doc.physicalExtent[6] = 1;
    doc.state[6] = ExtentState.NoWrite;
    doc.state[1] = ExtentState.NoWrite;
    assert.deepEqual(validateDocument(doc, devices), []);
  });

  it('V6: accepts the same physical extent number on two different devices', () => {
    const doc = goodTable();
    doc.physicalExtent[8] = 0;
    assert.deepEqual(validateDocument(doc, devices), []);
  });

  it('I1: names every planted bad entry, with its code, in one pass', () => {
    const random = seededRandom('validate planted faults');
    const count = 100_000;
    const doc: TableDocument = {
      disk: 'big', epoch: 1, extentSize: 4096, extentCount: count, devices: ['a', 'b'],
      device: new Int32Array(count), physicalExtent: new Uint32Array(count), state: new Uint8Array(count),
    };
    for (let extent = 0; extent < count; extent++) [doc.device[extent], doc.physicalExtent[extent]] = [extent % 2, extent];
    const planted = new Map<number, string>();
    const free = (): number => {
      for (;;) {
        const extent = random.below(count - 1);
        if (!planted.has(extent) && !planted.has(extent + 1)) return extent;
      }
    };
    for (let fault = 0; fault < 500; fault++) {
      const extent = free();
      switch (fault % 5) {
        case 0: doc.device[extent] = 7; planted.set(extent, 'VDM_TABLE_UNKNOWN_DEVICE'); break;
        case 1: doc.physicalExtent[extent] = (1 << 30) + extent; planted.set(extent, 'VDM_TABLE_OUT_OF_BOUNDS'); break;
        case 2: doc.state[extent] = 0x20; planted.set(extent, 'VDM_TABLE_INVALID'); break;
        case 3: doc.device[extent] = NoDevice; planted.set(extent, 'VDM_TABLE_INVALID'); break;
        default: {
          const other = extent + 1;
          doc.device[other] = doc.device[extent];
          doc.physicalExtent[other] = doc.physicalExtent[extent];
          planted.set(extent, 'VDM_TABLE_OVERLAP');
          planted.set(other, 'VDM_TABLE_OVERLAP');
        }
      }
    }
    const large = new Map([['a', { size: 2 ** 32, logicalBlockSize: 512 }], ['b', { size: 2 ** 32, logicalBlockSize: 4096 }]]);
    const found = new Map(validateDocument(doc, large).map((problem) => [problem.extent as number, problem.code]));
    assert.deepEqual([...found.entries()].sort((x, y) => x[0] - y[0]), [...planted.entries()].sort((x, y) => x[0] - y[0]));
  });

  it('I3: leaves the document it validates untouched', () => {
    const doc = goodTable();
    doc.physicalExtent[6] = 1;
    const copy = structuredClone(doc);
    validateDocument(doc, devices);
    assert.deepEqual(doc, copy);
  });

  it('I2: validates a 1M-entry table (times printed, not asserted)', () => {
    const count = 1 << 20;
    const wide = new Map([['a', { size: 2 ** 40, logicalBlockSize: 512 }], ['b', { size: 2 ** 40, logicalBlockSize: 4096 }]]);
    const layouts: [string, (extent: number) => number][] = [
      ['allocated in order', (extent) => extent >> 1],
      // Multiplying by an odd constant modulo 2^20 is a bijection: scattered, yet collision-free.
      ['scattered', (extent) => Math.imul(extent, 2654435761) & 0xfffff],
    ];
    for (const [layout, physicalOf] of layouts) {
      const doc: TableDocument = {
        disk: 'big', epoch: 1, extentSize: 1 << 16, extentCount: count, devices: ['a', 'b'],
        device: new Int32Array(count), physicalExtent: new Uint32Array(count), state: new Uint8Array(count),
      };
      for (let extent = 0; extent < count; extent++) [doc.device[extent], doc.physicalExtent[extent]] = [extent & 1, physicalOf(extent)];
      validateDocument(doc, wide);
      const start = process.hrtime.bigint();
      const problems = validateDocument(doc, wide);
      const milliseconds = Number(process.hrtime.bigint() - start) / 1e6;
      console.log(`validateDocument, ${count} entries ${layout}: ${milliseconds.toFixed(1)} ms`);
      assert.deepEqual(problems, []);
    }
  });
});

describe('validateDelta', () => {
  function delta(overrides: Partial<TableDelta> = {}): TableDelta {
    return {
      disk: 'vol1', fromEpoch: 4, toEpoch: 5, devices: ['a', 'b'],
      extent: Uint32Array.of(12), device: Int32Array.of(0), physicalExtent: Uint32Array.of(20), state: Uint8Array.of(0),
      ...overrides,
    };
  }

  it('accepts a delta that allocates a ZERO extent', () => {
    assert.deepEqual(validateDelta(delta(), goodTable(), devices), []);
  });

  it('V7: refuses a delta built on an older epoch with VDM_TABLE_EPOCH_STALE', () => {
    assert.deepEqual(summary(validateDelta(delta({ fromEpoch: 3, toEpoch: 4 }), goodTable(), devices)), [[null, 'VDM_TABLE_EPOCH_STALE']]);
  });

  it('V7: refuses a delta that skips an epoch', () => {
    assert.deepEqual(summary(validateDelta(delta({ toEpoch: 6 }), goodTable(), devices)), [[null, 'VDM_TABLE_INVALID']]);
  });

  it('V7: refuses a delta for another disk', () => {
    assert.deepEqual(summary(validateDelta(delta({ disk: 'vol2' }), goodTable(), devices)), [[null, 'VDM_TABLE_INVALID']]);
  });

  it('V7: refuses delta entries past the table or out of order', () => {
    const bad = delta({
      extent: Uint32Array.of(12, 40, 12), device: Int32Array.of(0, 0, 0), physicalExtent: Uint32Array.of(20, 21, 22),
      state: Uint8Array.of(0, 0, 0),
    });
    assert.deepEqual(summary(validateDelta(bad, goodTable(), devices)), [[12, 'VDM_TABLE_INVALID'], [40, 'VDM_TABLE_OUT_OF_BOUNDS']]);
  });

  it('V7: refuses a delta whose result maps a physical extent twice, naming both entries', () => {
    const problems = validateDelta(delta({ physicalExtent: Uint32Array.of(3) }), goodTable(), devices);
    assert.deepEqual(summary(problems), [[3, 'VDM_TABLE_OVERLAP'], [12, 'VDM_TABLE_OVERLAP']]);
  });
});

describe('tableProblemsError', () => {
  it('makes one VDM_TABLE_INVALID that counts every problem and lists the first ones', () => {
    const problems: TableProblem[] = Array.from({ length: 250 }, (_v, extent) => ({
      extent, code: extent % 2 === 0 ? 'VDM_TABLE_OVERLAP' : 'VDM_TABLE_OUT_OF_BOUNDS', message: `bad ${extent}`,
    }));
    const error = tableProblemsError(problems, { disk: 'vol1', epoch: 9 });
    assert.equal(error.code, 'VDM_TABLE_INVALID');
    assert.equal(error.details?.problemCount, 250);
    assert.equal((error.details?.problems as unknown[]).length, 100);
    assert.deepEqual(error.details?.countsByCode, { VDM_TABLE_OVERLAP: 125, VDM_TABLE_OUT_OF_BOUNDS: 125 });
    assert.match(error.message, /vol1' epoch 9 refused, nothing changed: 250 problem\(s\).*first: extent 0: bad 0/);
  });
});

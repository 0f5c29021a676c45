/**
 * Proves src/controller/store/table-bytes.ts: stored tables round-trip column for column (TB1) in both
 * layouts, a thin 1M-entry table is stored in a few dozen bytes and a fragmented one as 9 bytes per extent,
 * and bytes that do not describe a table are VDM_STORE_CORRUPT (TB2). Sizes are printed. Oracle: the documents
 * encoded.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTableBytes, encodeTableBytes } from '../../../src/controller/store/table-bytes.js';
import { emptyDocument, ExtentState } from '../../../src/table/document.js';
import { seededRandom } from '../../wire/fixtures/seeded-random.js';

const MILLION = 1 << 20;

describe('stored table bytes', () => {
  it('TB1: stores a thin 1M-entry table in under 200 bytes and reads it back', () => {
    const doc = emptyDocument('thin', 9, 1 << 20, MILLION);
    doc.state.fill(ExtentState.Zero);
    const bytes = encodeTableBytes(doc);
    console.log(`thin 1M table stored in ${bytes.byteLength} bytes`);
    assert.ok(bytes.byteLength < 200);
    assert.deepEqual(decodeTableBytes(bytes, 'test'), doc);
  });

  it('TB1: stores a fragmented 1M-entry table as binary columns and reads it back', () => {
    const random = seededRandom('fragmented stored table');
    const doc = emptyDocument('frag', 2, 1 << 20, MILLION);
    doc.devices = ['a', 'b'];
    for (let extent = 0; extent < MILLION; extent++) {
      doc.device[extent] = random.below(2);
      doc.physicalExtent[extent] = random.below(2 ** 32);
      doc.state[extent] = 0;
    }
    const bytes = encodeTableBytes(doc);
    console.log(`fragmented 1M table stored in ${bytes.byteLength} bytes`);
    assert.ok(bytes.byteLength <= MILLION * 9 + 200);
    assert.deepEqual(decodeTableBytes(bytes, 'test'), doc);
  });

  it('TB2: reports bytes that are not a stored table as VDM_STORE_CORRUPT', () => {
    const doc = emptyDocument('t', 1, 4096, 10);
    const good = encodeTableBytes(doc);
    for (const bytes of [Uint8Array.of(0xff), good.subarray(0, good.length - 3), Buffer.from(JSON.stringify({ format: 1 }))]) {
      assert.throws(() => decodeTableBytes(bytes, 'tables/t@1'), { code: 'VDM_STORE_CORRUPT' });
    }
  });
});

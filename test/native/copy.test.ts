/**
 * copyBytes (src/native/copy.ts): the memmove the data path uses instead of V8's byte-by-byte copy of shared memory.
 * Proves: every byte of the range arrives, at any alignment, between shared and plain memory alike; overlapping
 * ranges copy as memmove does; no byte outside the target range changes; a range past either view throws
 * VDM_RING_ARGUMENT and copies nothing.
 * Oracle: a byte-by-byte copy in JavaScript over the same ranges, and the views' untouched bytes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allocateAligned, copyBytes } from '../../src/native/index.js';

function patterned(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

describe('copyBytes', () => {
  it('copies every byte of the range at any alignment, from shared into shared memory', () => {
    const shared = allocateAligned(64 * 1024);
    shared.set(patterned(shared.length, 7));
    for (const sourceOffset of [0, 1, 3, 28, 4095]) {
      const target = allocateAligned(8192);
      const expected = new Uint8Array(target);
      for (let i = 0; i < 4096; i++) expected[5 + i] = shared[sourceOffset + i];
      assert.equal(copyBytes(target, 5, shared, sourceOffset, 4096), 4096);
      assert.deepEqual(target, expected, `source offset ${sourceOffset}`);
    }
  });

  it('copies between plain and shared memory in both directions', () => {
    const plain = patterned(1000, 3);
    const shared = allocateAligned(4096);
    copyBytes(shared, 100, plain, 0, plain.length);
    assert.deepEqual(shared.subarray(100, 1100), plain);
    const back = new Uint8Array(1000);
    copyBytes(back, 0, shared, 100, 1000);
    assert.deepEqual(back, plain);
  });

  it('copies overlapping ranges as memmove does', () => {
    const view = patterned(100, 1);
    const expected = Uint8Array.from(view);
    expected.copyWithin(10, 0, 50);
    copyBytes(view, 10, view, 0, 50);
    assert.deepEqual(view, expected);
  });

  it('writes nothing outside the target range', () => {
    const target = new Uint8Array(64).fill(0xee);
    copyBytes(target, 8, new Uint8Array(16).fill(1), 0, 16);
    assert.deepEqual([...target.subarray(0, 8)], new Array(8).fill(0xee));
    assert.deepEqual([...target.subarray(24)], new Array(40).fill(0xee));
  });

  it('refuses a range past either view with VDM_RING_ARGUMENT and copies nothing', () => {
    const target = new Uint8Array(16);
    const source = new Uint8Array(16).fill(9);
    assert.throws(() => copyBytes(target, 8, source, 0, 9), { code: 'VDM_RING_ARGUMENT', message: /targetOffset 8 \+ length 9 is past the view's 16 bytes/ });
    assert.throws(() => copyBytes(target, 0, source, 10, 7), { code: 'VDM_RING_ARGUMENT', message: /sourceOffset 10 \+ length 7/ });
    assert.throws(() => copyBytes(target, -1, source, 0, 1), { code: 'VDM_RING_ARGUMENT' });
    assert.deepEqual(target, new Uint8Array(16), 'nothing copied');
  });
});

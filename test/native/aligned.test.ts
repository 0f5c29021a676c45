/**
 * Proves allocateAligned returns page-aligned views of exactly the size asked (G1), shared by default (G2), and
 * that alignmentOf reports real addresses (a view offset by k bytes reports k more).
 * Oracle: the addon's alignmentOf (the address of the first byte modulo 4096) and the view's own properties.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VdmapError } from '../../src/errors/error.js';
import { PAGE_SIZE, alignmentOf, allocateAligned } from '../../src/native/index.js';

describe('allocateAligned', () => {
  it('G1: returns a view of exactly the bytes asked that starts on a page when sizes vary', () => {
    for (const bytes of [PAGE_SIZE, 3 * PAGE_SIZE, 1 << 20, 4 << 20]) {
      const view = allocateAligned(bytes);
      assert.equal(view.byteLength, bytes);
      assert.equal(alignmentOf(view), 0, `${bytes} bytes`);
    }
  });

  it('G2: uses a SharedArrayBuffer by default and an ArrayBuffer when shared is false', () => {
    assert.ok(allocateAligned(PAGE_SIZE).buffer instanceof SharedArrayBuffer);
    const plain = allocateAligned(PAGE_SIZE, { shared: false });
    assert.ok(plain.buffer instanceof ArrayBuffer);
    assert.equal(alignmentOf(plain), 0);
  });

  it('refuses sizes that are not a positive multiple of 4096 with VDM_RING_ARGUMENT', () => {
    for (const bytes of [0, -4096, 100, 4096.5, Number.NaN]) {
      assert.throws(() => allocateAligned(bytes), (error: unknown) => error instanceof VdmapError && error.code === 'VDM_RING_ARGUMENT');
    }
  });
});

describe('alignmentOf', () => {
  it('reports k more when the view starts k bytes further into the same memory', () => {
    const view = allocateAligned(2 * PAGE_SIZE);
    for (const k of [1, 16, 511, 4095]) {
      assert.equal(alignmentOf(view.subarray(k)), k);
    }
    assert.equal(alignmentOf(view.subarray(PAGE_SIZE)), 0);
  });

  it('measures views of any element type over shared memory', () => {
    const memory = new SharedArrayBuffer(3 * PAGE_SIZE);
    const base = alignmentOf(new Uint8Array(memory));
    assert.equal(alignmentOf(new Float64Array(memory, 8)), (base + 8) % PAGE_SIZE);
  });
});

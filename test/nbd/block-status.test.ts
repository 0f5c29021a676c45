/**
 * Proves: allocationDescriptors (src/nbd/block-status.ts) builds the descriptors of a BLOCK_STATUS chunk as
 * proto.md requires: nonzero, aligned to the minimum block size, consecutive, REQ_ONE gives one descriptor no
 * longer than the request, never past the export, equal neighbours merged (invariants B1..B5).
 * Oracle: descriptor lists computed by hand for each small case.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allocationDescriptors, type DescriptorRequest } from '../../src/nbd/block-status.js';

const HOLE = { hole: true, zero: true };
const DATA = { hole: false, zero: false };
const base: DescriptorRequest = { length: 8192, available: 1 << 20, minimumBlockSize: 512, reqOne: false, maxDescriptors: 100 };

describe('block status descriptors', () => {
  it('B5: merges neighbours with equal flags when the export reports them apart', () => {
    const out = allocationDescriptors([{ length: 4096, ...DATA }, { length: 4096, ...DATA }], base);
    assert.deepEqual(out, [8192, 0]);
  });

  it('B4: gives exactly one descriptor no longer than the request when REQ_ONE is set', () => {
    const out = allocationDescriptors([{ length: 65536, ...HOLE }, { length: 4096, ...DATA }], { ...base, reqOne: true });
    assert.deepEqual(out, [8192, 3]);
  });

  it('B4: stops once the request is covered, letting the last descriptor run past it', () => {
    const out = allocationDescriptors([{ length: 4096, ...DATA }, { length: 65536, ...HOLE }, { length: 4096, ...DATA }], base);
    assert.deepEqual(out, [4096, 0, 65536, 3]);
  });

  it('B2: gives a block that straddles two extents only the flags both share', () => {
    const out = allocationDescriptors(
      [{ length: 700, ...HOLE }, { length: 1348, ...DATA }, { length: 2048, ...HOLE }],
      { ...base, length: 4096 },
    );
    // [0,512) hole; [512,1024) straddles hole+data -> 0; [1024,2048) data; [2048,4096) hole
    assert.deepEqual(out, [512, 3, 1536, 0, 2048, 3]);
  });

  it('B3: never reports past the export end, ending on a partial block there', () => {
    const out = allocationDescriptors([{ length: 1 << 20, ...HOLE }], { ...base, length: 1024, available: 1700 });
    assert.deepEqual(out, [1700, 3]);
  });

  it('B1: reports one status-0 descriptor over the request when the export reports nothing', () => {
    assert.deepEqual(allocationDescriptors([], base), [8192, 0]);
    assert.deepEqual(allocationDescriptors([{ length: 0, ...HOLE }], base), [8192, 0]);
  });

  it('B4: starts no descriptor once the request is covered, even after finishing a straddling block', () => {
    const out = allocationDescriptors([{ length: 4196, ...DATA }, { length: 100000, ...HOLE }], { ...base, minimumBlockSize: 4096 });
    assert.deepEqual(out, [8192, 0]);
  });

  it('B2: reports whole blocks with status 0 when the export reports less than one block', () => {
    const out = allocationDescriptors([{ length: 100, ...HOLE }], { ...base, minimumBlockSize: 4096 });
    assert.deepEqual(out, [8192, 0]);
  });

  it('B4: returns at most maxDescriptors descriptors when the extents alternate', () => {
    const extents = Array.from({ length: 16 }, (_, i) => ({ length: 512, ...(i % 2 === 0 ? DATA : HOLE) }));
    const out = allocationDescriptors(extents, { ...base, maxDescriptors: 3 });
    assert.deepEqual(out, [512, 0, 512, 3, 512, 0]);
  });
});

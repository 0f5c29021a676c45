/**
 * Proves allocation.ts SM1-SM3: first-fit allocation never hands out a marked extent or one past the device's
 * end, and the cross-disk overlap check names exactly the entries that map marked extents, also when the disks
 * use different extent sizes (a larger extent covers several smaller ones; a smaller one falls in one larger).
 * Oracle: hand-built tables whose overlaps are known.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SpaceMap } from '../../src/controller/allocation.js';
import { emptyDocument, type TableDocument } from '../../src/table/document.js';

const MiB = 1024 * 1024;
const devices = [{ id: 'dev0', size: 10 * MiB + 4096, logicalBlockSize: 512, paths: [] }, { id: 'dev1', size: 2 * MiB, logicalBlockSize: 512, paths: [] }];

/** A table of `extentSize` extents mapping extent i to physicals[i] on dev0 (-1: unmapped). */
function table(extentSize: number, physicals: number[]): TableDocument {
  const doc = emptyDocument('t', 1, extentSize, physicals.length);
  doc.devices = ['dev0'];
  physicals.forEach((physical, extent) => {
    if (physical < 0) return;
    [doc.device[extent], doc.physicalExtent[extent], doc.state[extent]] = [0, physical, 0];
  });
  return doc;
}

describe('SpaceMap', () => {
  it('SM1, SM2: takes free whole extents first fit, skipping marked ones, then moves to the next device', () => {
    const space = new SpaceMap(MiB, devices);
    space.markTable(table(MiB, [0, 2]));
    const taken = Array.from({ length: 10 }, () => space.take(['dev0', 'dev1']));
    assert.deepEqual(taken.map((place) => place && `${place.device}:${place.physicalExtent}`),
      ['dev0:1', 'dev0:3', 'dev0:4', 'dev0:5', 'dev0:6', 'dev0:7', 'dev0:8', 'dev0:9', 'dev1:0', 'dev1:1']);
    assert.equal(space.take(['dev0', 'dev1']), undefined, 'the partial 11th MiB of dev0 is never handed out');
  });

  it('SM3: names the entries that map extents another table marked', () => {
    const space = new SpaceMap(MiB, devices);
    space.markTable(table(MiB, [4, 5]));
    assert.deepEqual(space.collisions(table(MiB, [3, 4, -1, 5, 6])).map((problem) => problem.extent), [1, 3]);
  });

  it('SM3: compares tables of different extent sizes by the bytes they cover', () => {
    const space = new SpaceMap(MiB, devices);
    space.markTable(table(4096, [256 * 3 + 17])); // one 4 KiB extent inside MiB 3
    space.markTable(table(2 * MiB, [3])); // MiB 6 and 7
    const collisions = space.collisions(table(MiB, [2, 3, 5, 6, 7, 8])).map((problem) => problem.extent);
    assert.deepEqual(collisions, [1, 3, 4]);
    const clone = space.clone();
    clone.take(['dev0']);
    assert.equal(space.take(['dev0'])?.physicalExtent, 0, 'a clone does not share allocations');
  });
});

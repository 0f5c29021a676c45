/**
 * SpaceMap: which extents of each device are mapped by some disk's latest table, seen at one disk's extent
 * size; first-fit allocation of free extents (disk.create, thin provisioning) and the cross-disk overlap check
 * of a pushed table (validate.ts V6 only looks inside one table).
 *
 *   device d:  bit i = 1  <=>  bytes [i * extentSize, (i + 1) * extentSize) of d are mapped by some table
 *
 * A table with another extent size marks every extent its entries touch (extent sizes are powers of two, so a
 * larger extent covers whole extents here and a smaller one falls inside exactly one).
 *
 * Owns: the bitmaps and the first-fit cursor. Knows nothing about stores or commits: the caller marks the
 * tables it read (table-commit.ts does so under the controller's global allocation lock).
 *
 * Invariants:
 *   SM1. take() never returns an extent that is marked, and marks what it returns.
 *   SM2. Only whole extents inside the device are handed out: extent i with (i + 1) * extentSize <= size.
 *   SM3. collisions() names every entry of a table that maps a marked extent (every bad entry, validate.ts I1).
 *
 * Thread: the controller's main thread.
 * Errors leaving: none (take() returns undefined when nothing is free).
 */
import { ExtentState, NoDevice, type TableDocument } from '../table/document.js';
import type { TableProblem } from '../table/validate.js';
import type { DeviceRecord } from './store/store.js';

interface DeviceSpace {
  extents: number;
  bits: Uint32Array;
  cursor: number;
}

export class SpaceMap {
  private readonly devices = new Map<string, DeviceSpace>();

  constructor(readonly extentSize: number, devices: readonly DeviceRecord[]) {
    for (const device of devices) {
      const extents = Math.floor(device.size / extentSize); // SM2
      this.devices.set(device.id, { extents, bits: new Uint32Array(Math.ceil(extents / 32)), cursor: 0 });
    }
  }

  /** Marks every extent `doc` maps (one tight pass: no allocation per entry). */
  markTable(doc: TableDocument): void {
    this.forEachMapped(doc, (_extent, _slot, space, first, last) => {
      for (let index = first; index < last; index++) setBit(space.bits, index);
    });
  }

  /**
   * Calls `visit` for every entry of `doc` that maps a known device, with the range [first, last) of this map's
   * extent indexes it covers (the document's extents may be larger or smaller than this map's).
   */
  private forEachMapped(doc: TableDocument, visit: (extent: number, slot: number, space: DeviceSpace, first: number, last: number) => void): void {
    const spaces = doc.devices.map((id) => this.devices.get(id));
    const { device, physicalExtent } = doc;
    const perEntry = doc.extentSize >= this.extentSize ? doc.extentSize / this.extentSize : 1;
    const perIndex = doc.extentSize < this.extentSize ? this.extentSize / doc.extentSize : 1;
    for (let extent = 0; extent < doc.extentCount; extent++) {
      const slot = device[extent];
      if (slot < 0) continue;
      const space = spaces[slot];
      if (space === undefined) continue;
      const first = perIndex === 1 ? physicalExtent[extent] * perEntry : Math.floor(physicalExtent[extent] / perIndex);
      visit(extent, slot, space, first, Math.min(first + perEntry, space.extents));
    }
  }

  /** An independent copy (take() on it leaves this map as it was). */
  clone(): SpaceMap {
    const copy = new SpaceMap(this.extentSize, []);
    for (const [id, space] of this.devices) copy.devices.set(id, { extents: space.extents, bits: space.bits.slice(), cursor: space.cursor });
    return copy;
  }

  /** SM1: the first free extent on the first of `deviceIds` that has one, marked; undefined when all are full. */
  take(deviceIds: readonly string[]): { device: string; physicalExtent: number } | undefined {
    for (const id of deviceIds) {
      const space = this.devices.get(id);
      if (space === undefined) continue;
      const index = firstClear(space.bits, space.cursor, space.extents);
      if (index === undefined) continue;
      setBit(space.bits, index);
      space.cursor = index + 1;
      return { device: id, physicalExtent: index };
    }
    return undefined;
  }

  /** SM3: every entry of `doc` that maps an extent already marked (by another disk). */
  collisions(doc: TableDocument): TableProblem[] {
    const problems: TableProblem[] = [];
    this.forEachMapped(doc, (extent, slot, space, first, last) => {
      for (let index = first; index < last; index++) {
        if (!testBit(space.bits, index)) continue;
        problems.push({
          extent, code: 'VDM_TABLE_OVERLAP',
          message: `maps device '${doc.devices[slot]}' physical extent ${doc.physicalExtent[extent]}, which another disk already maps`,
        });
        break;
      }
    });
    return problems;
  }
}

/** True when entry `extent` of `doc` is an unallocated thin extent (ZERO without a device). */
export function isUnallocated(doc: TableDocument, extent: number): boolean {
  return extent < doc.extentCount && doc.device[extent] === NoDevice && (doc.state[extent] & ExtentState.Zero) !== 0;
}

function setBit(bits: Uint32Array, index: number): void {
  bits[index >>> 5] |= 1 << (index & 31);
}

function testBit(bits: Uint32Array, index: number): boolean {
  return (bits[index >>> 5] & (1 << (index & 31))) !== 0;
}

/** The first clear bit in [from, limit), wrapping once to [0, from). */
function firstClear(bits: Uint32Array, from: number, limit: number): number | undefined {
  const scan = (start: number, end: number): number | undefined => {
    for (let index = start; index < end;) {
      const word = bits[index >>> 5];
      if (word === 0xffff_ffff && (index & 31) === 0) {
        index += 32;
        continue;
      }
      if ((word & (1 << (index & 31))) === 0) return index;
      index++;
    }
    return undefined;
  };
  return scan(from, limit) ?? scan(0, Math.min(from, limit));
}

/**
 * The mapping table as a document: the device-independent form the controller stores, validates, diffs and
 * sends, and the agent loads into its shared-memory table (src/table/layout.ts owns that byte layout).
 *
 * Owns: ExtentState bits and the columnar TableDocument / TableDelta shapes. Knows nothing about LMDB, CBOR
 * frames or SharedArrayBuffers.
 *
 * Invariants:
 *   D1. A document describes `extentCount` extents of `extentSize` bytes; every column has extentCount items.
 *   D2. `device[i]` is a slot in `devices` (the disk's device ids) or NoDevice (-1); an extent with NoDevice
 *       must be Invalid or Zero.
 *   D3. The physical byte offset of extent i is physicalExtent[i] * extentSize on device devices[device[i]].
 *   D4. Epochs only grow: a delta goes from `fromEpoch` to `toEpoch` = fromEpoch + 1.
 */

/** State bits of one entry. Bits not listed are reserved and must be zero. */
export const ExtentState = {
  /** A usable mapping: reads and writes go to the device. */
  Valid: 0,
  /** No usable mapping: I/O is held and faulted to the controller until the entry is fixed or a timeout. */
  Invalid: 1 << 0,
  /** Data cannot be written here now (snapshot sharing, migration): reads pass, writes are held and faulted. */
  NoWrite: 1 << 1,
  /** Unallocated (thin): reads return zeroes without device I/O; writes are held and faulted for allocation. */
  Zero: 1 << 2,
} as const;
export type ExtentStateBits = number;
export const KnownStateBits = ExtentState.Invalid | ExtentState.NoWrite | ExtentState.Zero;

/** device[i] for an extent with no device. */
export const NoDevice = -1;

export interface TableDocument {
  disk: string;
  epoch: number;
  /** Bytes per extent, a power of two >= 4096. */
  extentSize: number;
  extentCount: number;
  /** Device ids this disk maps into; `device[i]` indexes this list. */
  devices: string[];
  device: Int32Array;
  physicalExtent: Uint32Array;
  state: Uint8Array;
}

/** The entries that change from one epoch to the next; `devices` is the disk's full device list at toEpoch. */
export interface TableDelta {
  disk: string;
  fromEpoch: number;
  toEpoch: number;
  devices: string[];
  extent: Uint32Array;
  device: Int32Array;
  physicalExtent: Uint32Array;
  state: Uint8Array;
}

export function stateNames(bits: ExtentStateBits): string[] {
  const names: string[] = [];
  if (bits & ExtentState.Invalid) names.push('INVALID');
  if (bits & ExtentState.NoWrite) names.push('NOWRITE');
  if (bits & ExtentState.Zero) names.push('ZERO');
  return names;
}

export function stateFromNames(names: readonly string[]): ExtentStateBits | undefined {
  let bits = 0;
  for (const name of names) {
    if (name === 'INVALID') bits |= ExtentState.Invalid;
    else if (name === 'NOWRITE') bits |= ExtentState.NoWrite;
    else if (name === 'ZERO') bits |= ExtentState.Zero;
    else return undefined;
  }
  return bits;
}

/** An empty document: every extent Invalid with no device. */
export function emptyDocument(disk: string, epoch: number, extentSize: number, extentCount: number): TableDocument {
  return {
    disk, epoch, extentSize, extentCount, devices: [],
    device: new Int32Array(extentCount).fill(NoDevice),
    physicalExtent: new Uint32Array(extentCount),
    state: new Uint8Array(extentCount).fill(ExtentState.Invalid),
  };
}

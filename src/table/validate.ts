/**
 * Table validation: the check every table passes before the controller stores or pushes it, and the agent
 * may run again on what it receives (dm-table's "load inactive, validate, then resume": a bad table never
 * reaches live I/O).
 *
 * Owns: the rules below and the one VdmapError that reports a refused table. Knows nothing about where
 * devices come from (the caller passes their geometry: the controller from its store, the agent from what its
 * host sees) or how tables travel.
 *
 * Rules (each broken rule is one problem; the entry it names, or null for the whole table):
 *   V1. extentSize is a power of two >= 4096 and a multiple of every mapped device's logical block size.
 *   V2. Every column is the right typed array with extentCount items (document.ts D1); extentCount < 2^32,
 *       and equals ceil(diskSize / extentSize) when the disk size is given.
 *   V3. device[i] is NoDevice or a slot of `devices`; every listed device id is distinct and registered.
 *   V4. NoDevice only with INVALID or ZERO (D2); no state bit outside KnownStateBits.
 *   V5. A mapped extent lies inside its device: (physicalExtent + 1) * extentSize <= device size.
 *   V6. No physical extent (device, physicalExtent) is mapped by two virtual extents unless every mapping of it
 *       is NOWRITE (snapshot sharing). Every entry of an offending group is named.
 *   V7. A delta is for this disk, from the current epoch (else VDM_TABLE_EPOCH_STALE) to the next, with
 *       strictly increasing extents inside the table, and the table it produces passes V1-V6.
 *
 * Invariants:
 *   I1. Validation never stops at the first problem: one pass finds them all.
 *   I2. O(n) in the number of extents: V6 uses a radix sort of the mapped entries, not a hash map or a
 *       comparison sort (1M entries: measured and printed by test/table/validate.test.ts).
 *   I3. The input is never modified.
 *
 * Thread: any (pure); the controller's main thread in practice.
 * Errors leaving: VDM_TABLE_INVALID from tableProblemsError (details.problems lists the problems).
 */
import { VdmapError } from '../errors/error.js';
import {
  ExtentState, KnownStateBits, NoDevice, stateNames, type TableDelta, type TableDocument,
} from './document.js';

export interface DeviceGeometry {
  size: number;
  logicalBlockSize: number;
}

export type TableProblemCode =
  | 'VDM_TABLE_OUT_OF_BOUNDS' | 'VDM_TABLE_MISALIGNED' | 'VDM_TABLE_UNKNOWN_DEVICE' | 'VDM_TABLE_OVERLAP'
  | 'VDM_TABLE_INVALID' | 'VDM_TABLE_EPOCH_STALE';

export interface TableProblem {
  /** The virtual extent at fault, or null for a problem of the whole table. */
  extent: number | null;
  code: TableProblemCode;
  message: string;
}

export interface ValidateOptions {
  /** The virtual disk's size in bytes, when known: checks extentCount against it (V2). */
  diskSize?: number;
}

export const MIN_EXTENT_SIZE = 4096;
const MAX_EXTENT_COUNT = 2 ** 32 - 1;

/** Every problem of `doc` against the registered `devices` (I1). An empty list means the table is valid. */
export function validateDocument(doc: TableDocument, devices: ReadonlyMap<string, DeviceGeometry>,
  options: ValidateOptions = {}): TableProblem[] {
  const problems: TableProblem[] = [];
  checkHeader(doc, options, problems);
  const entryCount = checkColumns(doc, problems);
  const slots = checkDeviceList(doc, devices, problems);
  checkEntries(doc, entryCount, slots, problems);
  checkSharing(doc, entryCount, slots.length, problems);
  return sortedByExtent(problems);
}

function checkHeader(doc: TableDocument, options: ValidateOptions, problems: TableProblem[]): void {
  const whole = (message: string): void => {
    problems.push({ extent: null, code: 'VDM_TABLE_INVALID', message });
  };
  if (typeof doc.disk !== 'string' || doc.disk.length === 0) whole('disk name is empty');
  if (!isSafeUint(doc.epoch)) whole(`epoch ${String(doc.epoch)} is not a non-negative integer`);
  if (!isSafeUint(doc.extentSize) || doc.extentSize < MIN_EXTENT_SIZE || !isPowerOfTwo(doc.extentSize)) {
    problems.push({
      extent: null, code: 'VDM_TABLE_MISALIGNED',
      message: `extent size ${String(doc.extentSize)} is not a power of two >= ${MIN_EXTENT_SIZE}`,
    });
  }
  if (!isSafeUint(doc.extentCount) || doc.extentCount > MAX_EXTENT_COUNT) {
    whole(`extent count ${String(doc.extentCount)} is not an integer in 0..${MAX_EXTENT_COUNT}`);
  }
  if (options.diskSize !== undefined && isSafeUint(doc.extentSize) && doc.extentSize > 0) {
    const expected = Math.ceil(options.diskSize / doc.extentSize);
    if (doc.extentCount !== expected) {
      whole(`extent count ${doc.extentCount} does not cover the disk: ${options.diskSize} bytes need ${expected} extents of ${doc.extentSize}`);
    }
  }
}

/** V2; returns how many entries can be checked (the shortest well-typed column). */
function checkColumns(doc: TableDocument, problems: TableProblem[]): number {
  const expected = isSafeUint(doc.extentCount) ? doc.extentCount : 0;
  let checkable = expected;
  const columns: [string, unknown, Function][] = [
    ['device', doc.device, Int32Array], ['physicalExtent', doc.physicalExtent, Uint32Array], ['state', doc.state, Uint8Array],
  ];
  for (const [columnName, column, kind] of columns) {
    if (!(column instanceof kind)) {
      problems.push({ extent: null, code: 'VDM_TABLE_INVALID', message: `column ${columnName} is not a ${kind.name}` });
      checkable = 0;
    } else if ((column as Uint8Array).length !== expected) {
      const length = (column as Uint8Array).length;
      problems.push({
        extent: null, code: 'VDM_TABLE_INVALID',
        message: `column ${columnName} has ${length} items, the table has ${expected} extents`,
      });
      checkable = Math.min(checkable, length);
    }
  }
  return checkable;
}

/** What each slot of `devices` resolves to: its geometry, or a problem every entry using it inherits. */
interface Slot {
  id: string;
  geometry: DeviceGeometry | undefined;
  entryProblem: { code: TableProblemCode; message: string } | undefined;
}

function checkDeviceList(doc: TableDocument, devices: ReadonlyMap<string, DeviceGeometry>,
  problems: TableProblem[]): Slot[] {
  if (!Array.isArray(doc.devices)) {
    problems.push({ extent: null, code: 'VDM_TABLE_INVALID', message: 'devices is not a list' });
    return [];
  }
  const seen = new Set<string>();
  return doc.devices.map((id, slot) => {
    if (seen.has(id)) {
      problems.push({ extent: null, code: 'VDM_TABLE_INVALID', message: `device '${id}' is listed twice (slot ${slot})` });
    }
    seen.add(id);
    const geometry = devices.get(id);
    if (geometry === undefined) {
      const message = `device '${id}' (slot ${slot}) is not registered`;
      problems.push({ extent: null, code: 'VDM_TABLE_UNKNOWN_DEVICE', message });
      return { id, geometry, entryProblem: { code: 'VDM_TABLE_UNKNOWN_DEVICE', message } };
    }
    if (isSafeUint(doc.extentSize) && doc.extentSize % geometry.logicalBlockSize !== 0) {
      return {
        id, geometry, entryProblem: {
          code: 'VDM_TABLE_MISALIGNED',
          message: `extent size ${doc.extentSize} is not a multiple of device '${id}' block size ${geometry.logicalBlockSize}`,
        },
      };
    }
    return { id, geometry, entryProblem: undefined };
  });
}

/** V3-V5 for each entry, in one pass. */
function checkEntries(doc: TableDocument, entryCount: number, slots: Slot[], problems: TableProblem[]): void {
  const { device, physicalExtent, state, extentSize } = doc;
  const noDeviceAllowed = ExtentState.Invalid | ExtentState.Zero;
  for (let extent = 0; extent < entryCount; extent++) {
    const bits = state[extent];
    if ((bits & ~KnownStateBits) !== 0) {
      problems.push({ extent, code: 'VDM_TABLE_INVALID', message: `state 0x${bits.toString(16)} has unknown bits` });
    }
    const slot = device[extent];
    if (slot === NoDevice) {
      if ((bits & noDeviceAllowed) === 0) {
        problems.push({ extent, code: 'VDM_TABLE_INVALID', message: `has no device but is ${describeState(bits)}, not INVALID or ZERO` });
      }
      continue;
    }
    const target = slot >= 0 && slot < slots.length ? slots[slot] : undefined;
    if (target === undefined) {
      problems.push({ extent, code: 'VDM_TABLE_UNKNOWN_DEVICE', message: `device slot ${slot} is not in the devices list (${slots.length} devices)` });
    } else if (target.entryProblem !== undefined) {
      problems.push({ extent, ...target.entryProblem });
    } else if ((physicalExtent[extent] + 1) * extentSize > (target.geometry as DeviceGeometry).size) {
      problems.push({
        extent, code: 'VDM_TABLE_OUT_OF_BOUNDS',
        message: `physical extent ${physicalExtent[extent]} ends at byte ${(physicalExtent[extent] + 1) * extentSize}, past the end of device '${target.id}' (${(target.geometry as DeviceGeometry).size} bytes)`,
      });
    }
  }
}

function describeState(bits: number): string {
  const names = stateNames(bits);
  return names.length === 0 ? 'VALID' : names.join('+');
}

/**
 * V6. Groups the mapped entries by device slot (one counting pass in extent order), then radix-sorts each
 * group by physical extent (four 8-bit LSD passes over contiguous arrays, skipping a pass whose digit is the
 * same everywhere), so equal (slot, physical extent) pairs become neighbours in O(n); then scans the runs.
 */
function checkSharing(doc: TableDocument, entryCount: number, slotCount: number, problems: TableProblem[]): void {
  const { device, physicalExtent } = doc;
  const slotStarts = new Uint32Array(slotCount + 1);
  for (let extent = 0; extent < entryCount; extent++) {
    const slot = device[extent];
    if (slot >= 0 && slot < slotCount) slotStarts[slot + 1]++;
  }
  for (let slot = 0; slot < slotCount; slot++) slotStarts[slot + 1] += slotStarts[slot];
  const mappedCount = slotStarts[slotCount];
  if (mappedCount < 2) return;
  const physical = new Uint32Array(mappedCount);
  const extents = new Uint32Array(mappedCount);
  const cursor = slotStarts.slice(0, slotCount);
  for (let extent = 0; extent < entryCount; extent++) {
    const slot = device[extent];
    if (slot < 0 || slot >= slotCount) continue;
    const position = cursor[slot]++;
    physical[position] = physicalExtent[extent];
    extents[position] = extent;
  }
  const scratch = { physical: new Uint32Array(mappedCount), extents: new Uint32Array(mappedCount) };
  for (let slot = 0; slot < slotCount; slot++) {
    const [start, end] = [slotStarts[slot], slotStarts[slot + 1]];
    if (end - start < 2) continue;
    radixSortByPhysical(physical, extents, start, end, scratch);
    reportSharedRuns(doc, physical, extents, start, end, problems);
  }
}

/**
 * Sorts physical[start, end) ascending, moving extents along; stable; leaves the result in the same arrays.
 * A group already in order (the common case: extents allocated in order) costs one pass.
 */
function radixSortByPhysical(physical: Uint32Array, extents: Uint32Array, start: number, end: number,
  scratch: { physical: Uint32Array; extents: Uint32Array }): void {
  if (isAscending(physical, start, end)) return;
  let fromPhysical = physical;
  let fromExtents = extents;
  let toPhysical = scratch.physical;
  let toExtents = scratch.extents;
  const counts = new Uint32Array(256);
  for (let shift = 0; shift < 32; shift += 8) {
    counts.fill(0);
    for (let index = start; index < end; index++) counts[(fromPhysical[index] >>> shift) & 0xff]++;
    if (counts[(fromPhysical[start] >>> shift) & 0xff] === end - start) continue;
    let position = start;
    for (let digit = 0; digit < 256; digit++) {
      const count = counts[digit];
      counts[digit] = position;
      position += count;
    }
    for (let index = start; index < end; index++) {
      const value = fromPhysical[index];
      const target = counts[(value >>> shift) & 0xff]++;
      toPhysical[target] = value;
      toExtents[target] = fromExtents[index];
    }
    const swapPhysical = fromPhysical;
    const swapExtents = fromExtents;
    fromPhysical = toPhysical;
    fromExtents = toExtents;
    toPhysical = swapPhysical;
    toExtents = swapExtents;
  }
  if (fromPhysical !== physical) {
    physical.set(fromPhysical.subarray(start, end), start);
    extents.set(fromExtents.subarray(start, end), start);
  }
}

function isAscending(values: Uint32Array, start: number, end: number): boolean {
  for (let index = start + 1; index < end; index++) if (values[index] < values[index - 1]) return false;
  return true;
}

/** Reports each run of equal physical extents in a sorted slot group that is not all NOWRITE. */
function reportSharedRuns(doc: TableDocument, physical: Uint32Array, extents: Uint32Array, start: number,
  end: number, problems: TableProblem[]): void {
  let runStart = start;
  for (let index = start + 1; index <= end; index++) {
    if (index < end && physical[index] === physical[runStart]) continue;
    if (index - runStart > 1) reportSharedRun(doc, extents.slice(runStart, index).sort(), doc.state, problems);
    runStart = index;
  }
}

function reportSharedRun(doc: TableDocument, run: Uint32Array, state: Uint8Array, problems: TableProblem[]): void {
  let allNoWrite = true;
  for (const extent of run) {
    if ((state[extent] & ExtentState.NoWrite) === 0) allNoWrite = false;
  }
  if (allNoWrite) return;
  const first = run[0];
  const where = `device '${doc.devices[doc.device[first]]}' physical extent ${doc.physicalExtent[first]}`;
  const shown = Array.from(run.subarray(0, 8)).join(', ') + (run.length > 8 ? `, ... (${run.length} in all)` : '');
  for (const extent of run) {
    problems.push({
      extent, code: 'VDM_TABLE_OVERLAP',
      message: `maps ${where}, also mapped by extents ${shown}, and not every mapping is NOWRITE`,
    });
  }
}

/**
 * V7: every problem of applying `delta` to `current`. Entries outside the table are reported and left out;
 * the rest is applied to a copy, which must pass validateDocument.
 */
export function validateDelta(delta: TableDelta, current: TableDocument, devices: ReadonlyMap<string, DeviceGeometry>,
  options: ValidateOptions = {}): TableProblem[] {
  const problems: TableProblem[] = [];
  const whole = (code: TableProblemCode, message: string): void => {
    problems.push({ extent: null, code, message });
  };
  if (delta.disk !== current.disk) whole('VDM_TABLE_INVALID', `delta is for disk '${delta.disk}', the table is '${current.disk}'`);
  if (delta.fromEpoch !== current.epoch) {
    whole('VDM_TABLE_EPOCH_STALE', `delta starts at epoch ${delta.fromEpoch}, the table is at epoch ${current.epoch}`);
  }
  if (delta.toEpoch !== delta.fromEpoch + 1) {
    whole('VDM_TABLE_INVALID', `delta goes from epoch ${delta.fromEpoch} to ${delta.toEpoch}, not to the next epoch`);
  }
  const length = delta.extent.length;
  if (delta.device.length !== length || delta.physicalExtent.length !== length || delta.state.length !== length) {
    whole('VDM_TABLE_INVALID', 'delta columns differ in length');
  }
  const result = applyCheckedEntries(delta, current, Math.min(length, delta.device.length,
    delta.physicalExtent.length, delta.state.length), problems);
  problems.push(...validateDocument(result, devices, options));
  return sortedByExtent(problems);
}

function applyCheckedEntries(delta: TableDelta, current: TableDocument, length: number,
  problems: TableProblem[]): TableDocument {
  const result: TableDocument = {
    ...current, epoch: delta.toEpoch, devices: [...delta.devices],
    device: current.device.slice(), physicalExtent: current.physicalExtent.slice(), state: current.state.slice(),
  };
  let previous = -1;
  for (let index = 0; index < length; index++) {
    const extent = delta.extent[index];
    if (extent >= current.extentCount) {
      problems.push({ extent, code: 'VDM_TABLE_OUT_OF_BOUNDS', message: `delta entry ${index} is past the table's ${current.extentCount} extents` });
      continue;
    }
    if (extent <= previous) {
      problems.push({ extent, code: 'VDM_TABLE_INVALID', message: `delta entry ${index} is not after extent ${previous}` });
      continue;
    }
    previous = extent;
    result.device[extent] = delta.device[index];
    result.physicalExtent[extent] = delta.physicalExtent[index];
    result.state[extent] = delta.state[index];
  }
  return result;
}

function sortedByExtent(problems: TableProblem[]): TableProblem[] {
  return problems.sort((a, b) => (a.extent ?? -1) - (b.extent ?? -1));
}

export const DEFAULT_PROBLEM_LISTING = 100;

/**
 * What a refusal names, so the operator can act on it: the disk, and whichever of these applies:
 *   stays  the disk's current epoch, which a refused commit leaves as it is (the controller's refusals);
 *   file   the table file refused before it was sent (the CLI's own check);
 *   epoch  the epoch the refused table itself carries (an agent refusing a table it received).
 */
export interface RefusalSubject {
  disk: string;
  epoch?: number;
  stays?: number;
  file?: string;
}

function refusedWhat(subject: RefusalSubject): string {
  if (subject.file !== undefined) {
    return `table file ${subject.file} for disk '${subject.disk}' refused before it was sent, nothing changed`;
  }
  if (subject.stays !== undefined) {
    return `table for disk '${subject.disk}' refused, nothing changed (the disk stays at epoch ${subject.stays})`;
  }
  const epoch = subject.epoch === undefined ? '' : ` epoch ${subject.epoch}`;
  return `table for disk '${subject.disk}'${epoch} refused, nothing changed`;
}

/**
 * One VDM_TABLE_INVALID for a refused table: the message names the subject, counts problems by code and shows
 * the first; details.problems lists the first `listLimit` (every problem when fewer), details.problemCount
 * counts all of them, details.listed says how many are listed.
 */
export function tableProblemsError(problems: readonly TableProblem[], subject: RefusalSubject,
  listLimit: number = DEFAULT_PROBLEM_LISTING): VdmapError {
  const counts: Record<string, number> = {};
  for (const problem of problems) counts[problem.code] = (counts[problem.code] ?? 0) + 1;
  const summary = Object.entries(counts).map(([code, count]) => `${count} ${code}`).join(', ');
  const first = problems[0];
  const firstText = first === undefined ? '' : `; first: ${first.extent === null ? 'table' : `extent ${first.extent}`}: ${first.message}`;
  return new VdmapError('VDM_TABLE_INVALID',
    `${refusedWhat(subject)}: ${problems.length} problem(s) (${summary})${firstText}`, {
      disk: subject.disk, epoch: subject.epoch ?? null,
      ...(subject.stays === undefined ? {} : { currentEpoch: subject.stays }),
      ...(subject.file === undefined ? {} : { file: subject.file }),
      problemCount: problems.length, countsByCode: counts,
      problems: problems.slice(0, listLimit).map((problem) => ({ ...problem })),
      listed: Math.min(problems.length, listLimit),
    });
}

function isSafeUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isPowerOfTwo(value: number): boolean {
  return value > 0 && 2 ** Math.round(Math.log2(value)) === value;
}

/**
 * The shared mapping table's byte layout: the only code that knows where anything lives in the table's
 * SharedArrayBuffer. Everything else (the epoch flip, I/O workers, the agent) goes through these functions.
 *
 * One table per virtual disk. Words are 32-bit; the header is an Int32Array (Atomics), entries are read through
 * a Uint32Array over the same buffer.
 *
 *   word  0  Magic                      'VDMT'
 *   word  1  LayoutVersion
 *   word  2  Generation                 flips so far; the active copy is Generation & 1       (Atomics)
 *   word  3  Blocking                   1 while new I/O must wait (a flip or a drain request)   (Atomics)
 *   word  4  DrainSignal                bumped by readers that leave while Blocking is raised   (Atomics)
 *   word  5  ExtentCapacity             entries per copy
 *   word  6  ReaderSlots                number of in-flight counters
 *   word  7  DrainTimeouts              flips abandoned because in-flight I/O did not drain     (Atomics)
 *   words 8..15  reserved
 *   ReaderSlots x 16 words              in-flight counter of reader slot i at word 16 + 16 i   (Atomics)
 *                                       (one 64-byte line each, so readers never share a line)
 *   copy 0, then copy 1, each:
 *     word 0,1  epoch (low 32 bits, high 21 bits)
 *     word 2    extentSize log2
 *     word 3    extentCount (<= ExtentCapacity)
 *     word 4    deviceCount (<= MaxDeviceSlots)
 *     words 5..15  reserved
 *     MaxDeviceSlots words: the file descriptor of each device slot (-1: none)
 *     ExtentCapacity x 2 words, entry i at 2 i:
 *       word 0: state bits << 24 | device slot (0xFFFFFF = no device)
 *       word 1: physical extent number on that device (uint32)
 *
 * Invariants:
 *   L1. A copy is written only by the table's writer and only while it is inactive (src/table/epoch-flip.ts).
 *   L2. Every field a reader uses for an I/O (entries, device fds, epoch, geometry) lives inside a copy, so
 *       flipping Generation switches all of them at once.
 *   L3. Header words marked Atomics are only accessed with Atomics; copy words are plain, published by the
 *       Atomics.store of Generation (see the protocol in epoch-flip.ts).
 */
import { NoDevice } from './document.js';

export const TableMagic = 0x54_4d_44_56; // 'VDMT' little-endian
export const LayoutVersion = 1;

export const Header = {
  Magic: 0,
  LayoutVersion: 1,
  Generation: 2,
  Blocking: 3,
  DrainSignal: 4,
  ExtentCapacity: 5,
  ReaderSlots: 6,
  DrainTimeouts: 7,
} as const;
const HeaderWords = 16;
const WordsPerReaderSlot = 16;

const CopyEpochLow = 0;
const CopyEpochHigh = 1;
const CopyExtentSizeLog2 = 2;
const CopyExtentCount = 3;
const CopyDeviceCount = 4;
const CopyHeaderWords = 16;
export const MaxDeviceSlots = 64;
const CopyDeviceWords = MaxDeviceSlots;
const WordsPerEntry = 2;

/** Largest table an agent holds: 16M extents (16 TiB at 1 MiB extents), 256 MiB of entries for two copies. */
export const MaxExtentCapacity = 1 << 24;
export const MaxReaderSlots = 256;

const DeviceSlotMask = 0xff_ffff;
const StateShift = 24;
const NoDeviceSlot = DeviceSlotMask;

export type CopyIndex = 0 | 1;

/** Typed views over one table's SharedArrayBuffer. Cheap to build in any thread from the buffer. */
export interface TableViews {
  readonly buffer: SharedArrayBuffer;
  /** Header and reader slots, accessed with Atomics. */
  readonly header: Int32Array;
  /** Word offset of each copy's start within `words`. */
  readonly copyBase: readonly [number, number];
  /** All words, for plain reads and writes inside a copy. */
  readonly words: Uint32Array;
  /** The same words, signed, for device fds. */
  readonly signedWords: Int32Array;
  readonly extentCapacity: number;
  readonly readerSlots: number;
}

function copyWords(extentCapacity: number): number {
  return CopyHeaderWords + CopyDeviceWords + extentCapacity * WordsPerEntry;
}

function readerAreaWords(readerSlots: number): number {
  return readerSlots * WordsPerReaderSlot;
}

export function tableBytes(extentCapacity: number, readerSlots: number): number {
  return 4 * (HeaderWords + readerAreaWords(readerSlots) + 2 * copyWords(extentCapacity));
}

/** Allocates and formats a table: both copies empty (epoch 0, no extents), generation 0, not blocking. */
export function createTableBuffer(extentCapacity: number, readerSlots: number): TableViews {
  if (!Number.isInteger(extentCapacity) || extentCapacity < 1 || extentCapacity > MaxExtentCapacity) {
    throw new RangeError(`extent capacity ${extentCapacity} is outside 1..${MaxExtentCapacity}`);
  }
  if (!Number.isInteger(readerSlots) || readerSlots < 1 || readerSlots > MaxReaderSlots) {
    throw new RangeError(`reader slots ${readerSlots} is outside 1..${MaxReaderSlots}`);
  }
  const buffer = new SharedArrayBuffer(tableBytes(extentCapacity, readerSlots));
  const header = new Int32Array(buffer);
  header[Header.Magic] = TableMagic;
  header[Header.LayoutVersion] = LayoutVersion;
  header[Header.ExtentCapacity] = extentCapacity;
  header[Header.ReaderSlots] = readerSlots;
  const views = viewsOf(buffer);
  for (const copy of [0, 1] as const) {
    views.signedWords.fill(-1, deviceSlotWord(views, copy, 0), deviceSlotWord(views, copy, MaxDeviceSlots));
  }
  return views;
}

/** Views over an existing table buffer (for example one received by a worker). */
export function viewsOf(buffer: SharedArrayBuffer): TableViews {
  const header = new Int32Array(buffer);
  if (header[Header.Magic] !== TableMagic || header[Header.LayoutVersion] !== LayoutVersion) {
    throw new TypeError('buffer is not a vdmap mapping table of this layout version');
  }
  const extentCapacity = header[Header.ExtentCapacity];
  const readerSlots = header[Header.ReaderSlots];
  const copy0 = HeaderWords + readerAreaWords(readerSlots);
  return {
    buffer, header,
    copyBase: [copy0, copy0 + copyWords(extentCapacity)],
    words: new Uint32Array(buffer),
    signedWords: new Int32Array(buffer),
    extentCapacity, readerSlots,
  };
}

/** Word index (into `header`) of reader slot i's in-flight counter. */
export function readerSlotWord(slot: number): number {
  return HeaderWords + slot * WordsPerReaderSlot;
}

export function activeCopyOf(generation: number): CopyIndex {
  return (generation & 1) as CopyIndex;
}

// ---- copy geometry and epoch ------------------------------------------------------------------------------

export function copyEpoch(views: TableViews, copy: CopyIndex): number {
  const base = views.copyBase[copy];
  return views.words[base + CopyEpochHigh] * 0x1_0000_0000 + views.words[base + CopyEpochLow];
}

export function copyExtentCount(views: TableViews, copy: CopyIndex): number {
  return views.words[views.copyBase[copy] + CopyExtentCount];
}

export function copyExtentSizeLog2(views: TableViews, copy: CopyIndex): number {
  return views.words[views.copyBase[copy] + CopyExtentSizeLog2];
}

/** Powers of two up to 2^63, so the data path never calls Math.pow for an extent size. */
const PowersOfTwo = Float64Array.from({ length: 64 }, (_, n) => 2 ** n);

/** Bytes per extent of the copy: 2 ** copyExtentSizeLog2, by table lookup. */
export function copyExtentSize(views: TableViews, copy: CopyIndex): number {
  return PowersOfTwo[views.words[views.copyBase[copy] + CopyExtentSizeLog2]];
}

export function copyDeviceCount(views: TableViews, copy: CopyIndex): number {
  return views.words[views.copyBase[copy] + CopyDeviceCount];
}

/** Writer only (invariant L1). */
export function writeCopyGeometry(views: TableViews, copy: CopyIndex, epoch: number, extentSizeLog2: number, extentCount: number): void {
  if (extentCount > views.extentCapacity) throw new RangeError(`${extentCount} extents exceed the table capacity ${views.extentCapacity}`);
  const base = views.copyBase[copy];
  views.words[base + CopyEpochLow] = epoch % 0x1_0000_0000;
  views.words[base + CopyEpochHigh] = Math.floor(epoch / 0x1_0000_0000);
  views.words[base + CopyExtentSizeLog2] = extentSizeLog2;
  views.words[base + CopyExtentCount] = extentCount;
}

// ---- device slots -----------------------------------------------------------------------------------------

function deviceSlotWord(views: TableViews, copy: CopyIndex, slot: number): number {
  return views.copyBase[copy] + CopyHeaderWords + slot;
}

/** The fd of a device slot in a copy, or -1. */
export function deviceFd(views: TableViews, copy: CopyIndex, slot: number): number {
  return views.signedWords[deviceSlotWord(views, copy, slot)];
}

/** Writer only (invariant L1): sets the fds of a copy's device slots; slots past the list are cleared. */
export function writeDeviceFds(views: TableViews, copy: CopyIndex, fds: readonly number[]): void {
  if (fds.length > MaxDeviceSlots) throw new RangeError(`${fds.length} devices exceed the ${MaxDeviceSlots} slots of a table`);
  const first = deviceSlotWord(views, copy, 0);
  for (let slot = 0; slot < MaxDeviceSlots; slot++) views.signedWords[first + slot] = slot < fds.length ? fds[slot] : -1;
  views.words[views.copyBase[copy] + CopyDeviceCount] = fds.length;
}

// ---- entries ----------------------------------------------------------------------------------------------

/** Word index of entry `extent`'s first word in a copy. */
export function entryWord(views: TableViews, copy: CopyIndex, extent: number): number {
  return views.copyBase[copy] + CopyHeaderWords + CopyDeviceWords + extent * WordsPerEntry;
}

export function entryState(views: TableViews, word: number): number {
  return views.words[word] >>> StateShift;
}

/** Device slot of an entry, or NoDevice. */
export function entryDevice(views: TableViews, word: number): number {
  const slot = views.words[word] & DeviceSlotMask;
  return slot === NoDeviceSlot ? NoDevice : slot;
}

export function entryPhysicalExtent(views: TableViews, word: number): number {
  return views.words[word + 1];
}

/** Writer only (invariant L1). */
export function writeEntry(views: TableViews, copy: CopyIndex, extent: number, device: number, physicalExtent: number, state: number): void {
  const word = entryWord(views, copy, extent);
  const slot = device === NoDevice ? NoDeviceSlot : device;
  views.words[word] = ((state << StateShift) | slot) >>> 0;
  views.words[word + 1] = physicalExtent;
}

/** Writer only: copies entry `extent` from one copy to the other. */
export function copyEntry(views: TableViews, from: CopyIndex, to: CopyIndex, extent: number): void {
  const source = entryWord(views, from, extent);
  const target = entryWord(views, to, extent);
  views.words[target] = views.words[source];
  views.words[target + 1] = views.words[source + 1];
}

/** Writer only: copies entries [0, count) and the copy header from one copy to the other. */
export function copyAll(views: TableViews, from: CopyIndex, to: CopyIndex, count: number): void {
  const source = views.copyBase[from];
  views.words.copyWithin(views.copyBase[to], source, entryWord(views, from, count));
}

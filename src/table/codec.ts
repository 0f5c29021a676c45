/**
 * Table documents as runs and as JSON, and document-level diff/apply.
 *
 * Owns: the run-length form (shared by the JSON form and the controller store's binary form), the JSON form
 * `vdmap table show --json` prints and `vdmap table push` reads (as JSON text or the same value in CBOR:
 * tableFromFileBytes), diffDocuments and applyDeltaToDocument. Knows nothing about devices (validate.ts checks
 * a parsed table), LMDB or wire frames.
 *
 * JSON form, one run per line so `diff` shows which runs changed:
 *   {
 *     "disk": "vol1", "epoch": 7, "extentSize": 1048576, "extentCount": 1048576, "devices": ["nvme-a"],
 *     "entries": [
 *       {"extent": 0, "count": 4096, "device": "nvme-a", "physical": 0},
 *       {"extent": 4096, "device": "nvme-a", "physical": 9000, "state": ["NOWRITE"]},
 *       {"extent": 4097, "count": 1044479, "state": ["ZERO"]}
 *     ]
 *   }
 * An entry is a run of `count` (default 1) extents starting at `extent` with the same device and state whose
 * physical extents count up by one from `physical` (default 0); runs without a device repeat the same
 * `physical`. `device` absent means NoDevice; `state` absent means VALID.
 *
 * Invariants:
 *   J1. Runs are maximal and tile [0, extentCount) in order: a thin or contiguous 1M-entry table is a handful
 *       of runs, and documentFromRuns(tableRuns(d)) equals d column for column.
 *   J2. tableFromJson(tableToJson(d)) equals d; malformed JSON is refused with every bad entry named
 *       (VDM_TABLE_INVALID), never a TypeError. Each real problem is named once: an entry's place (extent,
 *       count) is checked apart from what it maps, so one bad field never makes later entries look misplaced.
 *   J3. applyDeltaToDocument(a, diffDocuments(a, b)) equals b (same disk, extentSize and extentCount).
 *   J4. Applying a delta replaces the device list with the delta's and overwrites the listed extents; the
 *       other extents keep their slot numbers, which then index the new list (document.ts TableDelta).
 *   J5. Inputs are never modified.
 *
 * Thread: any; pure functions.
 * Errors leaving: VDM_TABLE_INVALID, VDM_TABLE_EPOCH_STALE.
 */
import { decode as decodeCbor } from 'cbor-x';
import { VdmapError } from '../errors/error.js';
import {
  NoDevice, stateFromNames, stateNames, type TableDelta, type TableDocument,
} from './document.js';
import { type RefusalSubject, type TableProblem, tableProblemsError } from './validate.js';

// ---- runs ----

/** Run r covers `count[r]` extents starting where run r - 1 ended (J1). */
export interface TableRuns {
  count: Uint32Array;
  device: Int32Array;
  physicalExtent: Uint32Array;
  state: Uint8Array;
}

export type TableHeader = Pick<TableDocument, 'disk' | 'epoch' | 'extentSize' | 'extentCount' | 'devices'>;

function continuesRun(doc: TableDocument, previous: number, extent: number): boolean {
  if (doc.device[extent] !== doc.device[previous] || doc.state[extent] !== doc.state[previous]) return false;
  const step = doc.device[extent] === NoDevice ? 0 : 1;
  return doc.physicalExtent[extent] === doc.physicalExtent[previous] + step;
}

/** The maximal runs of `doc` (J1), in two passes: count, then fill. */
export function tableRuns(doc: TableDocument): TableRuns {
  let runCount = doc.extentCount === 0 ? 0 : 1;
  for (let extent = 1; extent < doc.extentCount; extent++) {
    if (!continuesRun(doc, extent - 1, extent)) runCount++;
  }
  const runs: TableRuns = {
    count: new Uint32Array(runCount), device: new Int32Array(runCount),
    physicalExtent: new Uint32Array(runCount), state: new Uint8Array(runCount),
  };
  let run = -1;
  for (let extent = 0; extent < doc.extentCount; extent++) {
    if (extent === 0 || !continuesRun(doc, extent - 1, extent)) {
      run++;
      runs.device[run] = doc.device[extent];
      runs.physicalExtent[run] = doc.physicalExtent[extent];
      runs.state[run] = doc.state[extent];
    }
    runs.count[run]++;
  }
  return runs;
}

/** Expands runs into columns; throws VDM_TABLE_INVALID when the runs do not cover exactly extentCount extents. */
export function documentFromRuns(header: TableHeader, runs: TableRuns): TableDocument {
  let total = 0;
  for (const count of runs.count) total += count;
  const lengths = [runs.device.length, runs.physicalExtent.length, runs.state.length];
  if (total !== header.extentCount || lengths.some((length) => length !== runs.count.length)) {
    throw new VdmapError('VDM_TABLE_INVALID',
      `runs cover ${total} extents in ${runs.count.length} runs, the table has ${header.extentCount} extents`,
      { disk: header.disk, runs: runs.count.length, covered: total });
  }
  const doc: TableDocument = {
    ...header, devices: [...header.devices],
    device: new Int32Array(total), physicalExtent: new Uint32Array(total), state: new Uint8Array(total),
  };
  let extent = 0;
  for (let run = 0; run < runs.count.length; run++) {
    const end = extent + runs.count[run];
    doc.device.fill(runs.device[run], extent, end);
    doc.state.fill(runs.state[run], extent, end);
    if (runs.device[run] === NoDevice) {
      doc.physicalExtent.fill(runs.physicalExtent[run], extent, end);
    } else {
      for (let index = extent; index < end; index++) doc.physicalExtent[index] = runs.physicalExtent[run] + (index - extent);
    }
    extent = end;
  }
  return doc;
}

// ---- JSON ----

export interface EntryJson {
  extent: number;
  count?: number;
  device?: string;
  physical?: number;
  state?: string[];
}

export interface TableJson {
  disk: string;
  epoch: number;
  extentSize: number;
  extentCount: number;
  devices: string[];
  entries: EntryJson[];
}

export function tableToJson(doc: TableDocument): TableJson {
  const runs = tableRuns(doc);
  const entries: EntryJson[] = [];
  let extent = 0;
  for (let run = 0; run < runs.count.length; run++) {
    const entry: EntryJson = { extent };
    if (runs.count[run] !== 1) entry.count = runs.count[run];
    if (runs.device[run] !== NoDevice) entry.device = doc.devices[runs.device[run]] ?? `#${runs.device[run]}`;
    if (runs.device[run] !== NoDevice || runs.physicalExtent[run] !== 0) entry.physical = runs.physicalExtent[run];
    if (runs.state[run] !== 0) entry.state = stateNames(runs.state[run]);
    entries.push(entry);
    extent += runs.count[run];
  }
  return {
    disk: doc.disk, epoch: doc.epoch, extentSize: doc.extentSize, extentCount: doc.extentCount,
    devices: [...doc.devices], entries,
  };
}

/** The JSON text: header fields one per line, then one run per line. */
export function formatTableJson(doc: TableDocument): string {
  const json = tableToJson(doc);
  const header = (['disk', 'epoch', 'extentSize', 'extentCount', 'devices'] as const)
    .map((key) => `  ${JSON.stringify(key)}: ${JSON.stringify(json[key])},`);
  const entries = json.entries.map((entry) => `    ${JSON.stringify(entry)}`).join(',\n');
  return `{\n${header.join('\n')}\n  "entries": [\n${entries}${entries === '' ? '' : '\n'}  ]\n}\n`;
}

export function parseTableJson(text: string): TableDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new VdmapError('VDM_TABLE_INVALID', `table is not valid JSON: ${(error as Error).message}`, { reason: 'json' });
  }
  return tableFromJson(value);
}

const HEADER_KEYS = ['disk', 'epoch', 'extentSize', 'extentCount', 'devices', 'entries'];
const ENTRY_KEYS = new Set(['extent', 'count', 'device', 'physical', 'state']);
/** Above this many extents (the wire's WireLimits.maxTableExtents) a JSON table is refused before allocating. */
export const MAX_JSON_EXTENTS = 1 << 24;

/** What a table document must look like, for messages refusing one that does not. */
export const TABLE_DOCUMENT_SHAPE = 'a table document is an object {"disk": NAME, "epoch": N, "extentSize": BYTES, ' +
  '"extentCount": N, "devices": [DEVICE_ID, ...], "entries": [{"extent": N, "count": N, "device": DEVICE_ID, ' +
  '"physical": N, "state": ["INVALID"|"NOWRITE"|"ZERO", ...]}, ...]}, in JSON or CBOR, as `vdmap table show DISK --json` prints';

/**
 * The document a decoded JSON or CBOR value describes (J2), or every problem that keeps it from being one.
 * Never throws: any value (null, a number, a list, bigints, cycles) gives problems, not an exception.
 */
export function parseTableValue(value: unknown): { doc: TableDocument; problems?: undefined } | { doc?: undefined; problems: TableProblem[] } {
  const problems: TableProblem[] = [];
  const whole = (message: string): void => {
    problems.push({ extent: null, code: 'VDM_TABLE_INVALID', message });
  };
  if (!isObject(value)) {
    whole(`the table document is ${describeValue(value)}, not an object: ${TABLE_DOCUMENT_SHAPE}`);
    return { problems };
  }
  for (const key of Object.keys(value)) if (!HEADER_KEYS.includes(key)) whole(`unknown field '${key}'`);
  const disk = typeof value.disk === 'string' && value.disk.length > 0 ? value.disk : (whole(`disk is not a non-empty string: ${describeValue(value.disk)}`), '?');
  const epoch = uintField(value.epoch, 'epoch', whole);
  const extentSize = uintField(value.extentSize, 'extentSize', whole);
  const extentCount = uintField(value.extentCount, 'extentCount', whole, MAX_JSON_EXTENTS);
  const devices = Array.isArray(value.devices) && value.devices.every((id) => typeof id === 'string')
    ? (value.devices as string[]) : (whole(`devices is not a list of device ids: ${describeValue(value.devices)}`), []);
  const entries = Array.isArray(value.entries) ? value.entries : (whole(`entries is not a list: ${describeValue(value.entries)}`), []);
  if (problems.length > 0) {
    if (problems.length === HEADER_KEYS.length) whole(`no field of a table document is right: ${TABLE_DOCUMENT_SHAPE}`);
    return { problems };
  }
  const doc: TableDocument = {
    disk, epoch, extentSize, extentCount, devices: [...devices],
    device: new Int32Array(extentCount), physicalExtent: new Uint32Array(extentCount), state: new Uint8Array(extentCount),
  };
  fillEntries(doc, entries, problems, whole);
  return problems.length > 0 ? { problems } : { doc };
}

/**
 * parseTableValue that throws one VDM_TABLE_INVALID naming every problem; `subject` says what was refused
 * (validate.ts tableProblemsError), by default the disk and epoch the value itself states.
 */
export function tableFromJson(value: unknown, subject?: RefusalSubject): TableDocument {
  const parsed = parseTableValue(value);
  if (parsed.doc !== undefined) return parsed.doc;
  const stated = isObject(value) ? value : {};
  throw tableProblemsError(parsed.problems, subject ?? {
    disk: typeof stated.disk === 'string' ? stated.disk : '?', epoch: isUint(stated.epoch) ? stated.epoch : undefined,
  });
}

/**
 * The document in a table file's bytes: JSON text (anything that is valid UTF-8 without control characters
 * other than whitespace) or else CBOR. Refuses an empty file, text that is not JSON and bytes that are not
 * CBOR with VDM_CLI_INPUT, and a value that is not a table document with VDM_TABLE_INVALID (subject: the
 * file), each saying what a table document must look like; never a parser's or DataView's exception.
 */
export function tableFromFileBytes(bytes: Uint8Array, file: string, disk: string): TableDocument {
  const refuse = (what: string, reason: string, cause?: string): never => {
    throw new VdmapError('VDM_CLI_INPUT', `${file} ${what}: ${TABLE_DOCUMENT_SHAPE}`, { file, reason, ...(cause === undefined ? {} : { cause }) });
  };
  if (bytes.length === 0) refuse('is empty', 'empty');
  let value: unknown;
  const text = asText(bytes);
  if (text !== undefined) {
    try {
      value = JSON.parse(text);
    } catch (error) {
      refuse(`is text but not JSON (${jsonErrorPlace(text, error as Error)}), and not CBOR`, 'json', (error as Error).message);
    }
  } else {
    try {
      value = decodeCbor(bytes);
    } catch (error) {
      refuse('is neither JSON text nor a complete CBOR value', 'cbor', (error as Error).message);
    }
  }
  return tableFromJson(value, { disk, file });
}

/** The text of `bytes` when they are UTF-8 without control characters other than whitespace, else undefined. */
function asText(bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text) ? undefined : text;
}

/** Where a JSON.parse error is: "line L, column C" when Node's message gives the position, else the token. */
function jsonErrorPlace(text: string, error: Error): string {
  const match = /position (\d+)/.exec(error.message);
  if (match === null) {
    if (/end of (JSON )?input|Unterminated/i.test(error.message)) return 'it ends too soon';
    const token = /^Unexpected token '(.{1,4})'/.exec(error.message);
    return token === null ? 'a syntax error' : `unexpected '${token[1]}'`;
  }
  const position = Number(match[1]);
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `syntax error at line ${line}, column ${column}`;
}

/**
 * Writes each well-formed entry's run into `doc`; names every problem of every entry, each once. Where an entry
 * lies (extent, count) is checked apart from what it maps (device, physical, state): an entry naming an unknown
 * device still advances the tiling, so the entries after it are not also blamed for starting in the wrong place.
 * After an entry whose place is unknown (not an object, no valid extent or count) the next entry's extent is
 * taken as given. Coverage is checked at the end only when the last entry's end is known.
 */
function fillEntries(doc: TableDocument, entries: unknown[], problems: TableProblem[], whole: (message: string) => void): void {
  const slotOf = new Map(doc.devices.map((id, slot) => [id, slot]));
  let next: number | undefined = 0;
  entries.forEach((raw, index) => {
    const entry = parseEntry(raw, index, next, slotOf, doc.extentCount, problems);
    next = entry.end;
    if (entry.mapping === undefined) return;
    const { extent, count, slot, physical, state } = entry.mapping;
    const end = extent + count;
    doc.device.fill(slot, extent, end);
    doc.state.fill(state, extent, end);
    const step = slot === NoDevice ? 0 : 1;
    for (let at = extent; at < end; at++) doc.physicalExtent[at] = physical + step * (at - extent);
  });
  if (next !== undefined && next < doc.extentCount) {
    whole(`entries cover ${next} extents, the table has ${doc.extentCount} (extents ${next}-${doc.extentCount - 1} have no entry)`);
  }
}

interface ParsedEntry {
  extent: number;
  count: number;
  slot: number;
  physical: number;
  state: number;
}

/**
 * One entry's problems. `end` is where the next entry should start (undefined when this entry's place is
 * unknown); `mapping` is the whole entry when it has no problem at all.
 */
function parseEntry(raw: unknown, index: number, expectedExtent: number | undefined, slotOf: Map<string, number>,
  extentCount: number, problems: TableProblem[]): { end: number | undefined; mapping: ParsedEntry | undefined } {
  const before = problems.length;
  const extentHint = isObject(raw) && isUint(raw.extent) ? raw.extent : null;
  const bad = (message: string): void => {
    problems.push({ extent: extentHint, code: 'VDM_TABLE_INVALID', message: `entries[${index}]: ${message}` });
  };
  if (!isObject(raw)) {
    bad(`is not an object but ${describeValue(raw)}`);
    return { end: undefined, mapping: undefined };
  }
  for (const key of Object.keys(raw)) if (!ENTRY_KEYS.has(key)) bad(`unknown field '${key}'`);
  // Where the entry lies.
  const extent = isUint(raw.extent) ? raw.extent : (bad(`extent is not a non-negative integer: ${describeValue(raw.extent)}`), undefined);
  const count = raw.count === undefined ? 1 : isUint(raw.count) && raw.count > 0 ? raw.count
    : (bad(`count is not a positive integer: ${describeValue(raw.count)}`), undefined);
  if (extent !== undefined && expectedExtent !== undefined && extent !== expectedExtent) {
    bad(`starts at extent ${extent}, expected ${expectedExtent} (entries must tile the table in order)`);
  }
  if (extent !== undefined && count !== undefined && extent + count > extentCount) {
    bad(`reaches extent ${extent + count}, past the table's ${extentCount} extents`);
  }
  const end = extent !== undefined && count !== undefined ? extent + count : undefined;
  // What it maps.
  const physical = raw.physical === undefined ? 0 : isUint(raw.physical) && raw.physical <= 0xffff_ffff
    ? raw.physical : (bad(`physical is not an integer in 0..4294967295: ${describeValue(raw.physical)}`), 0);
  const slot = raw.device === undefined ? NoDevice : typeof raw.device === 'string' ? slotOf.get(raw.device) : undefined;
  if (slot === undefined) bad(`device ${describeValue(raw.device)} is not in the devices list`);
  const state = Array.isArray(raw.state) && raw.state.every((name) => typeof name === 'string')
    ? stateFromNames(raw.state as string[]) : raw.state === undefined ? 0 : undefined;
  if (state === undefined) bad(`state ${describeValue(raw.state)} is not a list of INVALID, NOWRITE, ZERO`);
  if (slot !== undefined && slot !== NoDevice && count !== undefined && physical + count - 1 > 0xffff_ffff) {
    bad('its physical extents pass 4294967295');
  }
  if (problems.length > before) return { end, mapping: undefined };
  return { end, mapping: { extent: extent as number, count: count as number, slot: slot as number, physical, state: state as number } };
}

/** A short, safe rendering of any decoded value for a message (never throws, never longer than ~60 chars). */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) {
    if (value.length > 4) return `a list of ${value.length} items`;
    return `[${value.map((item) => (typeof item === 'object' && item !== null ? '...' : describeValue(item))).join(', ')}]`;
  }
  if (ArrayBuffer.isView(value)) return `binary data (${value.byteLength} bytes)`;
  return `a ${typeof value === 'object' ? 'map' : typeof value}`;
}

function uintField(value: unknown, fieldName: string, whole: (message: string) => void, maximum = Number.MAX_SAFE_INTEGER): number {
  if (isUint(value) && value <= maximum) return value;
  whole(`${fieldName} is not an integer in 0..${maximum}: ${describeValue(value)}`);
  return 0;
}

function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---- diff and apply ----

/** The delta that turns `a` into `b` (J3): every extent whose device slot, physical extent or state differs. */
export function diffDocuments(a: TableDocument, b: TableDocument): TableDelta {
  if (a.disk !== b.disk || a.extentSize !== b.extentSize || a.extentCount !== b.extentCount) {
    throw new VdmapError('VDM_TABLE_INVALID',
      `cannot diff disk '${a.disk}' (${a.extentCount} x ${a.extentSize}) with disk '${b.disk}' (${b.extentCount} x ${b.extentSize})`,
      { from: a.disk, to: b.disk });
  }
  const differs = (extent: number): boolean => a.device[extent] !== b.device[extent] ||
    a.physicalExtent[extent] !== b.physicalExtent[extent] || a.state[extent] !== b.state[extent];
  let count = 0;
  for (let extent = 0; extent < a.extentCount; extent++) if (differs(extent)) count++;
  const delta: TableDelta = {
    disk: b.disk, fromEpoch: a.epoch, toEpoch: b.epoch, devices: [...b.devices],
    extent: new Uint32Array(count), device: new Int32Array(count), physicalExtent: new Uint32Array(count),
    state: new Uint8Array(count),
  };
  let index = 0;
  for (let extent = 0; extent < a.extentCount; extent++) {
    if (!differs(extent)) continue;
    delta.extent[index] = extent;
    delta.device[index] = b.device[extent];
    delta.physicalExtent[index] = b.physicalExtent[extent];
    delta.state[index] = b.state[extent];
    index++;
  }
  return delta;
}

/**
 * A new document: `doc` with `delta` applied (J4, J5) at epoch delta.toEpoch. Checks that the delta fits the
 * document, not that the result is a valid table (validate.ts validateDelta does both).
 */
export function applyDeltaToDocument(doc: TableDocument, delta: TableDelta): TableDocument {
  if (delta.disk !== doc.disk) {
    throw new VdmapError('VDM_TABLE_INVALID', `delta is for disk '${delta.disk}', the table is '${doc.disk}'`, { disk: doc.disk });
  }
  if (delta.fromEpoch !== doc.epoch) {
    throw new VdmapError('VDM_TABLE_EPOCH_STALE', `delta starts at epoch ${delta.fromEpoch}, the table is at epoch ${doc.epoch}`,
      { disk: doc.disk, epoch: doc.epoch, fromEpoch: delta.fromEpoch });
  }
  const length = delta.extent.length;
  if (delta.device.length !== length || delta.physicalExtent.length !== length || delta.state.length !== length) {
    throw new VdmapError('VDM_TABLE_INVALID', 'delta columns differ in length', { disk: doc.disk });
  }
  const result: TableDocument = {
    ...doc, epoch: delta.toEpoch, devices: [...delta.devices],
    device: doc.device.slice(), physicalExtent: doc.physicalExtent.slice(), state: doc.state.slice(),
  };
  let previous = -1;
  for (let index = 0; index < length; index++) {
    const extent = delta.extent[index];
    if (extent >= doc.extentCount || extent <= previous) {
      throw new VdmapError('VDM_TABLE_INVALID',
        `delta entry ${index} (extent ${extent}) is past the table or out of order`, { disk: doc.disk, index, extent });
    }
    previous = extent;
    result.device[extent] = delta.device[index];
    result.physicalExtent[extent] = delta.physicalExtent[index];
    result.state[extent] = delta.state[index];
  }
  return result;
}

/**
 * Field parsers for untrusted decoded values: each takes `unknown` and returns a typed value built afresh, or
 * throws a ShapeProblem naming the field and why. codec.ts composes them into one parser per message type.
 *
 * Owns: what "a name", "a u32", "a byte string of N bytes", "plain data" mean on the wire. Knows nothing
 * about message types.
 *
 * Invariants:
 *   S1. A parser never returns its input object itself: objects are rebuilt with only the declared keys, so
 *       an accepted value has no extra keys, no foreign prototype and nothing the schema did not name.
 *   S2. Parsers are bounded: every loop is over a length checked against a limit first, and recursion over
 *       free-form data stops at WireLimits.maxDataDepth.
 *   S3. ShapeProblem never escapes this folder: codec.ts turns it into VDM_WIRE_MALFORMED.
 *
 * Thread: any; pure functions.
 */
import { isErrorCode } from '../errors/catalogue.js';
import type { ErrorRecord } from '../errors/error.js';
import { type PlainData, WireLimits } from './messages.js';

/** Thrown by parsers, caught by codec.ts (S3). */
export class ShapeProblem {
  constructor(readonly field: string, readonly reason: string) {}
}

export type Parser<T> = (value: unknown, field: string) => T;

export function fail(field: string, reason: string): never {
  throw new ShapeProblem(field, reason);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Parses an object with exactly the given keys (S1); `optional` keys may be absent. */
export function record<T>(
  value: unknown, field: string, parsers: { [K in keyof T]: Parser<T[K]> }, optional: ReadonlySet<string> = NONE,
): T {
  if (!isPlainObject(value)) fail(field, 'is not a map');
  for (const key of Object.keys(value)) {
    if (!Object.prototype.hasOwnProperty.call(parsers, key)) fail(joinField(field, key), 'is not a known field');
  }
  const result: Record<string, unknown> = {};
  for (const key of Object.keys(parsers)) {
    const present = Object.prototype.hasOwnProperty.call(value, key);
    if (!present && optional.has(key)) continue;
    if (!present) fail(joinField(field, key), 'is missing');
    result[key] = (parsers as Record<string, Parser<unknown>>)[key](value[key], joinField(field, key));
  }
  return result as T;
}
const NONE: ReadonlySet<string> = new Set();

function joinField(field: string, key: string): string {
  return field === '' ? key : `${field}.${key}`;
}

export const safeUint: Parser<number> = (value, field) => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(field, 'is not a non-negative safe integer');
  }
  return value;
};

export function uintAtMost(maximum: number, minimum = 0): Parser<number> {
  return (value, field) => {
    const n = safeUint(value, field);
    if (n < minimum || n > maximum) fail(field, `is ${n}, outside ${minimum}..${maximum}`);
    return n;
  };
}

export const uint32: Parser<number> = uintAtMost(0xffff_ffff);
export const positiveSafe: Parser<number> = uintAtMost(Number.MAX_SAFE_INTEGER, 1);

export function powerOfTwoBetween(minimum: number, maximum: number): Parser<number> {
  return (value, field) => {
    const n = uintAtMost(maximum, minimum)(value, field);
    if (!isPowerOfTwo(n)) fail(field, `is ${n}, not a power of two`);
    return n;
  };
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

export const boolean: Parser<boolean> = (value, field) => {
  if (typeof value !== 'boolean') fail(field, 'is not a boolean');
  return value;
};

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** Non-empty text of at most `maximum` UTF-16 units without control characters. */
export function text(maximum: number, allowControl = false): Parser<string> {
  return (value, field) => {
    if (typeof value !== 'string') fail(field, 'is not a string');
    if (value.length === 0) fail(field, 'is empty');
    if (value.length > maximum) fail(field, `is ${value.length} characters, above ${maximum}`);
    if (!allowControl && CONTROL_CHARACTER.test(value)) fail(field, 'contains control characters');
    return value;
  };
}

export const name: Parser<string> = text(WireLimits.maxNameLength);

export function literal<const T extends string | number | boolean>(expected: T): Parser<T> {
  return (value, field) => {
    if (value !== expected) fail(field, `is ${JSON.stringify(value)}, expected ${JSON.stringify(expected)}`);
    return expected;
  };
}

export function oneOf<T extends string>(allowed: readonly T[]): Parser<T> {
  return (value, field) => {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      fail(field, `is not one of ${allowed.join(', ')}`);
    }
    return value as T;
  };
}

export function nullable<T>(parser: Parser<T>): Parser<T | null> {
  return (value, field) => (value === null ? null : parser(value, field));
}

export function list<T>(item: Parser<T>, maximum: number): Parser<T[]> {
  return (value, field) => {
    if (!Array.isArray(value)) fail(field, 'is not an array');
    if (value.length > maximum) fail(field, `has ${value.length} items, above ${maximum}`);
    return value.map((element, index) => item(element, `${field}[${index}]`));
  };
}

/** A list of distinct names. */
export function nameList(maximum: number): Parser<string[]> {
  return (value, field) => {
    const names = list(name, maximum)(value, field);
    if (new Set(names).size !== names.length) fail(field, 'names an item twice');
    return names;
  };
}

/** A byte string of exactly `length` bytes, as a plain Uint8Array (cbor-x hands out Buffers). */
export function bytes(length: number): Parser<Uint8Array> {
  return (value, field) => {
    if (!isUint8Array(value)) fail(field, 'is not a byte string');
    if (value.byteLength !== length) fail(field, `is ${value.byteLength} bytes, expected ${length}`);
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  };
}

function isUint8Array(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && !(value instanceof Uint8ClampedArray);
}

type ColumnConstructor = Int32ArrayConstructor | Uint32ArrayConstructor | Uint8ArrayConstructor;
type ColumnOf<C extends ColumnConstructor> = InstanceType<C>;

/** A typed array of exactly this class (a byte string for Uint8Array) with at most `maximum` items. */
export function column<C extends ColumnConstructor>(kind: C, maximum: number): Parser<ColumnOf<C>> {
  return (value, field) => {
    const matches = kind === Uint8Array ? isUint8Array(value) : value instanceof kind;
    if (!matches) fail(field, `is not a ${kind.name}`);
    const array = value as ColumnOf<C>;
    if (array.length > maximum) fail(field, `has ${array.length} items, above ${maximum}`);
    return (kind === Uint8Array ? new Uint8Array(array.buffer, array.byteOffset, array.length) : array) as ColumnOf<C>;
  };
}

/** Free-form data (S2): null, booleans, finite numbers, strings, byte/Int32/Uint32 arrays, arrays, plain maps. */
export function plainData(value: unknown, field: string, depth = 0): PlainData {
  if (depth > WireLimits.maxDataDepth) fail(field, `nests deeper than ${WireLimits.maxDataDepth}`);
  if (value === null || value === undefined || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(field, 'is not a finite number');
    return value;
  }
  if (isUint8Array(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof Int32Array || value instanceof Uint32Array) return value;
  if (Array.isArray(value)) return value.map((item, index) => plainData(item, `${field}[${index}]`, depth + 1));
  if (isPlainObject(value)) return plainMap(value, field, depth);
  return fail(field, `holds a value of an unsupported kind (${describe(value)})`);
}

export const plainMapParser: Parser<{ [key: string]: PlainData }> = (value, field) => {
  if (!isPlainObject(value)) fail(field, 'is not a map');
  return plainMap(value, field, 0);
};

function plainMap(value: Record<string, unknown>, field: string, depth: number): { [key: string]: PlainData } {
  const result: { [key: string]: PlainData } = {};
  for (const key of Object.keys(value)) {
    Object.defineProperty(result, key, {
      value: plainData(value[key], joinField(field, key), depth + 1), enumerable: true, writable: true, configurable: true,
    });
  }
  return result;
}

function describe(value: unknown): string {
  if (typeof value !== 'object' || value === null) return typeof value;
  return (value as object).constructor?.name ?? 'object without prototype';
}

const REMOTE_CODE = /^VDM_[A-Z0-9_]{1,60}$/;

/**
 * An ErrorRecord from a peer. A well-formed code this build does not know (a newer peer's catalogue) becomes
 * VDM_INTERNAL with the original code kept in details.remoteCode, so the record stays usable here.
 */
export const errorRecord: Parser<ErrorRecord> = (value, field) => {
  const parsed = record<{ code: string; message: string; details: { [key: string]: PlainData } }>(value, field, {
    code: text(64), message: text(WireLimits.maxTextLength, true), details: plainMapParser,
  }, new Set(['details']));
  if (!REMOTE_CODE.test(parsed.code)) fail(`${field}.code`, 'is not a VDM_ code');
  const details = parsed.details as Record<string, unknown> | undefined;
  if (isErrorCode(parsed.code)) {
    return details === undefined ? { code: parsed.code, message: parsed.message } : { code: parsed.code, message: parsed.message, details };
  }
  return { code: 'VDM_INTERNAL', message: parsed.message, details: { ...details, remoteCode: parsed.code } };
};

/**
 * Checks of admin request parameters: each reads one field of an untrusted `params` map and returns it typed,
 * or throws VDM_ADMIN_INVALID_PARAMS naming the field (admin-api.ts A1). The wire codec already bounded sizes
 * and depth; these check meaning.
 *
 * Thread: the controller's main thread (and the agent's, for its admin socket).
 * Errors leaving: VDM_ADMIN_INVALID_PARAMS.
 */
import { VdmapError } from '../errors/error.js';
import { MIN_EXTENT_SIZE } from '../table/validate.js';
import { NAME_RULE } from './store/store.js';

export type Params = Record<string, unknown>;

const NAME = /^[A-Za-z0-9._:@-]{1,128}$/;

export function invalid(field: string, reason: string): VdmapError {
  return new VdmapError('VDM_ADMIN_INVALID_PARAMS', `parameter '${field}' ${reason}`, { field, reason });
}

/** Refuses keys the method does not take (a typo must not silently mean the default). */
export function onlyKeys(params: Params, allowed: readonly string[]): void {
  for (const key of Object.keys(params)) {
    if (!allowed.includes(key)) throw invalid(key, `is not a parameter of this method (it takes ${allowed.join(', ') || 'none'})`);
  }
}

export function nameParam(params: Params, field: string): string {
  const value = params[field];
  if (typeof value !== 'string' || !NAME.test(value)) throw invalid(field, `is not a name (${NAME_RULE})`);
  return value;
}

export function textParam(params: Params, field: string): string {
  const value = params[field];
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096) throw invalid(field, 'is not a string of 1-4096 characters');
  return value;
}

export function uintParam(params: Params, field: string, minimum = 0): number {
  const value = params[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) throw invalid(field, `is not an integer >= ${minimum}`);
  return value;
}

export function optionalUint(params: Params, field: string, minimum = 0): number | undefined {
  return params[field] === undefined || params[field] === null ? undefined : uintParam(params, field, minimum);
}

/** The largest extent size the store takes (store.ts checkDisk). */
export const MAX_EXTENT_SIZE = 2 ** 40;

/** A disk's extent size: a power of two from MIN_EXTENT_SIZE (4096) to MAX_EXTENT_SIZE. */
export function isExtentSize(value: number): boolean {
  return Number.isSafeInteger(value) && value >= MIN_EXTENT_SIZE && value <= MAX_EXTENT_SIZE && Number.isInteger(Math.log2(value));
}

/** An optional extent size (isExtentSize), refused with a message that says what an extent size must be. */
export function optionalExtentSize(params: Params, field: string): number | undefined {
  const value = params[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !isExtentSize(value)) throw invalid(field, `is ${String(value)}: an extent size is a power of two >= ${MIN_EXTENT_SIZE} (4K, 8K, ... 1M, ...)`);
  return value;
}

export function optionalBoolean(params: Params, field: string): boolean | undefined {
  const value = params[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalid(field, 'is not a boolean');
  return value;
}

export function optionalNames(params: Params, field: string): string[] | undefined {
  const value = params[field];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && NAME.test(item))) {
    throw invalid(field, `is not a list of names (${NAME_RULE})`);
  }
  if (new Set(value).size !== value.length) throw invalid(field, 'names an item twice');
  return value as string[];
}

export function objectParam(params: Params, field: string): Record<string, unknown> {
  const value = params[field];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(field, 'is not an object');
  return value as Record<string, unknown>;
}

export function listParam(params: Params, field: string): unknown[] {
  const value = params[field];
  if (!Array.isArray(value)) throw invalid(field, 'is not a list');
  return value;
}

/**
 * Numbers as operators write them on the command line (epochs, timeouts, worker counts): one parser for every
 * command, so that a value that is not a number is refused here, as VDM_CLI_USAGE naming the option and the
 * value, before anything is sent to a daemon (which would otherwise see NaN, and refuse it as a malformed message).
 */
import { VdmapError } from '../errors/error.js';

export interface IntegerRange {
  /** Smallest allowed value (default 0). */
  min?: number;
  /** Largest allowed value (default Number.MAX_SAFE_INTEGER). */
  max?: number;
}

/** A whole decimal number in [min, max]; `what` names the option or argument ('--epoch', 'FROM'). */
export function parseInteger(text: string, what: string, range: IntegerRange = {}): number {
  const min = range.min ?? 0;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new VdmapError('VDM_CLI_USAGE', `${what} '${text}' is not a whole number`, { option: what, value: text });
  }
  if (value < min || value > max) {
    const bounds = range.max === undefined ? `at least ${min}` : `from ${min} to ${max}`;
    throw new VdmapError('VDM_CLI_USAGE', `${what} '${text}' is out of range: it must be ${bounds}`, { option: what, value: text });
  }
  return value;
}

/** parseInteger for an optional option: undefined stays undefined. */
export function parseOptionalInteger(text: string | undefined, what: string, range: IntegerRange = {}): number | undefined {
  return text === undefined ? undefined : parseInteger(text, what, range);
}

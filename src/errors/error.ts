/**
 * VdmapError and the plain error record that crosses boundaries.
 *
 * Owns: how an error is represented in-process (VdmapError, an Error subclass with `code`) and across a
 * worker, CBOR, NBD or CLI boundary (ErrorRecord, a plain object). Node 20's postMessage turns an Error
 * subclass into a plain Error and drops `code`, so only ErrorRecord may cross a thread.
 *
 * Invariants:
 *   E1. Every VdmapError carries a catalogue code (src/errors/catalogue.ts).
 *   E2. toRecord(fromRecord(r)) deep-equals r: the code survives any boundary.
 */
import { Catalogue, type ErrorCode, isErrorCode } from './catalogue.js';

export interface ErrorRecord {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export class VdmapError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'VdmapError';
    this.code = code;
    this.details = details;
  }

  get hint(): string {
    return Catalogue[this.code].hint;
  }

  toRecord(): ErrorRecord {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }

  static fromRecord(record: ErrorRecord): VdmapError {
    return new VdmapError(record.code, record.message, record.details);
  }
}

/** Turns anything thrown into a record; unknown errors become VDM_INTERNAL and keep their stack in details. */
export function toErrorRecord(error: unknown): ErrorRecord {
  if (error instanceof VdmapError) return error.toRecord();
  if (isErrorRecord(error)) return error;
  const e = error instanceof Error ? error : new Error(String(error));
  return { code: 'VDM_INTERNAL', message: e.message, details: { stack: e.stack } };
}

export function isErrorRecord(value: unknown): value is ErrorRecord {
  return typeof value === 'object' && value !== null && isErrorCode((value as { code?: unknown }).code) &&
    typeof (value as { message?: unknown }).message === 'string';
}

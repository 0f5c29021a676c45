/**
 * vdmap error -> NBD error: the one place that folds a catalogue code into an NBD error value and builds the
 * message a structured error reply carries.
 *
 * Owns: the errno-class -> NBD_E* table and the `"CODE: message"` text (proto.md "Error values",
 * "NBD_REPLY_TYPE_ERROR"). Does not know which request failed or how the reply is framed (transmission.ts),
 * nor which code an export raises (src/errors/catalogue.ts decides the errno class).
 *
 * Invariants:
 *   N1. Every code maps to one of the eight NBD error values; never to 0.
 *   N2. Anything that is not a VdmapError or an ErrorRecord becomes VDM_INTERNAL (NBD_EIO).
 *   N3. A message is valid UTF-8 of at most MAXIMUM_STRING_LENGTH bytes and contains no NUL.
 *
 * Thread: whichever runs the connection (main or worker). Error codes: none leave; it only translates.
 */
import type { ErrnoClass, ErrorCode } from '../errors/catalogue.js';
import { errnoClassOf } from '../errors/errno.js';
import { type ErrorRecord, toErrorRecord } from '../errors/error.js';
import {
  MAXIMUM_STRING_LENGTH,
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOMEM,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EOVERFLOW,
  NBD_EPERM,
  NBD_ESHUTDOWN,
} from './protocol.js';

const nbdErrorByErrnoClass: Record<ErrnoClass, number> = {
  EPERM: NBD_EPERM,
  EIO: NBD_EIO,
  ENOMEM: NBD_ENOMEM,
  EINVAL: NBD_EINVAL,
  ENOSPC: NBD_ENOSPC,
  EOVERFLOW: NBD_EOVERFLOW,
  ENOTSUP: NBD_ENOTSUP,
  ESHUTDOWN: NBD_ESHUTDOWN,
};

/** An error as it leaves on the wire: the NBD error value and the message of a structured error chunk. */
export interface NbdError {
  value: number;
  message: Buffer;
  /** Where the failure happened, when the error record says so (details.offset); for NBD_REPLY_TYPE_ERROR_OFFSET. */
  offset: number | undefined;
}

/** N1: the NBD error value a code folds into. */
export function nbdErrorValueOf(code: ErrorCode): number {
  return nbdErrorByErrnoClass[errnoClassOf(code)] ?? NBD_EIO;
}

/** N2, N3: anything a request raised, as the NBD error value and `"CODE: message"` bytes. */
export function nbdErrorOf(error: unknown): NbdError {
  const record = toErrorRecord(error);
  const offset = record.details?.offset;
  return {
    value: nbdErrorValueOf(record.code),
    message: errorMessageBytes(record),
    offset: typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0 ? offset : undefined,
  };
}

/** N3: `"CODE: message"`, NULs removed, cut to at most MAXIMUM_STRING_LENGTH bytes on a character boundary. */
export function errorMessageBytes(record: ErrorRecord): Buffer {
  return boundedString(`${record.code}: ${record.message}`);
}

/** A protocol string: no NUL, valid UTF-8, at most MAXIMUM_STRING_LENGTH bytes. */
export function boundedString(text: string): Buffer {
  const bytes = Buffer.from(text.replaceAll('\0', ''), 'utf8');
  if (bytes.length <= MAXIMUM_STRING_LENGTH) return bytes;
  let end = MAXIMUM_STRING_LENGTH;
  // Step back over UTF-8 continuation bytes (10xxxxxx) so a character is never split.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

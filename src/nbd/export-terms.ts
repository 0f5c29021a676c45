/**
 * Export terms: what the server promises a client about one export, derived from its capabilities alone:
 * the transmission flags and the block size constraints (proto.md "Transmission flags", "Block size
 * constraints"), and the record of what one handshake agreed (NegotiatedSession).
 *
 * Owns: the capability -> flag table and the clamping of an export's block sizes to what the protocol allows.
 * Does not know: how the terms are sent (handshake.ts) or enforced (request-validation.ts).
 *
 * Invariants:
 *   T1. A flag is advertised only for a feature the export's capabilities claim; write-type features (trim,
 *       write zeroes, fast zero) are never advertised on a read-only export.
 *   T2. NBD_FLAG_SEND_DF is advertised only once structured replies were negotiated (every read reply is a
 *       single content chunk, so DF always holds).
 *   T3. minimum is a power of two in [1, 65536]; preferred a power of two >= max(minimum, 512); maximum a
 *       multiple of minimum, never above the hard request cap, and >= min(preferred, cap).
 *
 * Thread: whichever runs the connection. Error codes: none.
 */
import type { Export } from './export.js';
import {
  LARGEST_MINIMUM_BLOCK_SIZE,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from './protocol.js';

export interface BlockSizeConstraints {
  minimum: number;
  preferred: number;
  maximum: number;
}

/** What one handshake agreed; the transmission phase runs on exactly this. */
export interface NegotiatedSession {
  export: Export;
  /** The export's canonical name (the default export resolved). */
  exportName: string;
  structuredReplies: boolean;
  /** The id given to base:allocation when the client selected it for this export; undefined otherwise. */
  allocationContextId: number | undefined;
  transmissionFlags: number;
  blockSizes: BlockSizeConstraints;
}

/** T1, T2: the 16-bit transmission flags for `target`. */
export function transmissionFlagsOf(target: Export, structuredReplies: boolean): number {
  const c = target.capabilities;
  const writable = !c.readOnly;
  let flags = NBD_FLAG_HAS_FLAGS;
  if (c.readOnly) flags |= NBD_FLAG_READ_ONLY;
  if (c.flush) flags |= NBD_FLAG_SEND_FLUSH;
  if (c.fua) flags |= NBD_FLAG_SEND_FUA;
  if (writable && c.trim) flags |= NBD_FLAG_SEND_TRIM;
  if (writable && c.writeZeroes) flags |= NBD_FLAG_SEND_WRITE_ZEROES;
  if (writable && c.writeZeroes && c.fastZero) flags |= NBD_FLAG_SEND_FAST_ZERO;
  if (c.cache) flags |= NBD_FLAG_SEND_CACHE;
  if (structuredReplies) flags |= NBD_FLAG_SEND_DF;
  if (c.multiConn) flags |= NBD_FLAG_CAN_MULTI_CONN;
  return flags;
}

/** T3: the export's block sizes, made legal and capped at `requestCap` bytes. */
export function blockSizeConstraintsOf(target: Export, requestCap: number): BlockSizeConstraints {
  const c = target.capabilities;
  const minimum = Math.min(powerOfTwoAtLeast(c.minimumBlockSize), LARGEST_MINIMUM_BLOCK_SIZE);
  const preferred = powerOfTwoAtLeast(Math.max(c.preferredBlockSize, minimum, 512));
  const cap = Math.max(minimum, requestCap - (requestCap % minimum));
  const wanted = c.maximumBlockSize > 0 ? Math.min(c.maximumBlockSize, cap) : cap;
  const floor = Math.min(preferred, cap);
  const maximum = Math.max(wanted - (wanted % minimum), floor);
  return { minimum, preferred, maximum };
}

function powerOfTwoAtLeast(value: number): number {
  if (!Number.isFinite(value) || value <= 1) return 1;
  let power = 1;
  while (power < value) power *= 2;
  return power;
}

/** The negotiated session for `target`, once the handshake chose it. */
export function sessionFor(
  target: Export,
  exportName: string,
  structuredReplies: boolean,
  allocationContextId: number | undefined,
  requestCap: number,
): NegotiatedSession {
  return {
    export: target,
    exportName,
    structuredReplies,
    allocationContextId: structuredReplies ? allocationContextId : undefined,
    transmissionFlags: transmissionFlagsOf(target, structuredReplies),
    blockSizes: blockSizeConstraintsOf(target, requestCap),
  };
}

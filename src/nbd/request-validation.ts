/**
 * Request validation: the first of the three steps of a request (validate -> execute -> reply). Decides,
 * before the export sees a request, whether the protocol allows it (proto.md "Request types", "Block size
 * constraints", "Error values").
 *
 * Owns: the per-session rules (which commands and flags were advertised) and the order of the checks.
 * Does not know: sockets, replies, or what the export would do.
 *
 * Invariants (checked in this order; the first failure wins):
 *   V1. While shutting down, every request fails with VDM_NBD_SHUTDOWN (ESHUTDOWN).
 *   V2. WRITE, TRIM, WRITE_ZEROES on a read-only export fail with VDM_IO_READ_ONLY (EPERM), advertised or not.
 *   V3. A command not advertised (or unknown) fails with VDM_NBD_UNKNOWN_COMMAND (EINVAL); BLOCK_STATUS
 *       without a negotiated base:allocation context fails with VDM_NBD_INVALID_REQUEST (EINVAL).
 *   V4. A flag not valid for the command, or not advertised, fails with VDM_NBD_INVALID_REQUEST (EINVAL).
 *   V5. FLUSH must have offset and length 0; every other command a nonzero length (VDM_NBD_INVALID_REQUEST).
 *   V6. Offset and length are multiples of the minimum block size (VDM_NBD_MISALIGNED, EINVAL).
 *   V7. READ, WRITE, CACHE, and WRITE_ZEROES without FAST_ZERO are at most the maximum block size
 *       (VDM_NBD_TOO_LARGE, EINVAL).
 *   V8. offset + length <= size: writes past the end fail with VDM_NBD_WRITE_PAST_END (ENOSPC), anything
 *       else with VDM_IO_OUT_OF_RANGE (EINVAL).
 *   V9. Validation allocates only when it fails.
 *
 * Thread: whichever runs the connection. Error codes: VDM_NBD_SHUTDOWN, VDM_IO_READ_ONLY,
 * VDM_NBD_UNKNOWN_COMMAND, VDM_NBD_INVALID_REQUEST, VDM_NBD_MISALIGNED, VDM_NBD_TOO_LARGE,
 * VDM_NBD_WRITE_PAST_END, VDM_IO_OUT_OF_RANGE (returned, never thrown).
 */
import { VdmapError } from '../errors/error.js';
import type { NegotiatedSession } from './export-terms.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from './protocol.js';

const COMMAND_COUNT = 8;
const COMMAND_NAMES = ['READ', 'WRITE', 'DISC', 'FLUSH', 'TRIM', 'CACHE', 'WRITE_ZEROES', 'BLOCK_STATUS'];

/** What one session allows, computed once at the start of transmission. */
export class RequestRules {
  /** Bit mask of flags valid per command, or -1 for a command this session does not support. */
  private readonly allowedFlags: Int32Array;
  readonly size: number;
  readonly readOnly: boolean;
  readonly minimumBlockSize: number;
  readonly maximumBlockSize: number;
  readonly blockStatusNegotiated: boolean;

  constructor(session: NegotiatedSession) {
    const advertised = session.transmissionFlags;
    const has = (flag: number): boolean => (advertised & flag) !== 0;
    const fua = has(NBD_FLAG_SEND_FUA) ? NBD_CMD_FLAG_FUA : 0;
    const allowed = new Int32Array(COMMAND_COUNT).fill(-1);
    allowed[NBD_CMD_READ] = fua | (has(NBD_FLAG_SEND_DF) ? NBD_CMD_FLAG_DF : 0);
    allowed[NBD_CMD_WRITE] = fua;
    allowed[NBD_CMD_DISC] = 0xffff; // flags are irrelevant: the connection closes
    if (has(NBD_FLAG_SEND_FLUSH)) allowed[NBD_CMD_FLUSH] = fua;
    if (has(NBD_FLAG_SEND_TRIM)) allowed[NBD_CMD_TRIM] = fua;
    if (has(NBD_FLAG_SEND_CACHE)) allowed[NBD_CMD_CACHE] = fua;
    if (has(NBD_FLAG_SEND_WRITE_ZEROES)) {
      allowed[NBD_CMD_WRITE_ZEROES] = fua | NBD_CMD_FLAG_NO_HOLE | (has(NBD_FLAG_SEND_FAST_ZERO) ? NBD_CMD_FLAG_FAST_ZERO : 0);
    }
    allowed[NBD_CMD_BLOCK_STATUS] = fua | NBD_CMD_FLAG_REQ_ONE;
    this.allowedFlags = allowed;
    this.size = session.export.size;
    this.readOnly = session.export.capabilities.readOnly;
    this.minimumBlockSize = session.blockSizes.minimum;
    this.maximumBlockSize = session.blockSizes.maximum;
    this.blockStatusNegotiated = session.allocationContextId !== undefined;
  }

  /** V1..V9: undefined when the request may go to the export, else the error to reply with. */
  validate(type: number, flags: number, offset: number, length: number, shuttingDown: boolean): VdmapError | undefined {
    if (shuttingDown) return new VdmapError('VDM_NBD_SHUTDOWN', 'the server is shutting down');
    const writes = type === NBD_CMD_WRITE || type === NBD_CMD_TRIM || type === NBD_CMD_WRITE_ZEROES;
    if (writes && this.readOnly) return new VdmapError('VDM_IO_READ_ONLY', `${COMMAND_NAMES[type]} on a read-only export`);
    const allowed = type < COMMAND_COUNT ? this.allowedFlags[type] : -1;
    if (allowed < 0) return new VdmapError('VDM_NBD_UNKNOWN_COMMAND', `command ${commandName(type)} is not supported by this export`);
    if (type === NBD_CMD_BLOCK_STATUS && !this.blockStatusNegotiated) {
      return new VdmapError('VDM_NBD_INVALID_REQUEST', 'BLOCK_STATUS without a negotiated base:allocation context');
    }
    if ((flags & ~allowed) !== 0) {
      return new VdmapError('VDM_NBD_INVALID_REQUEST', `flags 0x${flags.toString(16)} are not valid for ${COMMAND_NAMES[type]} on this session`);
    }
    if (type === NBD_CMD_FLUSH) {
      return offset === 0 && length === 0 ? undefined : new VdmapError('VDM_NBD_INVALID_REQUEST', 'FLUSH with a nonzero offset or length');
    }
    if (length === 0) return new VdmapError('VDM_NBD_INVALID_REQUEST', `${COMMAND_NAMES[type]} with length 0`);
    const block = this.minimumBlockSize;
    if (offset % block !== 0 || length % block !== 0) {
      return new VdmapError('VDM_NBD_MISALIGNED', `${COMMAND_NAMES[type]} at ${offset}+${length} is not aligned to ${block} bytes`, { requestOffset: offset, length, minimumBlockSize: block });
    }
    const bounded = type === NBD_CMD_READ || type === NBD_CMD_WRITE || type === NBD_CMD_CACHE ||
      (type === NBD_CMD_WRITE_ZEROES && (flags & NBD_CMD_FLAG_FAST_ZERO) === 0);
    if (bounded && length > this.maximumBlockSize) {
      return new VdmapError('VDM_NBD_TOO_LARGE', `${COMMAND_NAMES[type]} of ${length} bytes is over the maximum block size ${this.maximumBlockSize}`, { length, maximumBlockSize: this.maximumBlockSize });
    }
    if (offset + length > this.size) {
      const message = `${COMMAND_NAMES[type]} at ${offset}+${length} reaches past the end of the export (${this.size} bytes)`;
      return type === NBD_CMD_WRITE || type === NBD_CMD_WRITE_ZEROES
        ? new VdmapError('VDM_NBD_WRITE_PAST_END', message, { size: this.size })
        : new VdmapError('VDM_IO_OUT_OF_RANGE', message, { size: this.size });
    }
    return undefined;
  }
}

function commandName(type: number): string {
  return type < COMMAND_COUNT ? COMMAND_NAMES[type] : String(type);
}

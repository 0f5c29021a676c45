/**
 * NBD wire constants: magic numbers, handshake and transmission flags, options, option replies, info types,
 * commands, command flags, structured reply types and error values.
 *
 * Owns: every number the NBD protocol defines (NetworkBlockDevice/nbd doc/proto.md, "Values"). No other file
 * in vdmap spells an NBD number; they import it from here.
 * Does not know: what the numbers mean for an export (handshake.ts, transmission.ts) or how vdmap errors map
 * to NBD errors (errors.ts).
 *
 * Invariants:
 *   P1. Values are copied from proto.md by name; 64-bit magics are bigint, everything else a number.
 *   P2. Header sizes below are the byte lengths of the fixed parts of each message, big-endian on the wire.
 *
 * Thread: none (constants). Error codes: none.
 */

// Handshake (proto.md "Newstyle negotiation").
export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;

/** Handshake flags, sent by the server after IHAVEOPT (16 bits). */
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;

/** Client flags, sent by the client in reply (32 bits). */
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

/** Transmission flags (16 bits), sent with the export size. */
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

/** Options (proto.md "Option types"). */
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_PEEK_EXPORT = 4;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;
export const NBD_OPT_EXTENDED_HEADERS = 11;

/** Option reply types; errors have bit 31 set. */
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = NBD_REP_FLAG_ERROR + 1;
export const NBD_REP_ERR_POLICY = NBD_REP_FLAG_ERROR + 2;
export const NBD_REP_ERR_INVALID = NBD_REP_FLAG_ERROR + 3;
export const NBD_REP_ERR_PLATFORM = NBD_REP_FLAG_ERROR + 4;
export const NBD_REP_ERR_TLS_REQD = NBD_REP_FLAG_ERROR + 5;
export const NBD_REP_ERR_UNKNOWN = NBD_REP_FLAG_ERROR + 6;
export const NBD_REP_ERR_SHUTDOWN = NBD_REP_FLAG_ERROR + 7;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = NBD_REP_FLAG_ERROR + 8;
export const NBD_REP_ERR_TOO_BIG = NBD_REP_FLAG_ERROR + 9;

/** Information types in NBD_REP_INFO replies to NBD_OPT_INFO / NBD_OPT_GO. */
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

/** The one metadata context this server knows (proto.md "base:allocation metadata context"). */
export const BASE_NAMESPACE = 'base:';
export const BASE_ALLOCATION = 'base:allocation';
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;

// Transmission (proto.md "Transmission").
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Commands (request "type" field). */
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

/** Command flags (16 bits). */
export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

/** Structured reply flags and chunk types; error chunk types have bit 15 set. */
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR = (1 << 15) + 1;
export const NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

/** Error values in replies (proto.md "Error values"); deliberately the Linux errno numbers. */
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

// Sizes (P2).
/** NBDMAGIC + IHAVEOPT + handshake flags. */
export const GREETING_LENGTH = 18;
/** IHAVEOPT + option + length. */
export const OPTION_HEADER_LENGTH = 16;
/** Reply magic + option + reply type + length. */
export const OPTION_REPLY_HEADER_LENGTH = 20;
/** Export size + transmission flags, sent after NBD_OPT_EXPORT_NAME (plus 124 zeroes unless NO_ZEROES). */
export const EXPORT_NAME_REPLY_LENGTH = 10;
export const EXPORT_NAME_REPLY_ZEROES = 124;
/** magic(4) flags(2) type(2) handle(8) offset(8) length(4). */
export const REQUEST_HEADER_LENGTH = 28;
/** magic(4) error(4) handle(8). */
export const SIMPLE_REPLY_HEADER_LENGTH = 16;
/** magic(4) flags(2) type(2) handle(8) length(4). */
export const STRUCTURED_REPLY_HEADER_LENGTH = 20;
/** Strings (names, messages) MUST be no longer than this many bytes (proto.md "Conventions"). */
export const MAXIMUM_STRING_LENGTH = 4096;
/** Requests below this length SHOULD NOT be treated as a denial of service (proto.md "Block size constraints"). */
export const INTEROPERABLE_PAYLOAD_LENGTH = 1 << 25;
/** The largest minimum block size the protocol allows. */
export const LARGEST_MINIMUM_BLOCK_SIZE = 1 << 16;

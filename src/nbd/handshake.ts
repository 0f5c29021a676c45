/**
 * Handshake: the fixed newstyle negotiation, from the greeting to the transmission phase (proto.md
 * "Fixed newstyle negotiation", "Option types", "Option reply types").
 *
 * Owns: option haggling. Supported options: EXPORT_NAME, ABORT, LIST, INFO and GO (NBD_INFO_EXPORT, NAME,
 * DESCRIPTION, BLOCK_SIZE), STRUCTURED_REPLY, LIST_META_CONTEXT and SET_META_CONTEXT for base:allocation.
 * Every other option (STARTTLS included: this server runs in NOTLS mode) gets NBD_REP_ERR_UNSUP.
 * Does not know: sockets (it talks to a HandshakeChannel), or what the transmission phase does with the
 * NegotiatedSession it returns.
 *
 * Invariants:
 *   H1. Every option but EXPORT_NAME gets exactly one final reply (ACK or an error), and the option stream
 *       stays parseable after any error reply (unknown options are read in full, then refused).
 *   H2. The connection is dropped (a VDM_NBD_PROTOCOL_VIOLATION rejection) only when the spec allows it:
 *       unknown client flags, a bad option magic, EXPORT_NAME of an export that cannot be served, or a
 *       denial of service: more than `maxOptions` options, or an option longer than `maxSkippedOptionLength`.
 *       An option longer than `maxOptionLength` but within that is read in pieces, thrown away, and answered
 *       NBD_REP_ERR_TOO_BIG (EXPORT_NAME, which has no error reply, is dropped).
 *   H3. base:allocation may be used in transmission only if the last SET_META_CONTEXT selected it for the
 *       very export that GO/EXPORT_NAME chose, after structured replies were negotiated.
 *   H4. A successful INFO and a following GO with the same parameters send the same information.
 *   H5. Once `shuttingDown()` is true, every option but ABORT gets NBD_REP_ERR_SHUTDOWN (EXPORT_NAME, which
 *       cannot be refused, drops the connection).
 *   H6. NBD_INFO_BLOCK_SIZE is sent on every successful INFO/GO, asked for or not, and the sizes are enforced on
 *       every session (misaligned or oversized requests fail cleanly with EINVAL), so a client that did not ask
 *       is still served, never refused with NBD_REP_ERR_BLOCK_SIZE_REQD.
 *
 * Thread: whichever runs the connection. Error codes: VDM_NBD_PROTOCOL_VIOLATION rejects negotiate().
 */
import { VdmapError } from '../errors/error.js';
import { boundedString } from './errors.js';
import type { Export, ExportRegistry } from './export.js';
import { blockSizeConstraintsOf, type NegotiatedSession, sessionFor, transmissionFlagsOf } from './export-terms.js';
import {
  BASE_ALLOCATION,
  BASE_NAMESPACE,
  EXPORT_NAME_REPLY_LENGTH,
  EXPORT_NAME_REPLY_ZEROES,
  GREETING_LENGTH,
  IHAVEOPT,
  MAXIMUM_STRING_LENGTH,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBDMAGIC,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
  OPTION_HEADER_LENGTH,
  OPTION_REPLY_HEADER_LENGTH,
  OPTION_REPLY_MAGIC,
} from './protocol.js';

/** The byte stream the handshake talks over. */
export interface HandshakeChannel {
  read(length: number): Promise<Buffer>;
  write(bytes: Buffer): void;
}

export interface HandshakeSettings {
  /** H2: more options than this on one connection is a denial of service. */
  maxOptions: number;
  /** H2: the longest option data the server reads and acts on. */
  maxOptionLength: number;
  /** H2: longer option data than this is a denial of service; up to it, it is skipped and refused. */
  maxSkippedOptionLength: number;
  /** Hard cap on one request's length (bytes); caps the advertised maximum block size. */
  requestCap: number;
  /** H5. */
  shuttingDown: () => boolean;
}

/** The context id this server gives base:allocation (any value is legal; it is opaque to clients). */
export const ALLOCATION_CONTEXT_ID = 1;

const KNOWN_CLIENT_FLAGS = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** State that options change, in one place. */
interface HaggleState {
  noZeroes: boolean;
  structuredReplies: boolean;
  /** H3: the export name the last SET_META_CONTEXT selected base:allocation for, if it did. */
  allocationSelectedFor: string | undefined;
}

/** What an option handler decided: keep haggling, enter transmission, or end the session. */
type OptionOutcome = { next: 'haggle' } | { next: 'transmission'; session: NegotiatedSession } | { next: 'end' };
const HAGGLE: OptionOutcome = { next: 'haggle' };
const END: OptionOutcome = { next: 'end' };

/**
 * Runs the handshake on `channel`. Resolves with the negotiated session, or undefined when the client ended
 * the session with NBD_OPT_ABORT. Rejects with VDM_NBD_PROTOCOL_VIOLATION when the connection must drop (H2).
 */
export async function negotiate(
  channel: HandshakeChannel,
  registry: ExportRegistry,
  settings: HandshakeSettings,
): Promise<NegotiatedSession | undefined> {
  channel.write(greeting());
  const clientFlags = (await channel.read(4)).readUInt32BE(0);
  if ((clientFlags & ~KNOWN_CLIENT_FLAGS) !== 0) {
    throw violation(`unknown client flags 0x${clientFlags.toString(16)}`);
  }
  // Fixed newstyle is honoured even without NBD_FLAG_C_FIXED_NEWSTYLE (the spec allows it).
  const state: HaggleState = {
    noZeroes: (clientFlags & NBD_FLAG_C_NO_ZEROES) !== 0,
    structuredReplies: false,
    allocationSelectedFor: undefined,
  };
  for (let count = 1; ; count++) {
    const header = await channel.read(OPTION_HEADER_LENGTH);
    if (header.readBigUInt64BE(0) !== IHAVEOPT) throw violation('bad option magic');
    const option = header.readUInt32BE(8);
    const length = header.readUInt32BE(12);
    if (count > settings.maxOptions) throw violation(`more than ${settings.maxOptions} options`);
    if (length > settings.maxOptionLength) {
      await skipOversizedOption(option, length, channel, settings);
      continue;
    }
    const data = await channel.read(length);
    const outcome = handleOption(option, data, state, channel, registry, settings);
    if (outcome.next === 'transmission') return outcome.session;
    if (outcome.next === 'end') return undefined;
  }
}

/** H2: reads and drops the data of an option too long to act on, then refuses it with NBD_REP_ERR_TOO_BIG. */
async function skipOversizedOption(option: number, length: number, channel: HandshakeChannel, settings: HandshakeSettings): Promise<void> {
  if (length > settings.maxSkippedOptionLength || option === NBD_OPT_EXPORT_NAME) {
    throw violation(`option ${option} has ${length} bytes of data, over the limit of ${settings.maxOptionLength}`);
  }
  for (let left = length; left > 0;) {
    const piece = Math.min(left, settings.maxOptionLength);
    await channel.read(piece);
    left -= piece;
  }
  new OptionReplier(channel, option).error(NBD_REP_ERR_TOO_BIG, `${length} bytes of option data, over this server's limit of ${settings.maxOptionLength}`);
}

function handleOption(
  option: number,
  data: Buffer,
  state: HaggleState,
  channel: HandshakeChannel,
  registry: ExportRegistry,
  settings: HandshakeSettings,
): OptionOutcome {
  const reply = new OptionReplier(channel, option);
  if (option === NBD_OPT_ABORT) {
    reply.ack();
    return END;
  }
  if (option === NBD_OPT_EXPORT_NAME) return exportName(data, state, channel, registry, settings);
  if (settings.shuttingDown()) return reply.error(NBD_REP_ERR_SHUTDOWN, 'the server is shutting down');
  switch (option) {
    case NBD_OPT_LIST:
      return list(data, reply, registry);
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
      return infoOrGo(option === NBD_OPT_GO, data, state, reply, registry, settings);
    case NBD_OPT_STRUCTURED_REPLY:
      if (data.length !== 0) return reply.error(NBD_REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
      state.structuredReplies = true;
      reply.ack();
      return HAGGLE;
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
      return metaContext(option === NBD_OPT_SET_META_CONTEXT, data, state, reply, registry);
    default:
      return reply.error(NBD_REP_ERR_UNSUP, `option ${option} is not supported`);
  }
}

/** NBD_OPT_EXPORT_NAME: cannot be refused with a reply, so an unservable export drops the connection (H2). */
function exportName(
  data: Buffer,
  state: HaggleState,
  channel: HandshakeChannel,
  registry: ExportRegistry,
  settings: HandshakeSettings,
): OptionOutcome {
  if (settings.shuttingDown()) throw violation('NBD_OPT_EXPORT_NAME while the server is shutting down');
  const name = decodeString(data);
  const found = name === undefined ? undefined : resolveExport(registry, name);
  if (found === undefined) throw violation(`NBD_OPT_EXPORT_NAME of an unknown export`);
  const session = sessionFor(found.export, found.name, state.structuredReplies, allocationContextFor(state, found.name), settings.requestCap);
  const reply = Buffer.alloc(EXPORT_NAME_REPLY_LENGTH + (state.noZeroes ? 0 : EXPORT_NAME_REPLY_ZEROES));
  reply.writeBigUInt64BE(BigInt(found.export.size), 0);
  reply.writeUInt16BE(session.transmissionFlags, 8);
  channel.write(reply);
  return { next: 'transmission', session };
}

/** NBD_OPT_LIST: one NBD_REP_SERVER (name, then description) per export, then ACK. */
function list(data: Buffer, reply: OptionReplier, registry: ExportRegistry): OptionOutcome {
  if (data.length !== 0) return reply.error(NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
  for (const item of registry.list()) {
    const name = boundedString(item.name);
    const description = boundedString(item.description);
    const payload = Buffer.allocUnsafe(4 + name.length + description.length);
    payload.writeUInt32BE(name.length, 0);
    name.copy(payload, 4);
    description.copy(payload, 4 + name.length);
    reply.send(NBD_REP_SERVER, payload);
  }
  reply.ack();
  return HAGGLE;
}

/** NBD_OPT_INFO and NBD_OPT_GO: same request and replies; GO then enters transmission (H4). */
function infoOrGo(
  isGo: boolean,
  data: Buffer,
  state: HaggleState,
  reply: OptionReplier,
  registry: ExportRegistry,
  settings: HandshakeSettings,
): OptionOutcome {
  const request = parseInfoRequest(data);
  if (typeof request === 'string') return reply.error(NBD_REP_ERR_INVALID, request);
  const found = resolveExport(registry, request.name);
  if (found === undefined) return reply.error(NBD_REP_ERR_UNKNOWN, `no export named '${request.name}'`);
  const target = found.export;
  const exportInfo = Buffer.allocUnsafe(12);
  exportInfo.writeUInt16BE(NBD_INFO_EXPORT, 0);
  exportInfo.writeBigUInt64BE(BigInt(target.size), 2);
  exportInfo.writeUInt16BE(transmissionFlagsOf(target, state.structuredReplies), 10);
  reply.send(NBD_REP_INFO, exportInfo);
  if (request.wanted.has(NBD_INFO_NAME) || request.name !== found.name) {
    reply.send(NBD_REP_INFO, infoString(NBD_INFO_NAME, found.name));
  }
  if (request.wanted.has(NBD_INFO_DESCRIPTION) && target.description !== '') {
    reply.send(NBD_REP_INFO, infoString(NBD_INFO_DESCRIPTION, target.description));
  }
  // Always sent: the server enforces these sizes whether or not the client asked (proto.md allows unasked info).
  const sizes = blockSizeConstraintsOf(target, settings.requestCap);
  const blockSize = Buffer.allocUnsafe(14);
  blockSize.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  blockSize.writeUInt32BE(sizes.minimum, 2);
  blockSize.writeUInt32BE(sizes.preferred, 6);
  blockSize.writeUInt32BE(sizes.maximum, 10);
  reply.send(NBD_REP_INFO, blockSize);
  reply.ack();
  if (!isGo) return HAGGLE;
  const contextId = allocationContextFor(state, found.name);
  return { next: 'transmission', session: sessionFor(target, found.name, state.structuredReplies, contextId, settings.requestCap) };
}

interface InfoRequest {
  name: string;
  wanted: Set<number>;
}

/** Data: u32 name length, name, u16 count, count x u16 information requests; a string says what is wrong. */
function parseInfoRequest(data: Buffer): InfoRequest | string {
  if (data.length < 6) return 'option data shorter than 6 bytes';
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - 6) return 'export name longer than the option data';
  const name = decodeString(data.subarray(4, 4 + nameLength));
  if (name === undefined) return 'export name is not a valid protocol string';
  const count = data.readUInt16BE(4 + nameLength);
  if (4 + nameLength + 2 + count * 2 !== data.length) return 'information request count does not match the option length';
  const wanted = new Set<number>();
  for (let i = 0; i < count; i++) wanted.add(data.readUInt16BE(4 + nameLength + 2 + i * 2));
  return { name, wanted };
}

/** NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT, for the base: namespace (H3). */
function metaContext(
  isSet: boolean,
  data: Buffer,
  state: HaggleState,
  reply: OptionReplier,
  registry: ExportRegistry,
): OptionOutcome {
  // "replaces all previously-set metadata contexts (including when this command fails)"
  if (isSet) state.allocationSelectedFor = undefined;
  if (!state.structuredReplies) return reply.error(NBD_REP_ERR_INVALID, 'negotiate structured replies first');
  const request = parseMetaContextRequest(data);
  if (typeof request === 'string') return reply.error(NBD_REP_ERR_INVALID, request);
  const found = resolveExport(registry, request.exportName);
  if (found === undefined) return reply.error(NBD_REP_ERR_UNKNOWN, `no export named '${request.exportName}'`);
  const matches = isSet
    ? request.queries.includes(BASE_ALLOCATION)
    : request.queries.length === 0 || request.queries.some((q) => q === BASE_NAMESPACE || q === BASE_ALLOCATION);
  if (matches) {
    const context = Buffer.from(`\0\0\0\0${BASE_ALLOCATION}`, 'utf8');
    context.writeUInt32BE(isSet ? ALLOCATION_CONTEXT_ID : 0, 0);
    reply.send(NBD_REP_META_CONTEXT, context);
    if (isSet) state.allocationSelectedFor = found.name;
  }
  reply.ack();
  return HAGGLE;
}

interface MetaContextRequest {
  exportName: string;
  queries: string[];
}

/** Data: u32 name length, name, u32 query count, then count x (u32 length, query); every byte accounted for. */
function parseMetaContextRequest(data: Buffer): MetaContextRequest | string {
  if (data.length < 8) return 'option data shorter than 8 bytes';
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - 8) return 'export name longer than the option data';
  const exportName = decodeString(data.subarray(4, 4 + nameLength));
  if (exportName === undefined) return 'export name is not a valid protocol string';
  let position = 4 + nameLength;
  const count = data.readUInt32BE(position);
  position += 4;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    if (data.length - position < 4) return 'query count larger than the option data';
    const queryLength = data.readUInt32BE(position);
    position += 4;
    if (queryLength > data.length - position) return 'query longer than the option data';
    const query = decodeString(data.subarray(position, position + queryLength));
    position += queryLength;
    if (query === undefined || !query.includes(':')) return 'query is not a namespace-prefixed protocol string';
    queries.push(query);
  }
  if (position !== data.length) return 'trailing bytes after the last query';
  return { exportName, queries };
}

/** H3: the context id for base:allocation if it was selected for `name`. */
function allocationContextFor(state: HaggleState, name: string): number | undefined {
  return state.structuredReplies && state.allocationSelectedFor === name ? ALLOCATION_CONTEXT_ID : undefined;
}

/** The export a client means by `name`; the empty name means the registry's default. */
function resolveExport(registry: ExportRegistry, name: string): { name: string; export: Export } | undefined {
  const canonical = name === '' ? registry.defaultName() : name;
  if (canonical === undefined) return undefined;
  const found = registry.get(canonical);
  return found === undefined ? undefined : { name: canonical, export: found };
}

/** A protocol string (valid UTF-8, no NUL, at most 4096 bytes), or undefined. */
function decodeString(bytes: Buffer): string | undefined {
  if (bytes.length > MAXIMUM_STRING_LENGTH || bytes.includes(0)) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

function infoString(type: number, text: string): Buffer {
  const bytes = boundedString(text);
  const payload = Buffer.allocUnsafe(2 + bytes.length);
  payload.writeUInt16BE(type, 0);
  bytes.copy(payload, 2);
  return payload;
}

function greeting(): Buffer {
  const bytes = Buffer.allocUnsafe(GREETING_LENGTH);
  bytes.writeBigUInt64BE(NBDMAGIC, 0);
  bytes.writeBigUInt64BE(IHAVEOPT, 8);
  bytes.writeUInt16BE(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES, 16);
  return bytes;
}

function violation(message: string): VdmapError {
  return new VdmapError('VDM_NBD_PROTOCOL_VIOLATION', message, { phase: 'handshake' });
}

/** Writes option replies for one option: magic, option, reply type, length, data. */
class OptionReplier {
  constructor(
    private readonly channel: HandshakeChannel,
    private readonly option: number,
  ) {}

  send(type: number, payload: Buffer | undefined): void {
    const length = payload?.length ?? 0;
    const bytes = Buffer.allocUnsafe(OPTION_REPLY_HEADER_LENGTH + length);
    bytes.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
    bytes.writeUInt32BE(this.option, 8);
    bytes.writeUInt32BE(type, 12);
    bytes.writeUInt32BE(length, 16);
    payload?.copy(bytes, OPTION_REPLY_HEADER_LENGTH);
    this.channel.write(bytes);
  }

  ack(): void {
    this.send(NBD_REP_ACK, undefined);
  }

  /** H1: an error reply with a message for the user; haggling goes on. */
  error(type: number, message: string): OptionOutcome {
    this.send(type, boundedString(message));
    return HAGGLE;
  }
}

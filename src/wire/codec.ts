/**
 * Message <-> CBOR bytes (cbor-x), with one strict parser per message type.
 *
 * Owns: the CBOR encoder options and the per-type schemas (fields, ranges, array lengths against WireLimits,
 * cross-field rules). Knows nothing about frames or authentication: its input is one frame's (opened)
 * payload, its output the bytes to seal and frame.
 *
 * Encoding: maps with string keys; typed arrays as RFC 8746 typed-array tags (Int32Array, Uint32Array in the
 * machine's little-endian order, Uint8Array as a plain byte string), so a 256 Ki-extent chunk costs its 2.25 MiB
 * of columns plus a few bytes. Decoded columns may be views into the frame's bytes (cbor-x copies only when a
 * column is misaligned): keep the frame alive as long as them, and never write into them.
 *
 * Invariants:
 *   K1. decodeMessage never throws: any input yields a message or a VdmapError value.
 *   K2. A decoded message passed its type's parser: exact keys, types, ranges, lengths (messages.ts M1-M4).
 *   K3. encodeMessage runs the same parser first, so this side never sends what the other side would refuse
 *       (a refusal there throws: it is a bug here).
 *   K4. decodeMessage(encodeMessage(m)) deep-equals m for every valid m.
 *
 * Thread: any; the Encoder is module-local and synchronous.
 * Errors leaving: VDM_WIRE_MALFORMED (undecodable or wrong shape), VDM_WIRE_UNKNOWN_MESSAGE, VDM_WIRE_UNEXPECTED
 * (a valid type the caller did not allow here).
 */
import { Encoder } from 'cbor-x';
import { VdmapError } from '../errors/error.js';
import { KnownStateBits } from '../table/document.js';
import {
  type AttachmentMessage, type DeltaMessage, type DevicePathView, type DeviceView, FaultKinds, type FaultMessage,
  type HelloMessage, type MessageOf, type MessageType, MessageTypes, type ResponseMessage, type SetStateMessage,
  type TableChunkMessage, type WelcomeMessage, WireLimits, type WireMessage,
} from './messages.js';
import {
  boolean, bytes, column, errorRecord, fail, isPlainObject, list, literal, name, nameList, nullable, oneOf,
  type Parser, plainData, plainMapParser, positiveSafe, powerOfTwoBetween, record, safeUint, ShapeProblem, text,
  uint32, uintAtMost,
} from './shape.js';

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

export type DecodeResult = { ok: true; message: WireMessage } | { ok: false; error: VdmapError };

/** CBOR bytes of a valid message (K3). Throws VdmapError VDM_WIRE_MALFORMED for an invalid one. */
export function encodeMessage(message: WireMessage): Uint8Array {
  const checked = parseMessage(message);
  if (!checked.ok) throw checked.error;
  return encoder.encode(message);
}

/** The message in one payload (K1, K2); `allowed` narrows the acceptable types for the caller's state. */
export function decodeMessage(payload: Uint8Array, allowed?: ReadonlySet<MessageType>): DecodeResult {
  let value: unknown;
  try {
    value = encoder.decode(payload);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return malformed(`payload is not one CBOR item: ${reason}`, { reason: 'cbor', cause: reason });
  }
  const parsed = parseMessage(value);
  if (parsed.ok && allowed !== undefined && !allowed.has(parsed.message.type)) {
    return {
      ok: false,
      error: new VdmapError('VDM_WIRE_UNEXPECTED', `message '${parsed.message.type}' is not allowed here`, {
        type: parsed.message.type, allowed: [...allowed],
      }),
    };
  }
  return parsed;
}

/** Runs the parser of the value's type; the result is a fresh object (shape.ts S1). */
export function parseMessage(value: unknown): DecodeResult {
  if (!isPlainObject(value)) return malformed('message is not a CBOR map', { reason: 'not-a-map' });
  const type = value.type;
  if (typeof type !== 'string' || !MessageTypes.has(type as MessageType)) {
    const shown = typeof type === 'string' ? type.slice(0, WireLimits.maxNameLength) : typeof type;
    return {
      ok: false,
      error: new VdmapError('VDM_WIRE_UNKNOWN_MESSAGE', `unknown message type '${shown}'`, { type: shown }),
    };
  }
  try {
    const parser = messageParsers[type as MessageType] as Parser<WireMessage>;
    return { ok: true, message: parser(value, '') };
  } catch (error) {
    if (!(error instanceof ShapeProblem)) {
      // K1 holds even against a bug in a parser: report it, do not crash the connection's owner.
      const reason = error instanceof Error ? error.message : String(error);
      return { ok: false, error: new VdmapError('VDM_INTERNAL', `parser of '${type}' failed: ${reason}`, { type }) };
    }
    return malformed(`message '${type}': ${error.field} ${error.reason}`, {
      reason: 'shape', type, field: error.field, problem: error.reason,
    });
  }
}

function malformed(message: string, details: Record<string, unknown>): DecodeResult {
  return { ok: false, error: new VdmapError('VDM_WIRE_MALFORMED', message, details) };
}

// ---- schemas ----

const protocol = uint32;
const epoch = safeUint;
const extent = uint32;
const nonce = bytes(WireLimits.nonceBytes);
const milliseconds = uintAtMost(24 * 3600 * 1000, 1);
const stateBits: Parser<number> = (value, field) => {
  const bits = uintAtMost(0xff)(value, field);
  if ((bits & ~KnownStateBits) !== 0) fail(field, `has unknown state bits 0x${bits.toString(16)}`);
  return bits;
};
const tableDevices = nameList(WireLimits.maxTableDevices);

const deviceView: Parser<DeviceView> = (value, field) => record<DeviceView>(value, field, {
  id: name, path: text(WireLimits.maxPathLength), size: positiveSafe,
  logicalBlockSize: powerOfTwoBetween(512, 65536),
});

type FieldParsers<M> = { [K in Exclude<keyof M, 'type'>]: Parser<M[K]> };

/** The parser of one message type: `type` plus exactly these fields, then the cross-field rules. */
function withType<T extends MessageType>(type: T, parsers: FieldParsers<MessageOf<T>>,
  refine?: (message: MessageOf<T>) => void): Parser<MessageOf<T>> {
  const all: Record<string, Parser<unknown>> = { type: literal(type), ...parsers };
  return (value, field) => {
    const message = record<Record<string, unknown>>(value, field, all) as MessageOf<T>;
    refine?.(message);
    return message;
  };
}

function nextEpoch(message: { fromEpoch: number; toEpoch: number }): void {
  if (message.toEpoch !== message.fromEpoch + 1) fail('toEpoch', `is ${message.toEpoch}, expected fromEpoch + 1`);
}

function sameLengths(columns: Record<string, { length: number }>): void {
  const entries = Object.entries(columns);
  const [firstName, first] = entries[0];
  for (const [columnName, columnValue] of entries) {
    if (columnValue.length !== first.length) {
      fail(columnName, `has ${columnValue.length} items but ${firstName} has ${first.length}`);
    }
  }
}

const challenge = withType<'challenge'>('challenge', { protocol, nonce });

const hello = withType<'hello'>('hello', {
  protocol, agent: name, nonce, devices: list(deviceView, WireLimits.maxDevicesPerHello),
  proof: bytes(WireLimits.proofBytes),
}, (message: HelloMessage) => {
  const ids = message.devices.map((device) => device.id);
  if (new Set(ids).size !== ids.length) fail('devices', 'names a device id twice');
});

const welcome = withType<'welcome'>('welcome', {
  protocol, sessionId: name, leaseMs: milliseconds, heartbeatMs: milliseconds,
}, (message: WelcomeMessage) => {
  if (message.heartbeatMs >= message.leaseMs) fail('heartbeatMs', 'is not below leaseMs');
});

const tableBegin = withType<'table-begin'>('table-begin', {
  transferId: uint32, disk: name, epoch, extentSize: positiveSafe,
  extentCount: uintAtMost(WireLimits.maxTableExtents), devices: tableDevices,
});

const tableChunk = withType<'table-chunk'>('table-chunk', {
  transferId: uint32, firstExtent: extent,
  device: column(Int32Array, WireLimits.maxChunkExtents),
  physicalExtent: column(Uint32Array, WireLimits.maxChunkExtents),
  state: column(Uint8Array, WireLimits.maxChunkExtents),
}, (message: TableChunkMessage) => {
  sameLengths({ device: message.device, physicalExtent: message.physicalExtent, state: message.state });
  if (message.device.length === 0) fail('device', 'is empty');
});

const tableEnd = withType<'table-end'>('table-end', { transferId: uint32, digest: bytes(WireLimits.digestBytes) });

const delta = withType<'delta'>('delta', {
  disk: name, fromEpoch: epoch, toEpoch: epoch, devices: tableDevices,
  extent: column(Uint32Array, WireLimits.maxDeltaEntries),
  device: column(Int32Array, WireLimits.maxDeltaEntries),
  physicalExtent: column(Uint32Array, WireLimits.maxDeltaEntries),
  state: column(Uint8Array, WireLimits.maxDeltaEntries),
}, (message: DeltaMessage) => {
  nextEpoch(message);
  sameLengths({
    extent: message.extent, device: message.device, physicalExtent: message.physicalExtent, state: message.state,
  });
});

const setState = withType<'set-state'>('set-state', {
  disk: name, fromEpoch: epoch, toEpoch: epoch, firstExtent: extent, count: uintAtMost(0xffff_ffff, 1),
  set: stateBits, clear: stateBits,
}, (message: SetStateMessage) => {
  nextEpoch(message);
  if (message.firstExtent + message.count > 0x1_0000_0000) fail('count', 'reaches past extent 2^32 - 1');
  if ((message.set & message.clear) !== 0) fail('clear', 'clears a bit that set also sets');
  if (message.set === 0 && message.clear === 0) fail('set', 'and clear are both empty');
});

const drain = withType<'drain'>('drain', { requestId: uint32, disk: name, timeoutMs: milliseconds });
const resume = withType<'resume'>('resume', { requestId: uint32, disk: name });
const lease = withType<'lease'>('lease', { leaseMs: milliseconds });
const errorMessage = withType<'error'>('error', { error: errorRecord });

const devicePath: Parser<DevicePathView> = (value, field) => record<DevicePathView>(value, field, {
  id: name, path: text(WireLimits.maxPathLength),
});

const attachment = withType<'attachment'>('attachment', {
  disk: name, attached: boolean, size: safeUint, shared: boolean,
  devices: list(devicePath, WireLimits.maxTableDevices),
}, (message: AttachmentMessage) => {
  const ids = message.devices.map((device) => device.id);
  if (new Set(ids).size !== ids.length) fail('devices', 'names a device id twice');
  if (message.attached && message.size === 0) fail('size', 'is 0 for an attached disk');
  if (!message.attached && (message.size !== 0 || message.devices.length > 0 || message.shared)) {
    fail('attached', 'is false but size, shared or devices are set');
  }
});
const heartbeat = withType<'heartbeat'>('heartbeat', { sentAt: safeUint });
const applied = withType<'applied'>('applied', { disk: name, epoch });

const fault = withType<'fault'>('fault', {
  disk: name, epoch, kind: oneOf(FaultKinds), extent: nullable(extent),
  operation: nullable(oneOf(['read', 'write'] as const)), error: errorRecord,
}, (message: FaultMessage) => {
  if (message.kind === 'table-unreadable') return;
  if (message.extent === null && message.kind !== 'device-error') fail('extent', `is null for a '${message.kind}' fault`);
  if (message.operation === null) fail('operation', `is null for a '${message.kind}' fault`);
});

const drained = withType<'drained'>('drained', { requestId: uint32, disk: name, error: nullable(errorRecord) });

const METHOD = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;
const method: Parser<string> = (value, field) => {
  const parsed = text(64)(value, field);
  if (!METHOD.test(parsed)) fail(field, 'is not a dotted lower-case method name');
  return parsed;
};

const request = withType<'request'>('request', { id: uint32, method, params: plainMapParser });

const response: Parser<ResponseMessage> = (value, field) => {
  const ok = isPlainObject(value) ? boolean(value.ok, 'ok') : fail(field, 'is not a map');
  return ok
    ? record<Extract<ResponseMessage, { ok: true }>>(value, field, {
      type: literal('response'), id: uint32, ok: literal(true), result: plainData,
    })
    : record<Extract<ResponseMessage, { ok: false }>>(value, field, {
      type: literal('response'), id: uint32, ok: literal(false), error: errorRecord,
    });
};

const messageParsers: { [T in MessageType]: Parser<MessageOf<T>> } = {
  challenge, hello, welcome, 'table-begin': tableBegin, 'table-chunk': tableChunk, 'table-end': tableEnd, delta,
  'set-state': setState, drain, resume, lease, attachment, error: errorMessage, heartbeat, applied, fault, drained, request,
  response,
};


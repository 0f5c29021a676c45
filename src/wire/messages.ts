/**
 * Every message of the agent <-> controller protocol and of the CLI's admin requests, as one discriminated
 * union on `type`, with the protocol version and the hard limits the codec enforces.
 *
 * Owns: message shapes, PROTOCOL_VERSION, WireLimits, and which side may send which type. Knows nothing about
 * bytes (codec.ts), frames (frame.ts) or credentials (auth.ts); TableDocument / TableDelta come from
 * src/table/document.ts.
 *
 * Session, as the daemons run it:
 *   1. controller -> `challenge` (protocol version, random nonce). Every connection, CLI ones included, opens
 *      with it, so a peer of another version is told before anything else.
 *   2. agent -> `hello` (name, nonce, devices, proof of its credential over all of that; auth.ts).
 *      Frames 1 and 2 are plain; every later frame, both ways, is sealed by auth.ts (sequence number + MAC).
 *   3. controller -> `welcome` (session id, lease, heartbeat interval), then for every attached disk an
 *      `attachment` (size, sharing, where this host finds its devices) and a full table (`table-begin`,
 *      `table-chunk`..., `table-end`), then `delta`s, `set-state`s, `drain`/`resume`, `attachment` changes
 *      (another agent attached, the disk detached), one `lease` renewal per heartbeat and, from time to time,
 *      full tables again as a consistency backstop.
 *   4. agent -> `heartbeat`s, `applied` acknowledgements, `fault`s and `drained` answers.
 *   Leases: the controller answers every heartbeat with exactly one `lease`, in order, and sends no other; the
 *   agent counts a lease from the moment it SENT the heartbeat it answers (welcome: from its hello), so its
 *   lease always ends before the controller's record of it (sent + leaseMs) does.
 *   The CLI instead sends `request`s after the challenge and reads `response`s with the same id.
 *
 * Invariants:
 *   M1. Every message has a `type` from MessageTypes; a type outside it is VDM_WIRE_UNKNOWN_MESSAGE.
 *   M2. Every count, string and array is bounded by WireLimits, so one message always fits one frame.
 *   M3. Epochs and byte sizes are non-negative safe integers; extents and physical extents are u32.
 *   M4. `delta.toEpoch` = `delta.fromEpoch` + 1 and `set-state.toEpoch` = `set-state.fromEpoch` + 1 (document.ts D4).
 *
 * Thread: pure types and constants.
 */
import type { ErrorRecord } from '../errors/error.js';
import type { ExtentStateBits, TableDelta } from '../table/document.js';

/** Bumped on any incompatible change of a message or of the session order above. */
export const PROTOCOL_VERSION = 1;

export const WireLimits = {
  /** Agent, disk, device and session names. */
  maxNameLength: 128,
  maxPathLength: 4096,
  /** Error messages and other free text. */
  maxTextLength: 4096,
  maxDevicesPerHello: 1024,
  /** Length of a table's `devices` list. */
  maxTableDevices: 1024,
  /** Entries of the largest table a transfer may announce (a begin above it is refused before allocating). */
  maxTableExtents: 1 << 24,
  /** Extents per `table-chunk`: 9 bytes each, 2.25 MiB of columns, well inside one 4 MiB frame. */
  maxChunkExtents: 1 << 18,
  /** Entries per `delta`: 13 bytes each; a larger change goes as a full table. */
  maxDeltaEntries: 1 << 16,
  /** Nesting depth of free-form data (request params, response results, error details). */
  maxDataDepth: 16,
  nonceBytes: 32,
  proofBytes: 32,
  digestBytes: 32,
} as const;

/** A device as one agent's host sees it. */
export interface DeviceView {
  id: string;
  path: string;
  size: number;
  logicalBlockSize: number;
}

// ---- controller -> agent (and -> CLI: challenge) ----

export interface ChallengeMessage {
  type: 'challenge';
  protocol: number;
  nonce: Uint8Array;
}

export interface WelcomeMessage {
  type: 'welcome';
  protocol: number;
  sessionId: string;
  /** The agent may serve I/O for this long after receiving a welcome or a lease renewal, and no longer. */
  leaseMs: number;
  heartbeatMs: number;
}

/** Opens a full-table transfer; chunks follow in extent order, then `table-end`. Replaces the agent's copy. */
export interface TableBeginMessage {
  type: 'table-begin';
  transferId: number;
  disk: string;
  epoch: number;
  extentSize: number;
  extentCount: number;
  devices: string[];
}

/** Extents [firstExtent, firstExtent + device.length) of the document's columns. */
export interface TableChunkMessage {
  type: 'table-chunk';
  transferId: number;
  firstExtent: number;
  device: Int32Array;
  physicalExtent: Uint32Array;
  state: Uint8Array;
}

export interface TableEndMessage {
  type: 'table-end';
  transferId: number;
  /** SHA-256 over the three whole columns (tableDigest in tables.ts). */
  digest: Uint8Array;
}

/** A TableDelta (document.ts) from fromEpoch to fromEpoch + 1, field for field; at most maxDeltaEntries entries. */
export interface DeltaMessage extends TableDelta {
  type: 'delta';
}

/** On extents [firstExtent, firstExtent + count): state = (state | set) & ~clear, as epoch toEpoch. */
export interface SetStateMessage {
  type: 'set-state';
  disk: string;
  fromEpoch: number;
  toEpoch: number;
  firstExtent: number;
  count: number;
  set: ExtentStateBits;
  clear: ExtentStateBits;
}

/** Block new I/O to the disk and answer `drained` once the I/O already in flight has completed. */
export interface DrainMessage {
  type: 'drain';
  requestId: number;
  disk: string;
  timeoutMs: number;
}

/** Lift the block of an earlier `drain`. */
export interface ResumeMessage {
  type: 'resume';
  requestId: number;
  disk: string;
}

export interface LeaseMessage {
  type: 'lease';
  leaseMs: number;
}

/** Where one agent's host finds a device the disk maps into. */
export interface DevicePathView {
  id: string;
  path: string;
}

/**
 * The disk is attached to this agent (`attached` true: its size, whether other agents serve it too, and where
 * this host finds the devices its tables use) or no longer (false: stop serving it, drop its table; size 0,
 * devices empty). Sent before a disk's first table in a session and whenever any field changes.
 */
export interface AttachmentMessage {
  type: 'attachment';
  disk: string;
  attached: boolean;
  size: number;
  /** Attached to more than one agent: the agent fences it when its lease lapses. */
  shared: boolean;
  devices: DevicePathView[];
}

export interface ErrorMessage {
  type: 'error';
  error: ErrorRecord;
}

// ---- agent -> controller ----

export interface HelloMessage {
  type: 'hello';
  protocol: number;
  agent: string;
  /** The agent's own random nonce; with the challenge's, it makes the session keys unique (auth.ts). */
  nonce: Uint8Array;
  devices: DeviceView[];
  /** helloProof() of auth.ts over the challenge nonce and every field above. */
  proof: Uint8Array;
}

export interface HeartbeatMessage {
  type: 'heartbeat';
  /** Agent wall clock, ms since the Unix epoch (diagnostics only; leases use the receiver's clock). */
  sentAt: number;
}

export interface AppliedMessage {
  type: 'applied';
  disk: string;
  epoch: number;
}

/** src/agent/faults.ts FaultKind plus 'table-unreadable' (a table or delta the agent could not apply). */
export const FaultKinds = ['invalid', 'nowrite', 'unallocated', 'device-error', 'table-unreadable'] as const;
export type FaultKind = (typeof FaultKinds)[number];
export type IoOperation = 'read' | 'write';

/**
 * An I/O the agent could not serve. `extent` and `operation` are null for kind 'table-unreadable'; `extent` is
 * also null for the 'device-error' of a flush (it syncs devices, not extents).
 */
export interface FaultMessage {
  type: 'fault';
  disk: string;
  epoch: number;
  kind: FaultKind;
  extent: number | null;
  operation: IoOperation | null;
  error: ErrorRecord;
}

/** The answer to `drain` (error null: in-flight I/O reached zero) or to `resume` (error null: unblocked). */
export interface DrainedMessage {
  type: 'drained';
  requestId: number;
  disk: string;
  error: ErrorRecord | null;
}

// ---- CLI <-> controller ----

/** Free-form data of requests and responses: CBOR-able plain values only (checked by the codec). */
export type PlainData =
  | null | undefined | boolean | number | string | Uint8Array | Int32Array | Uint32Array
  | PlainData[] | { [key: string]: PlainData };

export interface RequestMessage {
  type: 'request';
  id: number;
  /** Dotted lower-case name, e.g. `disk.create`, `table.push`. */
  method: string;
  params: { [key: string]: PlainData };
}

export type ResponseMessage =
  | { type: 'response'; id: number; ok: true; result: PlainData }
  | { type: 'response'; id: number; ok: false; error: ErrorRecord };

export type ControllerMessage =
  | ChallengeMessage | WelcomeMessage | TableBeginMessage | TableChunkMessage | TableEndMessage | DeltaMessage
  | SetStateMessage | DrainMessage | ResumeMessage | LeaseMessage | AttachmentMessage | ErrorMessage | ResponseMessage;
export type AgentMessage =
  | HelloMessage | HeartbeatMessage | AppliedMessage | FaultMessage | DrainedMessage | ErrorMessage;
export type AdminMessage = RequestMessage | ResponseMessage;
export type WireMessage = ControllerMessage | AgentMessage | AdminMessage;
export type MessageType = WireMessage['type'];
export type MessageOf<T extends MessageType> = Extract<WireMessage, { type: T }>;

export const ControllerMessageTypes: ReadonlySet<MessageType> = new Set<MessageType>([
  'challenge', 'welcome', 'table-begin', 'table-chunk', 'table-end', 'delta', 'set-state', 'drain', 'resume',
  'lease', 'attachment', 'error', 'response',
]);
export const AgentMessageTypes: ReadonlySet<MessageType> = new Set<MessageType>([
  'hello', 'heartbeat', 'applied', 'fault', 'drained', 'error',
]);
/** What a controller accepts from a CLI connection. */
export const AdminRequestTypes: ReadonlySet<MessageType> = new Set<MessageType>(['request']);
export const MessageTypes: ReadonlySet<MessageType> = new Set<MessageType>([
  ...ControllerMessageTypes, ...AgentMessageTypes, ...AdminRequestTypes,
]);

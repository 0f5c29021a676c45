/**
 * Agent authentication and per-frame integrity: credentials, the challenge/hello handshake, and the sealed
 * envelope every frame carries once the handshake is done.
 *
 * Owns: the credential format, the hello proof, session-key derivation and the envelope
 *
 *   +---------------------------+------------------------------+----------------------------+
 *   | sequence: u64 big-endian  | mac: HMAC-SHA256, 32 bytes   | body: one CBOR message     |
 *   +---------------------------+------------------------------+----------------------------+
 *     mac = HMAC-SHA256(direction key, sequence || body)
 *
 * Knows nothing about sockets or message schemas beyond the hello fields it signs; the daemons drive it.
 *
 * Handshake (messages.ts, "Session"):
 *   H1. controller -> challenge{nonce C}: 32 fresh random bytes per connection.
 *   H2. agent picks nonce A and sends hello{agent, A, devices, proof}, proof = HMAC-SHA256(secret, transcript),
 *       transcript = "vdmap/hello/v1" || C || A || agent || protocol || devices, each field length-prefixed.
 *       (The brief asked for HMAC(secret, C || agent); the transcript adds a label, so the bytes can never be
 *       mistaken for another use of the secret, and covers A and the devices, so a man in the middle can
 *       neither swap the device list nor pin the session keys to an old nonce.)
 *   H3. controller recomputes the proof with the stored secret and compares in constant time; both sides
 *       derive two session keys with HKDF-SHA256(secret, salt C || A, info "vdmap/session/v1/<direction>/agent").
 *   H4. every later frame is sealed with the sender's direction key; the first sealed frame each way has
 *       sequence 0, then 1, 2, ... The controller's first sealed frame is welcome, which proves it too holds
 *       the secret.
 *
 * Invariants:
 *   A1. A frame is accepted only if its MAC verifies under the direction key (forged or altered: VDM_AUTH_FORGED)
 *       and its sequence is exactly the next expected one (replayed, reordered or dropped: VDM_AUTH_REPLAY).
 *   A2. Per-direction keys: a frame reflected back to its sender never verifies.
 *   A3. Fresh C and A per connection: a frame recorded in one session never verifies in another.
 *   A4. After its first refusal a FrameVerifier refuses everything: the session must be closed.
 *   A5. Secret and MAC comparisons are constant-time (crypto.timingSafeEqual); an unknown agent costs the same
 *       work as a known one with a wrong credential.
 *
 * Credentials are stored as issued (not hashed) by the controller store: a challenge-response over HMAC needs
 * the verifier to hold the key itself, and a hash used as that key would only be the secret under another
 * name. The store file is therefore created owner-only (controller/store/lmdb-store.ts).
 *
 * Thread: the main thread of either daemon; FrameAuthenticator/FrameVerifier hold per-connection state.
 * Errors leaving: VDM_AUTH_DENIED, VDM_AUTH_FORGED, VDM_AUTH_REPLAY, VDM_AUTH_CREDENTIAL_FORMAT,
 * VDM_WIRE_VERSION, VDM_WIRE_MALFORMED (envelope shorter than its header).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { VdmapError } from '../errors/error.js';
import {
  type ChallengeMessage, type DeviceView, type HelloMessage, PROTOCOL_VERSION, WireLimits,
} from './messages.js';

export const CREDENTIAL_BYTES = 32;
export const SEQUENCE_BYTES = 8;
export const MAC_BYTES = 32;
export const ENVELOPE_HEADER_BYTES = SEQUENCE_BYTES + MAC_BYTES;
const CREDENTIAL_PREFIX = 'vdmap-credential-v1:';

// ---- credentials ----

/** A new random credential secret; the controller stores it and prints encodeCredential() of it once. */
export function issueCredential(): Uint8Array {
  return new Uint8Array(randomBytes(CREDENTIAL_BYTES));
}

/** The text an operator copies to the agent host: a prefix and the secret in base64url. */
export function encodeCredential(secret: Uint8Array): string {
  return CREDENTIAL_PREFIX + Buffer.from(secret).toString('base64url');
}

export function decodeCredential(textForm: string): Uint8Array | VdmapError {
  const trimmed = textForm.trim();
  const body = trimmed.startsWith(CREDENTIAL_PREFIX) ? trimmed.slice(CREDENTIAL_PREFIX.length) : undefined;
  if (body === undefined || !/^[A-Za-z0-9_-]+$/.test(body)) {
    return new VdmapError('VDM_AUTH_CREDENTIAL_FORMAT', `a credential starts with '${CREDENTIAL_PREFIX}' followed by base64url`);
  }
  const secret = Buffer.from(body, 'base64url');
  if (secret.byteLength !== CREDENTIAL_BYTES) {
    return new VdmapError('VDM_AUTH_CREDENTIAL_FORMAT',
      `a credential holds ${CREDENTIAL_BYTES} bytes, this one ${secret.byteLength}`);
  }
  return new Uint8Array(secret);
}

export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(WireLimits.nonceBytes));
}

// ---- handshake ----

/** H1: the controller's first message on every connection. */
export function createChallenge(): ChallengeMessage {
  return { type: 'challenge', protocol: PROTOCOL_VERSION, nonce: newNonce() };
}

export interface SessionKeys {
  agentToController: Uint8Array;
  controllerToAgent: Uint8Array;
}

export interface AgentIdentity {
  agent: string;
  secret: Uint8Array;
  devices: DeviceView[];
}

/** H2 on the agent: the hello to send and the session keys, or VDM_WIRE_VERSION for a controller of another version. */
export function answerChallenge(challenge: ChallengeMessage, identity: AgentIdentity):
  { hello: HelloMessage; keys: SessionKeys } | VdmapError {
  const versionProblem = checkProtocol(challenge.protocol, 'controller');
  if (versionProblem !== undefined) return versionProblem;
  const unsigned = {
    protocol: PROTOCOL_VERSION, agent: identity.agent, nonce: newNonce(), devices: identity.devices,
  };
  const proof = helloProof(identity.secret, challenge.nonce, unsigned);
  return {
    hello: { type: 'hello', ...unsigned, proof },
    keys: deriveSessionKeys(identity.secret, challenge.nonce, unsigned.nonce, identity.agent),
  };
}

/**
 * H3 on the controller. `secret` is the stored credential of hello.agent, undefined when no such agent is
 * enrolled (A5: refused after the same work). details.reason tells the log why; send the peer only the
 * code and message.
 */
export function acceptHello(challenge: ChallengeMessage, hello: HelloMessage, secret: Uint8Array | undefined):
  SessionKeys | VdmapError {
  const versionProblem = checkProtocol(hello.protocol, 'agent');
  if (versionProblem !== undefined) return versionProblem;
  const expected = helloProof(secret ?? UNKNOWN_AGENT_SECRET, challenge.nonce, hello);
  const proofMatches = hello.proof.byteLength === expected.byteLength && timingSafeEqual(expected, hello.proof);
  if (secret === undefined || !proofMatches) {
    return new VdmapError('VDM_AUTH_DENIED', `agent '${hello.agent}' could not be authenticated`, {
      agent: hello.agent, reason: secret === undefined ? 'unknown-agent' : 'wrong-credential',
    });
  }
  return deriveSessionKeys(secret, challenge.nonce, hello.nonce, hello.agent);
}
const UNKNOWN_AGENT_SECRET = new Uint8Array(randomBytes(CREDENTIAL_BYTES));

export function checkProtocol(peerVersion: number, peer: 'agent' | 'controller'): VdmapError | undefined {
  if (peerVersion === PROTOCOL_VERSION) return undefined;
  return new VdmapError('VDM_WIRE_VERSION',
    `the ${peer} speaks protocol ${peerVersion}, this side speaks ${PROTOCOL_VERSION}`,
    { peerVersion, version: PROTOCOL_VERSION });
}

/** H2: HMAC over the labelled, length-prefixed transcript of the hello (every field except the proof). */
export function helloProof(secret: Uint8Array, challengeNonce: Uint8Array,
  hello: Pick<HelloMessage, 'protocol' | 'agent' | 'nonce' | 'devices'>): Buffer {
  const mac = createHmac('sha256', secret);
  const field = (bytes: Uint8Array): void => {
    mac.update(u32(bytes.byteLength));
    mac.update(bytes);
  };
  const textField = (value: string): void => field(Buffer.from(value, 'utf8'));
  const numberField = (value: number): void => field(u64(value));
  textField('vdmap/hello/v1');
  field(challengeNonce);
  field(hello.nonce);
  textField(hello.agent);
  numberField(hello.protocol);
  numberField(hello.devices.length);
  for (const device of hello.devices) {
    textField(device.id);
    textField(device.path);
    numberField(device.size);
    numberField(device.logicalBlockSize);
  }
  return mac.digest();
}

/** H3: one key per direction (A2), unique per connection (A3). */
export function deriveSessionKeys(secret: Uint8Array, challengeNonce: Uint8Array, agentNonce: Uint8Array,
  agent: string): SessionKeys {
  const salt = Buffer.concat([challengeNonce, agentNonce]);
  const key = (direction: string): Uint8Array =>
    new Uint8Array(hkdfSync('sha256', secret, salt, `vdmap/session/v1/${direction}/${agent}`, 32));
  return { agentToController: key('agent-to-controller'), controllerToAgent: key('controller-to-agent') };
}

function u32(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value, 0);
  return bytes;
}

function u64(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(8);
  bytes.writeBigUInt64BE(BigInt(value), 0);
  return bytes;
}

// ---- sealed frames ----

function frameMac(key: Uint8Array, sequence: Uint8Array, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(sequence).update(body).digest();
}

/** Seals outgoing bodies with the sender's direction key and the next sequence number (H4). */
export class FrameAuthenticator {
  private nextSequence = 0n;

  constructor(private readonly key: Uint8Array) {}

  /** The payload to frame: sequence, MAC, body. */
  seal(body: Uint8Array): Buffer {
    const envelope = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + body.byteLength);
    envelope.writeBigUInt64BE(this.nextSequence, 0);
    this.nextSequence += 1n;
    const sequence = envelope.subarray(0, SEQUENCE_BYTES);
    frameMac(this.key, sequence, body).copy(envelope, SEQUENCE_BYTES);
    envelope.set(body, ENVELOPE_HEADER_BYTES);
    return envelope;
  }
}

/** Opens incoming envelopes: A1 (MAC first, then sequence) and A4. */
export class FrameVerifier {
  private expectedSequence = 0n;
  private failure: VdmapError | undefined;

  constructor(private readonly key: Uint8Array) {}

  get failed(): VdmapError | undefined {
    return this.failure;
  }

  /** The body of an authentic, in-sequence envelope, or the error that ends the session. */
  open(envelope: Uint8Array): Uint8Array | VdmapError {
    if (this.failure !== undefined) return this.failure;
    this.failure = this.check(envelope);
    if (this.failure !== undefined) return this.failure;
    this.expectedSequence += 1n;
    return envelope.subarray(ENVELOPE_HEADER_BYTES);
  }

  private check(envelope: Uint8Array): VdmapError | undefined {
    if (envelope.byteLength < ENVELOPE_HEADER_BYTES) {
      return new VdmapError('VDM_WIRE_MALFORMED',
        `sealed frame of ${envelope.byteLength} bytes is shorter than its ${ENVELOPE_HEADER_BYTES}-byte header`,
        { reason: 'short-envelope' });
    }
    const view = Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength);
    const sequence = view.subarray(0, SEQUENCE_BYTES);
    const mac = view.subarray(SEQUENCE_BYTES, ENVELOPE_HEADER_BYTES);
    const expectedMac = frameMac(this.key, sequence, view.subarray(ENVELOPE_HEADER_BYTES));
    if (!timingSafeEqual(mac, expectedMac)) {
      return new VdmapError('VDM_AUTH_FORGED', 'frame failed its authentication check', {
        sequence: sequence.readBigUInt64BE(0).toString(),
      });
    }
    const received = sequence.readBigUInt64BE(0);
    if (received !== this.expectedSequence) {
      return new VdmapError('VDM_AUTH_REPLAY',
        `frame has sequence ${received}, expected ${this.expectedSequence}`,
        { sequence: received.toString(), expected: this.expectedSequence.toString() });
    }
    return undefined;
  }
}

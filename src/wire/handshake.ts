/**
 * The two ends of the session opening (auth.ts H1-H4) driven over a WireChannel.
 *
 * Owns: the order of the first messages and when sealing starts. Knows nothing about stores or tables: the
 * controller passes a lookup for stored credentials, the agent its identity.
 *
 * Invariants:
 *   HS1. The controller seals from the frame after the agent's hello, the agent from the frame after its
 *        own hello; welcome is the first sealed frame each way.
 *   HS2. A refused hello is answered with a plain `error` (code and message only) and the channel is closed;
 *        no table or session data reaches an unauthenticated peer. The agent accepts that one plain error in
 *        place of welcome (channel.ts acceptPlainError).
 *   HS3. Each awaited message has a deadline (handshakeTimeoutMs): a silent peer cannot hold a connection.
 *   HS4. A controller listener serves agents and admin clients alike: controllerOpening sends the challenge and
 *        returns the first message, `hello` (continue with completeAgentHandshake) or `request` (an admin
 *        client: it stays unsealed; the daemon decides whether the peer may make admin requests at all).
 *
 * Thread: main thread.
 * Errors leaving: VDM_AUTH_DENIED, VDM_WIRE_VERSION, VDM_WIRE_TIMEOUT, VDM_WIRE_CLOSED, VDM_WIRE_MALFORMED,
 * VDM_WIRE_UNEXPECTED, VDM_AUTH_FORGED, VDM_AUTH_REPLAY, and any code the peer sends in an `error`.
 */
import { randomUUID } from 'node:crypto';
import { VdmapError } from '../errors/error.js';
import { acceptHello, type AgentIdentity, answerChallenge, createChallenge } from './auth.js';
import type { WireChannel } from './channel.js';
import type { ChallengeMessage, DeviceView, HelloMessage, MessageType, RequestMessage, WelcomeMessage, WireMessage } from './messages.js';
import { PROTOCOL_VERSION } from './messages.js';

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ControllerHandshakeOptions {
  /** The stored credential of an enrolled agent; undefined for an unknown name. */
  lookupSecret: (agent: string) => Promise<Uint8Array | undefined> | Uint8Array | undefined;
  leaseMs: number;
  heartbeatMs: number;
  handshakeTimeoutMs?: number;
}

export interface AcceptedAgent {
  agent: string;
  devices: DeviceView[];
  sessionId: string;
}

const HELLO: ReadonlySet<MessageType> = new Set<MessageType>(['hello']);
const HELLO_OR_REQUEST: ReadonlySet<MessageType> = new Set<MessageType>(['hello', 'request']);
const CHALLENGE: ReadonlySet<MessageType> = new Set<MessageType>(['challenge', 'error']);
const WELCOME: ReadonlySet<MessageType> = new Set<MessageType>(['welcome', 'error']);

/** Controller side: challenge, check the hello, seal, welcome. The channel is closed on failure (HS2). */
export async function controllerHandshake(channel: WireChannel, options: ControllerHandshakeOptions):
  Promise<AcceptedAgent | VdmapError> {
  const opening = await controllerOpening(channel, options.handshakeTimeoutMs, HELLO);
  if (opening instanceof VdmapError) return opening;
  return completeAgentHandshake(channel, opening.challenge, opening.first as HelloMessage, options);
}

export interface ControllerOpening {
  challenge: ChallengeMessage;
  first: HelloMessage | RequestMessage;
}

/** HS4: the challenge, then the peer's first message (`hello` or `request` unless `allowed` narrows it). */
export async function controllerOpening(channel: WireChannel, handshakeTimeoutMs = DEFAULT_HANDSHAKE_TIMEOUT_MS,
  allowed: ReadonlySet<MessageType> = HELLO_OR_REQUEST): Promise<ControllerOpening | VdmapError> {
  const challenge = createChallenge();
  await channel.send(challenge);
  const first = await channel.receive({ allowed, timeoutMs: handshakeTimeoutMs });
  if (first === null || (first.type !== 'hello' && first.type !== 'request')) return endedError(channel, 'hello');
  return { challenge, first };
}

/** The rest of the controller side for a `hello`: check the proof, seal, welcome (HS1, HS2). */
export async function completeAgentHandshake(channel: WireChannel, challenge: ChallengeMessage, hello: HelloMessage,
  options: ControllerHandshakeOptions): Promise<AcceptedAgent | VdmapError> {
  const keys = acceptHello(challenge, hello, await options.lookupSecret(hello.agent));
  if (keys instanceof VdmapError) {
    await channel.close(keys);
    return keys;
  }
  channel.seal(keys, 'controller');
  const sessionId = randomUUID();
  await channel.send({
    type: 'welcome', protocol: PROTOCOL_VERSION, sessionId, leaseMs: options.leaseMs, heartbeatMs: options.heartbeatMs,
  });
  return { agent: hello.agent, devices: hello.devices, sessionId };
}

/** Agent side: answer the challenge, seal, wait for welcome (or the controller's refusal). */
export async function agentHandshake(channel: WireChannel, identity: AgentIdentity,
  handshakeTimeoutMs: number = DEFAULT_HANDSHAKE_TIMEOUT_MS): Promise<WelcomeMessage | VdmapError> {
  const challenge = await channel.receive({ allowed: CHALLENGE, timeoutMs: handshakeTimeoutMs });
  if (challenge === null) return endedError(channel, 'challenge');
  if (challenge.type !== 'challenge') return peerError(channel, challenge);
  const answer = answerChallenge(challenge, identity);
  if (answer instanceof VdmapError) {
    await channel.close(answer);
    return answer;
  }
  await channel.send(answer.hello);
  channel.seal(answer.keys, 'agent');
  const welcome = await channel.receive({ allowed: WELCOME, timeoutMs: handshakeTimeoutMs, acceptPlainError: true });
  if (welcome === null) return endedError(channel, 'welcome');
  if (welcome.type !== 'welcome') return peerError(channel, welcome);
  return welcome;
}

function endedError(channel: WireChannel, waitingFor: string): VdmapError {
  return channel.endError ?? new VdmapError('VDM_WIRE_CLOSED', `connection closed while waiting for ${waitingFor}`);
}

/** The peer refused us: its record becomes our error. */
async function peerError(channel: WireChannel, message: WireMessage): Promise<VdmapError> {
  await channel.close();
  if (message.type === 'error') return VdmapError.fromRecord(message.error);
  return new VdmapError('VDM_WIRE_UNEXPECTED', `unexpected '${message.type}' during the handshake`);
}

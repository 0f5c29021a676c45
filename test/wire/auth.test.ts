/**
 * Proves src/wire/auth.ts: a good credential is accepted and both ends derive the same session keys; wrong or
 * unknown credentials, a hello altered after signing, a hello replayed against a new challenge and a peer of
 * another protocol version are refused (H2, H3); sealed frames are accepted only authentic and in sequence, so
 * replayed, reordered, forged, reflected and cross-session frames are refused (A1-A4). Oracle: the handshake
 * functions run against each other, and frames altered byte by byte.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VdmapError } from '../../src/errors/error.js';
import {
  acceptHello, answerChallenge, createChallenge, decodeCredential, encodeCredential, FrameAuthenticator,
  FrameVerifier, issueCredential, type SessionKeys,
} from '../../src/wire/auth.js';
import type { ChallengeMessage, HelloMessage } from '../../src/wire/messages.js';
import { PROTOCOL_VERSION } from '../../src/wire/messages.js';

const devices = [{ id: 'nvme-a', path: '/dev/nvme0n1', size: 2 ** 40, logicalBlockSize: 4096 }];

function handshake(secret: Uint8Array): { challenge: ChallengeMessage; hello: HelloMessage; agentKeys: SessionKeys } {
  const challenge = createChallenge();
  const answer = answerChallenge(challenge, { agent: 'host-a', secret, devices });
  assert.ok(!(answer instanceof VdmapError));
  return { challenge, hello: answer.hello, agentKeys: answer.keys };
}

describe('credentials', () => {
  it('issues distinct 32-byte secrets', () => {
    const a = issueCredential();
    const b = issueCredential();
    assert.equal(a.byteLength, 32);
    assert.notDeepEqual(a, b);
  });

  it('round-trips a credential through its text form', () => {
    const secret = issueCredential();
    assert.deepEqual(decodeCredential(`  ${encodeCredential(secret)}\n`), secret);
  });

  for (const [description, text] of [
    ['without the prefix', Buffer.alloc(32).toString('base64url')],
    ['of the wrong length', `vdmap-credential-v1:${Buffer.alloc(16).toString('base64url')}`],
    ['with characters outside base64url', 'vdmap-credential-v1:abc$def'],
  ]) {
    it(`refuses credential text ${description} with VDM_AUTH_CREDENTIAL_FORMAT`, () => {
      const result = decodeCredential(text);
      assert.ok(result instanceof VdmapError);
      assert.equal(result.code, 'VDM_AUTH_CREDENTIAL_FORMAT');
    });
  }
});

describe('hello handshake', () => {
  it('accepts the issued credential and derives the same keys on both ends', () => {
    const secret = issueCredential();
    const { challenge, hello, agentKeys } = handshake(secret);
    const controllerKeys = acceptHello(challenge, hello, secret);
    assert.ok(!(controllerKeys instanceof VdmapError));
    assert.deepEqual(controllerKeys, agentKeys);
    assert.notDeepEqual(agentKeys.agentToController, agentKeys.controllerToAgent, 'A2: one key per direction');
  });

  it('refuses a wrong credential with VDM_AUTH_DENIED', () => {
    const { challenge, hello } = handshake(issueCredential());
    const result = acceptHello(challenge, hello, issueCredential());
    assert.ok(result instanceof VdmapError);
    assert.equal(result.code, 'VDM_AUTH_DENIED');
    assert.equal(result.details?.reason, 'wrong-credential');
  });

  it('refuses an unknown agent with VDM_AUTH_DENIED', () => {
    const { challenge, hello } = handshake(issueCredential());
    const result = acceptHello(challenge, hello, undefined);
    assert.ok(result instanceof VdmapError);
    assert.equal(result.code, 'VDM_AUTH_DENIED');
    assert.equal(result.details?.reason, 'unknown-agent');
  });

  it('refuses a hello whose device list was altered after signing', () => {
    const secret = issueCredential();
    const { challenge, hello } = handshake(secret);
    const altered = { ...hello, devices: [{ ...devices[0], path: '/dev/sda' }] };
    const result = acceptHello(challenge, altered, secret);
    assert.ok(result instanceof VdmapError);
    assert.equal(result.code, 'VDM_AUTH_DENIED');
  });

  it('refuses a recorded hello replayed against a new challenge', () => {
    const secret = issueCredential();
    const { hello } = handshake(secret);
    const result = acceptHello(createChallenge(), hello, secret);
    assert.ok(result instanceof VdmapError);
    assert.equal(result.code, 'VDM_AUTH_DENIED');
  });

  it('refuses an agent of another protocol version with VDM_WIRE_VERSION', () => {
    const secret = issueCredential();
    const { challenge, hello } = handshake(secret);
    const result = acceptHello(challenge, { ...hello, protocol: PROTOCOL_VERSION + 1 }, secret);
    assert.ok(result instanceof VdmapError);
    assert.equal(result.code, 'VDM_WIRE_VERSION');
  });

  it('makes the agent refuse a controller of another protocol version with VDM_WIRE_VERSION', () => {
    const result = answerChallenge({ ...createChallenge(), protocol: PROTOCOL_VERSION + 1 },
      { agent: 'host-a', secret: issueCredential(), devices });
    assert.ok(result instanceof VdmapError);
    assert.equal(result.code, 'VDM_WIRE_VERSION');
  });
});

describe('sealed frames', () => {
  const keys = handshake(issueCredential()).agentKeys;
  const bodies = ['first', 'second', 'third'].map((text) => Buffer.from(text));

  function sealedSequence(): Buffer[] {
    const sender = new FrameAuthenticator(keys.agentToController);
    return bodies.map((body) => sender.seal(body));
  }

  function openAll(verifier: FrameVerifier, envelopes: Uint8Array[]): (Uint8Array | VdmapError)[] {
    return envelopes.map((envelope) => verifier.open(envelope));
  }

  it('A1: accepts authentic frames in sequence and returns their bodies', () => {
    const opened = openAll(new FrameVerifier(keys.agentToController), sealedSequence());
    assert.deepEqual(opened.map((body) => Buffer.from(body as Uint8Array)), bodies);
  });

  it('A1: refuses a replayed frame with VDM_AUTH_REPLAY', () => {
    const [first, second] = sealedSequence();
    const opened = openAll(new FrameVerifier(keys.agentToController), [first, second, first]);
    assert.equal((opened[2] as VdmapError).code, 'VDM_AUTH_REPLAY');
  });

  it('A1: refuses reordered frames with VDM_AUTH_REPLAY', () => {
    const [first, second, third] = sealedSequence();
    const opened = openAll(new FrameVerifier(keys.agentToController), [first, third, second]);
    assert.ok(!(opened[0] instanceof VdmapError));
    assert.equal((opened[1] as VdmapError).code, 'VDM_AUTH_REPLAY');
  });

  it('A1: refuses a frame whose body was altered with VDM_AUTH_FORGED', () => {
    const [first] = sealedSequence();
    first[first.length - 1] ^= 1;
    assert.equal((new FrameVerifier(keys.agentToController).open(first) as VdmapError).code, 'VDM_AUTH_FORGED');
  });

  it('A1: refuses a frame whose sequence number was rewritten with VDM_AUTH_FORGED', () => {
    const [, second] = sealedSequence();
    second.writeBigUInt64BE(0n, 0);
    assert.equal((new FrameVerifier(keys.agentToController).open(second) as VdmapError).code, 'VDM_AUTH_FORGED');
  });

  it('A2: refuses a frame reflected back to its sender with VDM_AUTH_FORGED', () => {
    const [first] = sealedSequence();
    assert.equal((new FrameVerifier(keys.controllerToAgent).open(first) as VdmapError).code, 'VDM_AUTH_FORGED');
  });

  it('A3: refuses a frame recorded in another session of the same agent', () => {
    const secret = issueCredential();
    const earlier = handshake(secret).agentKeys;
    const later = handshake(secret).agentKeys;
    const recorded = new FrameAuthenticator(earlier.agentToController).seal(Buffer.from('heartbeat'));
    assert.equal((new FrameVerifier(later.agentToController).open(recorded) as VdmapError).code, 'VDM_AUTH_FORGED');
  });

  it('A4: refuses every frame after the first refusal, authentic ones included', () => {
    const [first, second, third] = sealedSequence();
    const forged = Buffer.from(first);
    forged[forged.length - 1] ^= 1;
    const opened = openAll(new FrameVerifier(keys.agentToController), [forged, first, second, third]);
    for (const result of opened) assert.equal((result as VdmapError).code, 'VDM_AUTH_FORGED');
  });

  it('refuses an envelope shorter than its header with VDM_WIRE_MALFORMED', () => {
    assert.equal((new FrameVerifier(keys.agentToController).open(new Uint8Array(39)) as VdmapError).code, 'VDM_WIRE_MALFORMED');
  });
});

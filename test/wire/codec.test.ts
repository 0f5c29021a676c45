/**
 * Proves src/wire/codec.ts: K4 (every message type survives encode -> decode unchanged, typed arrays as
 * compact typed arrays), K2 (each wrong shape is refused with VDM_WIRE_MALFORMED naming the field, unknown
 * types with VDM_WIRE_UNKNOWN_MESSAGE), K1 (no input makes decodeMessage throw; seeded fuzz, seed printed) and
 * K3 (an invalid message is never encoded). Oracle: the sample messages (fixtures/sample-messages.ts) and
 * hand-written CBOR bytes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Encoder } from 'cbor-x';
import { decodeMessage, encodeMessage, parseMessage } from '../../src/wire/codec.js';
import { MessageTypes, type MessageType, WireLimits } from '../../src/wire/messages.js';
import { sampleMessages } from './fixtures/sample-messages.js';
import { seededRandom } from './fixtures/seeded-random.js';

/** A CBOR encoder that will encode anything, to forge what a hostile peer could send. */
const raw = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

function decodeValue(value: unknown) {
  return decodeMessage(raw.encode(value));
}

function refusal(value: unknown): { code: string; field: unknown } {
  const result = decodeValue(value);
  assert.equal(result.ok, false, `expected a refusal of ${JSON.stringify(value, (_key, v) => (ArrayBuffer.isView(v) ? `[${v.constructor.name}]` : v))}`);
  return { code: result.ok ? '' : result.error.code, field: result.ok ? undefined : result.error.details?.field };
}

describe('message codec', () => {
  const samples = sampleMessages();

  for (const type of MessageTypes) {
    it(`K4: round-trips a '${type}' message unchanged`, () => {
      const message = samples[type];
      const result = decodeMessage(encodeMessage(message));
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.deepEqual(result.message, message);
    });
  }

  it('K4: round-trips a refused response carrying an error record', () => {
    const message = { type: 'response' as const, id: 9, ok: false as const, error: { code: 'VDM_TABLE_INVALID' as const, message: 'no' } };
    const result = decodeMessage(encodeMessage(message));
    assert.ok(result.ok);
    assert.deepEqual(result.message, message);
  });

  it('carries table columns as typed arrays: a 100k-extent chunk costs its 900 kB plus a little', () => {
    const count = 100_000;
    const bytes = encodeMessage({
      type: 'table-chunk', transferId: 1, firstExtent: 0, device: new Int32Array(count),
      physicalExtent: new Uint32Array(count), state: new Uint8Array(count),
    });
    assert.ok(bytes.byteLength < count * 9 + 100, `${bytes.byteLength} bytes`);
    const result = decodeMessage(bytes);
    assert.ok(result.ok && result.message.type === 'table-chunk');
    assert.ok(result.message.device instanceof Int32Array);
    assert.ok(result.message.physicalExtent instanceof Uint32Array);
  });

  it('K2: refuses an unknown message type with VDM_WIRE_UNKNOWN_MESSAGE', () => {
    assert.equal(refusal({ type: 'reboot-host' }).code, 'VDM_WIRE_UNKNOWN_MESSAGE');
  });

  it('K2: refuses a message without a type with VDM_WIRE_UNKNOWN_MESSAGE', () => {
    assert.equal(refusal({ agent: 'x' }).code, 'VDM_WIRE_UNKNOWN_MESSAGE');
  });

  it('K2: refuses a payload that is not a map', () => {
    assert.equal(refusal([1, 2, 3]).code, 'VDM_WIRE_MALFORMED');
  });

  it('K1: refuses bytes that are not CBOR, or carry trailing bytes', () => {
    const notCbor = decodeMessage(Uint8Array.of(0xff, 0xff, 0x00));
    assert.equal(notCbor.ok ? '' : notCbor.error.code, 'VDM_WIRE_MALFORMED');
    const valid = encodeMessage(samples.lease);
    const trailing = decodeMessage(Buffer.concat([valid, Uint8Array.of(0)]));
    assert.equal(trailing.ok ? '' : trailing.error.code, 'VDM_WIRE_MALFORMED');
  });

  it('refuses a valid type the caller does not allow now with VDM_WIRE_UNEXPECTED', () => {
    const result = decodeMessage(encodeMessage(samples.lease), new Set<MessageType>(['hello']));
    assert.equal(result.ok ? '' : result.error.code, 'VDM_WIRE_UNEXPECTED');
  });

  // Each row: a sample type, how to break it, and the field the refusal must name.
  const wrongShapes: [MessageType, string, (m: Record<string, unknown>) => void, string][] = [
    ['challenge', 'a short nonce', (m) => { m.nonce = new Uint8Array(31); }, 'nonce'],
    ['challenge', 'a nonce that is a string', (m) => { m.nonce = 'x'.repeat(32); }, 'nonce'],
    ['hello', 'a missing proof', (m) => { delete m.proof; }, 'proof'],
    ['hello', 'an extra field', (m) => { m.admin = true; }, 'admin'],
    ['hello', 'an empty agent name', (m) => { m.agent = ''; }, 'agent'],
    ['hello', 'an agent name with a newline', (m) => { m.agent = 'a\nb'; }, 'agent'],
    ['hello', 'an agent name too long', (m) => { m.agent = 'a'.repeat(WireLimits.maxNameLength + 1); }, 'agent'],
    ['hello', 'too many devices', (m) => { m.devices = Array.from({ length: WireLimits.maxDevicesPerHello + 1 }, (_v, i) => ({ id: `d${i}`, path: '/dev/x', size: 4096, logicalBlockSize: 512 })); }, 'devices'],
    ['hello', 'a device block size that is not a power of two', (m) => { (m.devices as Record<string, unknown>[])[0].logicalBlockSize = 1000; }, 'devices[0].logicalBlockSize'],
    ['hello', 'a zero device size', (m) => { (m.devices as Record<string, unknown>[])[0].size = 0; }, 'devices[0].size'],
    ['hello', 'a device id listed twice', (m) => { (m.devices as Record<string, unknown>[])[1].id = 'nvme-a'; }, 'devices'],
    ['hello', 'a fractional protocol', (m) => { m.protocol = 1.5; }, 'protocol'],
    ['welcome', 'a heartbeat not below the lease', (m) => { m.heartbeatMs = 15000; }, 'heartbeatMs'],
    ['welcome', 'a zero lease', (m) => { m.leaseMs = 0; }, 'leaseMs'],
    ['table-begin', 'too many extents', (m) => { m.extentCount = WireLimits.maxTableExtents + 1; }, 'extentCount'],
    ['table-begin', 'a negative epoch', (m) => { m.epoch = -1; }, 'epoch'],
    ['table-begin', 'a device listed twice', (m) => { m.devices = ['a', 'a']; }, 'devices'],
    ['table-chunk', 'columns of different lengths', (m) => { m.state = new Uint8Array(3); }, 'state'],
    ['table-chunk', 'a device column of the wrong class', (m) => { m.device = new Uint32Array(4); }, 'device'],
    ['table-chunk', 'an oversized chunk', (m) => { m.device = new Int32Array(WireLimits.maxChunkExtents + 1); }, 'device'],
    ['table-chunk', 'an empty chunk', (m) => { m.device = new Int32Array(0); m.physicalExtent = new Uint32Array(0); m.state = new Uint8Array(0); }, 'device'],
    ['table-chunk', 'a first extent above u32', (m) => { m.firstExtent = 2 ** 32; }, 'firstExtent'],
    ['table-end', 'a short digest', (m) => { m.digest = new Uint8Array(16); }, 'digest'],
    ['delta', 'a jump of two epochs', (m) => { m.toEpoch = 14; }, 'toEpoch'],
    ['delta', 'too many entries', (m) => { const n = WireLimits.maxDeltaEntries + 1; m.extent = new Uint32Array(n); }, 'extent'],
    ['delta', 'columns of different lengths', (m) => { m.device = Int32Array.of(0); }, 'device'],
    ['set-state', 'unknown state bits', (m) => { m.set = 0x80; }, 'set'],
    ['set-state', 'a bit both set and cleared', (m) => { m.clear = 2; }, 'clear'],
    ['set-state', 'a zero count', (m) => { m.count = 0; }, 'count'],
    ['set-state', 'a range past extent 2^32 - 1', (m) => { m.firstExtent = 0xffff_fff0; m.count = 100; }, 'count'],
    ['set-state', 'nothing to set or clear', (m) => { m.set = 0; m.clear = 0; }, 'set'],
    ['drain', 'a missing disk', (m) => { delete m.disk; }, 'disk'],
    ['drain', 'a timeout above a day', (m) => { m.timeoutMs = 2 * 24 * 3600 * 1000; }, 'timeoutMs'],
    ['resume', 'a string request id', (m) => { m.requestId = '42'; }, 'requestId'],
    ['lease', 'a lease of Infinity', (m) => { m.leaseMs = Infinity; }, 'leaseMs'],
    ['error', 'an error record without a code', (m) => { m.error = { message: 'x' }; }, 'error.code'],
    ['error', 'an error code outside VDM_', (m) => { m.error = { code: 'EIO', message: 'x' }; }, 'error.code'],
    ['heartbeat', 'a negative time', (m) => { m.sentAt = -5; }, 'sentAt'],
    ['applied', 'a bigint epoch', (m) => { m.epoch = 5n; }, 'epoch'],
    ['fault', 'an unknown kind', (m) => { m.kind = 'meltdown'; }, 'kind'],
    ['fault', 'a null extent on an I/O fault', (m) => { m.extent = null; }, 'extent'],
    ['fault', 'an unknown operation', (m) => { m.operation = 'trim'; }, 'operation'],
    ['drained', 'an error that is a string', (m) => { m.error = 'failed'; }, 'error'],
    ['request', 'a method with spaces', (m) => { m.method = 'rm -rf'; }, 'method'],
    ['request', 'params that are a list', (m) => { m.params = [1]; }, 'params'],
    ['request', 'params holding a Date', (m) => { m.params = { when: new Date(0) }; }, 'params.when'],
    ['request', 'params holding a Set', (m) => { m.params = { items: new Set([1]) }; }, 'params.items'],
    ['request', 'params holding a bigint', (m) => { m.params = { n: 2n ** 70n }; }, 'params.n'],
    ['request', 'params nested too deep', (m) => { let v: unknown = 1; for (let i = 0; i < 40; i++) v = [v]; m.params = { v }; }, 'params.v' + '[0]'.repeat(WireLimits.maxDataDepth)],
    ['response', 'ok without a result field but an error', (m) => { delete m.result; m.error = { code: 'VDM_INTERNAL', message: 'x' }; }, 'error'],
    ['response', 'ok that is not a boolean', (m) => { m.ok = 'yes'; }, 'ok'],
  ];

  for (const [type, description, mutate, field] of wrongShapes) {
    it(`K2: refuses a '${type}' with ${description}`, () => {
      const message = structuredClone(samples[type]) as unknown as Record<string, unknown>;
      mutate(message);
      const result = decodeValue(message);
      assert.equal(result.ok, false);
      if (result.ok) return;
      assert.equal(result.error.code, 'VDM_WIRE_MALFORMED');
      assert.equal(result.error.details?.field, field);
      assert.match(result.error.message, new RegExp(`'${type}'`));
    });
  }

  it('K2: a __proto__ key in params neither pollutes Object.prototype nor sets a prototype', () => {
    const text = (value: string): Buffer => Buffer.concat([Buffer.from([0x60 + value.length]), Buffer.from(value)]);
    // {type: 'request', id: 1, method: 'x', params: {"__proto__": {x: 1}}}, written by hand.
    const message = Buffer.concat([
      Buffer.from([0xa4]), text('type'), text('request'), text('id'), Buffer.from([0x01]), text('method'), text('x'),
      text('params'), Buffer.from([0xa1]), text('__proto__'), Buffer.from([0xa1]), text('x'), Buffer.from([0x01]),
    ]);
    const result = decodeMessage(message);
    assert.equal((({}) as Record<string, unknown>).x, undefined);
    if (result.ok) {
      assert.ok(result.message.type === 'request');
      assert.equal(Object.getPrototypeOf(result.message.params), Object.prototype);
      assert.equal((result.message.params as Record<string, unknown>).x, undefined);
    }
  });

  it('maps an error code this build does not know to VDM_INTERNAL and keeps the original', () => {
    const result = decodeValue({ type: 'error', error: { code: 'VDM_FUTURE_THING', message: 'from a newer peer' } });
    assert.ok(result.ok && result.message.type === 'error');
    assert.equal(result.message.error.code, 'VDM_INTERNAL');
    assert.equal(result.message.error.details?.remoteCode, 'VDM_FUTURE_THING');
  });

  it('K3: refuses to encode an invalid message', () => {
    assert.throws(() => encodeMessage({ ...samples.delta, toEpoch: 99 }), { code: 'VDM_WIRE_MALFORMED' });
  });

  it('K1: never throws on random bytes or on mutated valid messages', () => {
    const random = seededRandom('codec fuzz');
    const encoded = [...MessageTypes].map((type) => Buffer.from(encodeMessage(samples[type])));
    let accepted = 0;
    for (let round = 0; round < 20_000; round++) {
      let input: Uint8Array;
      if (round % 2 === 0) {
        input = random.bytes(1 + random.below(64));
      } else {
        const base = Buffer.from(encoded[random.below(encoded.length)]);
        for (let flips = 1 + random.below(4); flips > 0; flips--) base[random.below(base.length)] = random.below(256);
        input = base.subarray(0, 1 + random.below(base.length));
      }
      const result = decodeMessage(input);
      if (result.ok) {
        accepted++;
        assert.ok(parseMessage(result.message).ok, 'whatever is accepted passes its parser again');
      } else {
        assert.match(result.error.code, /^VDM_WIRE_/);
      }
    }
    console.log(`codec fuzz: ${accepted} of 20000 inputs decoded as valid messages`);
  });
});

/**
 * Proves the framing invariants of src/wire/frame.ts: F1 (size limits both ways), F2 (an oversized
 * announcement fails from its header alone, before any payload is buffered), F3 (any chunking, one byte at a
 * time included, yields the same frames; seeded, the seed is printed) and F4 (bad streams are reported as
 * values, once, and the decoder stays failed). Oracle: the payloads that were framed, byte for byte.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VdmapError } from '../../src/errors/error.js';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from '../../src/wire/frame.js';
import { seededRandom } from './fixtures/seeded-random.js';

function header(length: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(length >>> 0, 0);
  return bytes;
}

describe('FrameDecoder', () => {
  it('F3: yields the framed payloads unchanged under random chunking', () => {
    const random = seededRandom('frame chunking');
    for (let round = 0; round < 50; round++) {
      const payloads = Array.from({ length: 1 + random.below(20) }, () => random.bytes(1 + random.below(3000)));
      const stream = Buffer.concat(payloads.map((payload) => encodeFrame(payload)));
      const decoder = new FrameDecoder();
      const received: Uint8Array[] = [];
      for (let position = 0; position < stream.length;) {
        const size = 1 + random.below(random.below(2) === 0 ? 8 : 5000);
        const { frames, error } = decoder.push(stream.subarray(position, position + size));
        assert.equal(error, undefined);
        received.push(...frames.map((frame) => Uint8Array.from(frame)));
        position += size;
      }
      assert.deepEqual(received, payloads.map((payload) => Uint8Array.from(payload)));
      assert.equal(decoder.end(), undefined);
    }
  });

  it('F3: yields the same frames when fed one byte at a time', () => {
    const payloads = [Buffer.from('first'), Buffer.alloc(70_000, 7), Buffer.from([0])];
    const stream = Buffer.concat(payloads.map((payload) => encodeFrame(payload)));
    const decoder = new FrameDecoder();
    const received: Buffer[] = [];
    for (const byte of stream) received.push(...decoder.push(Uint8Array.of(byte)).frames.map((frame) => Buffer.from(frame)));
    assert.deepEqual(received, payloads);
  });

  it('F2: refuses an oversized frame from its 4 header bytes, without buffering payload', () => {
    const decoder = new FrameDecoder();
    const before = process.memoryUsage().arrayBuffers;
    const { frames, error } = decoder.push(header(0xffff_ffff));
    assert.equal(frames.length, 0);
    assert.ok(error instanceof VdmapError);
    assert.equal(error.code, 'VDM_WIRE_FRAME_TOO_LARGE');
    assert.equal(error.details?.length, 0xffff_ffff);
    assert.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024, 'no payload-sized allocation happened');
  });

  it('F1: accepts a frame of exactly the limit and refuses one byte more', () => {
    const small = new FrameDecoder({ maxFrameBytes: 16 });
    const ok = small.push(Buffer.concat([header(16), Buffer.alloc(16, 1)]));
    assert.equal(ok.error, undefined);
    assert.equal(ok.frames.length, 1);
    const refused = new FrameDecoder({ maxFrameBytes: 16 }).push(header(17));
    assert.equal(refused.error?.code, 'VDM_WIRE_FRAME_TOO_LARGE');
  });

  it('F1: refuses an empty frame as malformed', () => {
    const { error } = new FrameDecoder().push(header(0));
    assert.equal(error?.code, 'VDM_WIRE_MALFORMED');
  });

  it('reports an HTTP request sent to the port as an oversized frame', () => {
    const { error } = new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(error?.code, 'VDM_WIRE_FRAME_TOO_LARGE');
  });

  it('F4: never throws on random garbage and stays failed after an error', () => {
    const random = seededRandom('frame garbage');
    for (let round = 0; round < 2000; round++) {
      const decoder = new FrameDecoder({ maxFrameBytes: 1 + random.below(MAX_FRAME_BYTES) });
      const first = decoder.push(random.bytes(random.below(64)));
      const second = decoder.push(random.bytes(1 + random.below(64)));
      if (first.error !== undefined) {
        assert.equal(second.error, first.error, 'the same error is reported again');
        assert.equal(second.frames.length, 0);
        assert.equal(decoder.failed, first.error);
      }
    }
  });

  it('reports a stream that ends inside a header as truncated', () => {
    const decoder = new FrameDecoder();
    decoder.push(Uint8Array.of(0, 0));
    assert.equal(decoder.end()?.code, 'VDM_WIRE_TRUNCATED');
  });

  it('reports a stream that ends inside a payload as truncated', () => {
    const decoder = new FrameDecoder();
    decoder.push(Buffer.concat([header(10), Buffer.alloc(9)]));
    const error = decoder.end();
    assert.equal(error?.code, 'VDM_WIRE_TRUNCATED');
    assert.equal(error?.details?.payloadBytes, 9);
  });

  it('reports a clean end when the stream stops between frames', () => {
    const decoder = new FrameDecoder();
    decoder.push(encodeFrame(Buffer.from('x')));
    assert.equal(decoder.end(), undefined);
  });
});

describe('encodeFrame', () => {
  it('prefixes the payload with its big-endian length', () => {
    assert.deepEqual(encodeFrame(Buffer.from('abc')), Buffer.from([0, 0, 0, 3, 0x61, 0x62, 0x63]));
  });

  it('throws VDM_WIRE_FRAME_TOO_LARGE for a payload above the limit, saying the sender refused it', () => {
    assert.throws(() => encodeFrame(new Uint8Array(MAX_FRAME_BYTES + 1)), {
      code: 'VDM_WIRE_FRAME_TOO_LARGE',
      message: /^a message of 4194305 bytes does not fit one frame \(limit 4194304 bytes\) and was not sent$/,
      details: { length: MAX_FRAME_BYTES + 1, maxFrameBytes: MAX_FRAME_BYTES, side: 'sender' },
    });
  });

  it('throws VDM_WIRE_MALFORMED for an empty payload', () => {
    assert.throws(() => encodeFrame(new Uint8Array(0)), { code: 'VDM_WIRE_MALFORMED' });
  });
});

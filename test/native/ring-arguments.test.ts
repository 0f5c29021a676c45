/**
 * Proves the ring refuses bad arguments before anything reaches the kernel (invariants G3, G5 of
 * src/native/ring.ts, R4 of native-bindings/src/ring.h): every bad descriptor, buffer, count or option throws
 * VDM_RING_ARGUMENT with details.errno 'EINVAL', and a batch with one bad descriptor queues none of its good ones.
 * Oracles: inFlight stays 0; a NOP submitted afterwards is the only completion; the file still holds zeroes
 * (read with node:fs) where the good write of the refused batch would have written.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { VdmapError } from '../../src/errors/error.js';
import {
  type DeviceInfo,
  Opcode,
  Ring,
  SUBMISSION_STRIDE,
  allocateAligned,
  setDescriptor,
} from '../../src/native/index.js';
import { BLOCK } from './fixtures/patterns.js';
import { collectCompletions, type RingOnFile, ringOnExt4File } from './fixtures/system.js';

function isArgumentError(error: unknown): boolean {
  return error instanceof VdmapError && error.code === 'VDM_RING_ARGUMENT' && (error.details as { errno?: string }).errno === 'EINVAL';
}

describe('Ring arguments', () => {
  let file: RingOnFile;
  let path: string;
  let device: DeviceInfo;
  let ring: Ring;
  let buffer: Uint8Array;
  let bufferIndex: number;

  before(() => {
    file = ringOnExt4File('ring-arguments', { fileBytes: 16 * BLOCK, entries: 16, maxBuffers: 2, bufferBytes: 4 * BLOCK });
    ({ path, device, ring, buffer, bufferIndex } = file);
  });
  after(() => file.release());

  /** Descriptor 0 is a good write of 0xEE at offset 0; descriptor 1 is made bad by `spoil`. */
  function goodWriteThenBad(spoil: (submissions: Float64Array, base: number) => void): void {
    buffer.fill(0xee, 0, BLOCK);
    setDescriptor(ring.submissions, 0, Opcode.WRITE, device.fd, bufferIndex, 0, BLOCK, 0, 1, 0);
    setDescriptor(ring.submissions, 1, Opcode.READ, device.fd, bufferIndex, BLOCK, BLOCK, BLOCK, 2, 0);
    spoil(ring.submissions, SUBMISSION_STRIDE);
  }

  const badDescriptors: Array<[string, (submissions: Float64Array, base: number) => void]> = [
    ['an unknown opcode', (s, b) => { s[b] = 99; }],
    ['the reserved SEND opcode', (s, b) => { s[b] = Opcode.SEND; }],
    ['RECV with flags', (s, b) => { s[b] = Opcode.RECV; s[b + 7] = 1; }],
    ['RECV into an unregistered buffer', (s, b) => { s[b] = Opcode.RECV; s[b + 2] = 1; }],
    ['POLL with no events', (s, b) => { s[b] = Opcode.POLL; s[b + 7] = 0; }],
    ['POLL with an event it does not take', (s, b) => { s[b] = Opcode.POLL; s[b + 7] = 0x008; }],
    ['a negative fd', (s, b) => { s[b + 1] = -1; }],
    ['an unregistered buffer index', (s, b) => { s[b + 2] = 1; }],
    ['a region past the end of its buffer', (s, b) => { s[b + 3] = 3 * BLOCK + 1; }],
    ['a fractional length', (s, b) => { s[b + 4] = 4096.5; }],
    ['a NaN file offset', (s, b) => { s[b + 5] = Number.NaN; }],
    ['a negative file offset', (s, b) => { s[b + 5] = -4096; }],
    ['user data above 32 bits', (s, b) => { s[b + 6] = 2 ** 32; }],
    ['flags a READ does not take', (s, b) => { s[b + 7] = 1; }],
    ['an infinite length', (s, b) => { s[b + 4] = Number.POSITIVE_INFINITY; }],
  ];

  for (const [what, spoil] of badDescriptors) {
    it(`throws VDM_RING_ARGUMENT and queues nothing when a batch holds ${what}`, async () => {
      goodWriteThenBad(spoil);
      assert.throws(() => ring.submit(2), isArgumentError);
      assert.equal(ring.inFlight, 0);
      setDescriptor(ring.submissions, 0, Opcode.NOP, 0, 0, 0, 0, 0, 42, 0);
      assert.equal(ring.submit(1), 1);
      const results = await collectCompletions(ring, 1);
      assert.deepEqual([...results.keys()], [42], 'only the NOP completed');
      assert.ok(readFileSync(path).subarray(0, BLOCK).every((byte) => byte === 0), 'the good write never ran');
    });
  }

  it('throws VDM_RING_ARGUMENT when count or first reach past the descriptor slots', () => {
    for (const [count, first] of [[17, 0], [-1, 0], [1.5, 0], [8, 9], [1, 16]]) {
      assert.throws(() => ring.submit(count, first), isArgumentError, `${count} from ${first}`);
    }
    assert.equal(ring.inFlight, 0);
  });

  it('throws VDM_RING_ARGUMENT when a registered view is misaligned, not page-sized, or not a Uint8Array', () => {
    const memory = allocateAligned(3 * BLOCK);
    assert.throws(() => ring.registerBuffer(memory.subarray(512, 512 + BLOCK)), isArgumentError);
    assert.throws(() => ring.registerBuffer(memory.subarray(0, 100)), isArgumentError);
    assert.throws(() => ring.registerBuffer(new Float64Array(memory.buffer, memory.byteOffset, 512) as unknown as Uint8Array), isArgumentError);
  });

  it('throws VDM_RING_BUFFER with errno ENOSPC when every buffer slot is used', () => {
    ring.registerBuffer(allocateAligned(BLOCK));
    assert.throws(() => ring.registerBuffer(allocateAligned(BLOCK)), (error: unknown) =>
      error instanceof VdmapError && error.code === 'VDM_RING_BUFFER' && (error.details as { errno?: string }).errno === 'ENOSPC');
  });

  it('refuses a descriptor naming a buffer whose ArrayBuffer was transferred away', () => {
    const local = new Ring({ entries: 4 });
    try {
      const plain = allocateAligned(BLOCK, { shared: false });
      const index = local.registerBuffer(plain);
      structuredClone(plain.buffer, { transfer: [plain.buffer as ArrayBuffer] });
      setDescriptor(local.submissions, 0, Opcode.READ, device.fd, index, 0, BLOCK, 0, 1, 0);
      assert.throws(() => local.submit(1), (error: unknown) => isArgumentError(error) && /detached/.test((error as Error).message));
      assert.equal(local.inFlight, 0);
    } finally {
      local.close();
    }
  });

  it('throws VDM_RING_ARGUMENT when options are invalid', () => {
    for (const options of [{ entries: 3 }, { entries: 0 }, { entries: 65536 }, { entries: 8, maxBuffers: 0 }, { entries: 8, sqpoll: { idleMilliseconds: -1 } }]) {
      assert.throws(() => new Ring(options), isArgumentError, JSON.stringify(options));
    }
  });
});

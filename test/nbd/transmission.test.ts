/**
 * Proves: the request loop (src/nbd/transmission.ts, request-validation.ts, reply-writer.ts) validates,
 * executes and replies as proto.md says: the right NBD error for each invalid request (V1..V8), structured and
 * simple replies framed correctly, out-of-order completion (X3), in-flight bounds (X2), payloads split across
 * writes (X4), hard disconnects only for bad magic or absurd payloads (X5), DISC after in-flight replies (X6),
 * and every ReadBuffer released, even when the client vanishes (X7).
 * Oracle: reply bytes read with a raw socket client against proto.md, and the MemoryExport's own state
 * (bytes, call counts, outstanding ReadBuffers). After each misbehaving client a second connection must work.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as nbd from '../../src/nbd/protocol.js';
import { MemoryExport } from './fixtures/memory-export.js';
import { errorMessageOf, RawClient, requestBytes } from './fixtures/raw-client.js';
import { startTestServer, type TestServer } from './fixtures/test-server.js';
import { until } from '../support/wait.js';

const MiB = 1024 * 1024;

describe('transmission', () => {
  let server: TestServer;
  const disk = new MemoryExport({ name: 'disk', size: 8 * MiB, capabilities: { maximumBlockSize: 1 * MiB } });
  const aligned = new MemoryExport({ name: 'aligned', size: 1 * MiB, capabilities: { minimumBlockSize: 512 } });
  const lending = new MemoryExport({ name: 'lending', size: 1 * MiB, writeBufferLimit: 64 * 1024 });
  const readOnly = new MemoryExport({ name: 'ro', size: 1 * MiB, capabilities: { readOnly: true } });
  const plain = new MemoryExport({
    name: 'plain', size: 1 * MiB,
    capabilities: { flush: false, fua: false, trim: false, writeZeroes: false, fastZero: false, cache: false, multiConn: false },
  });
  const clients: RawClient[] = [];

  before(async () => {
    server = await startTestServer([disk, aligned, lending, readOnly, plain], { connection: { maxInflightRequests: 8 } });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
    disk.injectFailure(undefined);
  });
  after(async () => {
    await server.stop();
    assert.equal(disk.outstandingReadBuffers, 0, 'every ReadBuffer released');
  });

  async function open(name: string, wants: { structured?: boolean; allocation?: boolean } = {}): Promise<{ raw: RawClient; flags: number }> {
    const raw = await RawClient.connect({ path: server.unixPath });
    clients.push(raw);
    const { flags } = await raw.open(name, wants);
    return { raw, flags };
  }

  async function assertServerStillServes(): Promise<void> {
    const { raw } = await open('disk');
    raw.request(nbd.NBD_CMD_READ, { handle: 99n, offset: 0, length: 4096 });
    const reply = await raw.readReply(4096);
    assert.equal(reply.error, 0);
    assert.equal(reply.handle, 99n);
  }

  it('advertises exactly the capabilities of the export in the transmission flags', async () => {
    const full = await open('disk', { structured: true });
    assert.equal(full.flags, nbd.NBD_FLAG_HAS_FLAGS | nbd.NBD_FLAG_SEND_FLUSH | nbd.NBD_FLAG_SEND_FUA | nbd.NBD_FLAG_SEND_TRIM |
      nbd.NBD_FLAG_SEND_WRITE_ZEROES | nbd.NBD_FLAG_SEND_FAST_ZERO | nbd.NBD_FLAG_SEND_CACHE | nbd.NBD_FLAG_SEND_DF | nbd.NBD_FLAG_CAN_MULTI_CONN);
    const bare = await open('plain');
    assert.equal(bare.flags, nbd.NBD_FLAG_HAS_FLAGS);
    const ro = await open('ro');
    assert.equal(ro.flags & (nbd.NBD_FLAG_READ_ONLY | nbd.NBD_FLAG_SEND_TRIM | nbd.NBD_FLAG_SEND_WRITE_ZEROES), nbd.NBD_FLAG_READ_ONLY);
  });

  it('answers a simple read with the header and then exactly the bytes', async () => {
    disk.store.fill(0xab, 4096, 8192);
    const { raw } = await open('disk');
    raw.request(nbd.NBD_CMD_READ, { handle: 0x0102030405060708n, offset: 4096, length: 4096 });
    const reply = await raw.readReply(4096);
    assert.equal(reply.kind, 'simple');
    assert.equal(reply.handle, 0x0102030405060708n);
    assert.ok(reply.payload.every((b) => b === 0xab));
  });

  it('answers a structured read with one OFFSET_DATA chunk flagged DONE', async () => {
    disk.store.fill(0xcd, 8192, 12288);
    const { raw } = await open('disk', { structured: true });
    raw.request(nbd.NBD_CMD_READ, { handle: 11n, offset: 8192, length: 4096, flags: nbd.NBD_CMD_FLAG_DF });
    const reply = await raw.readReply();
    assert.equal(reply.kind, 'structured');
    assert.equal(reply.type, nbd.NBD_REPLY_TYPE_OFFSET_DATA);
    assert.equal(reply.flags, nbd.NBD_REPLY_FLAG_DONE);
    assert.equal(reply.payload.readBigUInt64BE(0), 8192n);
    assert.equal(reply.payload.length, 8 + 4096);
    assert.ok(reply.payload.subarray(8).every((b) => b === 0xcd));
  });

  it('writes a payload that arrives split across many small writes', async () => {
    const { raw } = await open('disk');
    const bytes = requestBytes(nbd.NBD_CMD_WRITE, { handle: 21n, offset: 65536, payload: Buffer.alloc(3000, 0x5a) });
    await raw.trickle(bytes, 7);
    const reply = await raw.readReply();
    assert.equal(reply.error, 0);
    assert.equal(reply.handle, 21n);
    assert.ok(disk.store.subarray(65536, 65536 + 3000).every((b) => b === 0x5a));
    assert.equal(disk.store[65536 + 3000], 0);
  });

  it('X4: fills the export\'s WriteBuffer from a payload split across many small writes, and commits it once', async () => {
    const { raw } = await open('lending');
    const payload = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7 + 1) & 0xff));
    const bytes = requestBytes(nbd.NBD_CMD_WRITE, { handle: 22n, offset: 4097, payload });
    await raw.trickle(bytes, 13);
    const reply = await raw.readReply();
    assert.equal(reply.error, 0);
    assert.equal(reply.handle, 22n);
    assert.deepEqual(Buffer.from(lending.store.subarray(4097, 4097 + payload.length)), payload);
    assert.equal(lending.store[4096], 0, 'nothing before the range');
    assert.equal(lending.store[4097 + payload.length], 0, 'nothing after the range');
    assert.deepEqual(lending.writeBuffers, { lent: 1, committed: 1, abandoned: 0 });
  });

  it('answers every request of a batch sent in one write', async () => {
    const { raw } = await open('disk');
    const requests: Buffer[] = [];
    for (let i = 0; i < 64; i++) requests.push(requestBytes(nbd.NBD_CMD_READ, { handle: BigInt(1000 + i), offset: i * 512, length: 512 }));
    raw.write(Buffer.concat(requests));
    const handles = new Set<bigint>();
    for (let i = 0; i < 64; i++) handles.add((await raw.readReply(512)).handle);
    assert.equal(handles.size, 64);
  });

  it('X3: replies to a fast request while a slow one is still held', async () => {
    const { raw } = await open('disk');
    const release = disk.hold('read');
    raw.request(nbd.NBD_CMD_READ, { handle: 1n, offset: 0, length: 512 });
    await sleep(20);
    raw.request(nbd.NBD_CMD_FLUSH, { handle: 2n });
    const first = await raw.readReply();
    assert.equal(first.handle, 2n);
    release();
    const second = await raw.readReply(512);
    assert.equal(second.handle, 1n);
  });

  it('X2: holds at most maxInflightRequests calls on the export and resumes as they settle', async () => {
    const { raw } = await open('disk');
    const before = disk.calls.read;
    const release = disk.hold('read');
    for (let i = 0; i < 20; i++) raw.request(nbd.NBD_CMD_READ, { handle: BigInt(i), offset: i * 512, length: 512 });
    await until(() => disk.calls.read - before >= 8, 'the first 8 reads to reach the export');
    await sleep(100); // room for a ninth, if the bound leaked
    assert.equal(disk.calls.read - before, 8);
    release();
    for (let i = 0; i < 20; i++) await raw.readReply(512);
    assert.equal(disk.calls.read - before, 20);
  });

  it('answers EINVAL to an unknown command, with the code in the structured message', async () => {
    const { raw } = await open('disk', { structured: true });
    raw.request(42, { handle: 4n, offset: 0, length: 512 });
    const reply = await raw.readReply();
    assert.equal(reply.type, nbd.NBD_REPLY_TYPE_ERROR);
    assert.equal(reply.flags, nbd.NBD_REPLY_FLAG_DONE);
    assert.equal(reply.error, nbd.NBD_EINVAL);
    assert.match(errorMessageOf(reply), /^VDM_NBD_UNKNOWN_COMMAND: /);
  });

  it('answers EINVAL to a read past the end and ENOSPC to a write past the end, then goes on', async () => {
    const { raw } = await open('disk');
    raw.request(nbd.NBD_CMD_READ, { handle: 1n, offset: 8 * MiB - 512, length: 1024 });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
    raw.request(nbd.NBD_CMD_WRITE, { handle: 2n, offset: 8 * MiB, payload: Buffer.alloc(512, 1) });
    assert.equal((await raw.readReply()).error, nbd.NBD_ENOSPC);
    raw.request(nbd.NBD_CMD_WRITE_ZEROES, { handle: 3n, offset: 2n ** 62n, length: 512 });
    assert.equal((await raw.readReply()).error, nbd.NBD_ENOSPC);
    raw.request(nbd.NBD_CMD_TRIM, { handle: 4n, offset: 8 * MiB, length: 512 });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
    raw.request(nbd.NBD_CMD_READ, { handle: 5n, offset: 0, length: 512 });
    const ok = await raw.readReply(512);
    assert.deepEqual([ok.handle, ok.error], [5n, 0]);
  });

  it('answers EINVAL to requests not aligned to the minimum block size', async () => {
    const { raw } = await open('aligned', { structured: true });
    raw.request(nbd.NBD_CMD_READ, { handle: 1n, offset: 100, length: 512 });
    const misaligned = await raw.readReply();
    assert.equal(misaligned.error, nbd.NBD_EINVAL);
    assert.match(errorMessageOf(misaligned), /^VDM_NBD_MISALIGNED: /);
    raw.request(nbd.NBD_CMD_WRITE, { handle: 2n, offset: 512, payload: Buffer.alloc(100) });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
    raw.request(nbd.NBD_CMD_READ, { handle: 3n, offset: 512, length: 512 });
    assert.equal((await raw.readReply()).type, nbd.NBD_REPLY_TYPE_OFFSET_DATA);
  });

  it('answers EINVAL to a zero-length read and to a flush with an offset', async () => {
    const { raw } = await open('disk');
    raw.request(nbd.NBD_CMD_READ, { handle: 1n, offset: 0, length: 0 });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
    raw.request(nbd.NBD_CMD_FLUSH, { handle: 2n, offset: 512 });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
  });

  it('answers EINVAL to a read over the maximum block size and to a flag the command does not take', async () => {
    const { raw } = await open('disk');
    raw.request(nbd.NBD_CMD_READ, { handle: 1n, offset: 0, length: 2 * MiB });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
    raw.request(nbd.NBD_CMD_READ, { handle: 2n, offset: 0, length: 512, flags: nbd.NBD_CMD_FLAG_DF });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL, 'DF without structured replies');
    raw.request(nbd.NBD_CMD_FLUSH, { handle: 3n, flags: nbd.NBD_CMD_FLAG_NO_HOLE });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
  });

  it('answers EINVAL to FUA and to commands the export did not advertise', async () => {
    const { raw } = await open('plain');
    raw.request(nbd.NBD_CMD_WRITE, { handle: 1n, offset: 0, payload: Buffer.alloc(512), flags: nbd.NBD_CMD_FLAG_FUA });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
    for (const command of [nbd.NBD_CMD_FLUSH, nbd.NBD_CMD_TRIM, nbd.NBD_CMD_WRITE_ZEROES, nbd.NBD_CMD_CACHE]) {
      raw.request(command, { handle: 2n, offset: 0, length: command === nbd.NBD_CMD_FLUSH ? 0 : 512 });
      assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL, `command ${command}`);
    }
  });

  it('answers EPERM to writes, trims and zeroes on a read-only export', async () => {
    const { raw } = await open('ro');
    raw.request(nbd.NBD_CMD_WRITE, { handle: 1n, offset: 0, payload: Buffer.alloc(512, 1) });
    assert.equal((await raw.readReply()).error, nbd.NBD_EPERM);
    raw.request(nbd.NBD_CMD_TRIM, { handle: 2n, offset: 0, length: 512 });
    assert.equal((await raw.readReply()).error, nbd.NBD_EPERM);
    raw.request(nbd.NBD_CMD_WRITE_ZEROES, { handle: 3n, offset: 0, length: 512 });
    assert.equal((await raw.readReply()).error, nbd.NBD_EPERM);
    assert.equal(readOnly.calls.write + readOnly.calls.trim + readOnly.calls.writeZeroes, 0);
  });

  it('answers EINVAL and skips the payload of a write over the maximum block size but under the cap', async () => {
    const { raw } = await open('disk');
    raw.request(nbd.NBD_CMD_WRITE, { handle: 1n, offset: 0, payload: Buffer.alloc(2 * MiB, 9) });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
    raw.request(nbd.NBD_CMD_READ, { handle: 2n, offset: 0, length: 512 });
    const reply = await raw.readReply(512);
    assert.equal(reply.handle, 2n);
    assert.notEqual(disk.store[0], 9);
  });

  it('drops the connection when a write announces a payload over the 32 MiB cap', async () => {
    const { raw } = await open('disk');
    raw.request(nbd.NBD_CMD_WRITE, { handle: 1n, offset: 0, length: 0xffffffff });
    assert.equal(await raw.waitClosed(), true);
    assert.ok(server.errors.some((e) => e.code === 'VDM_NBD_PROTOCOL_VIOLATION'));
    await assertServerStillServes();
  });

  it('drops the connection on a bad request magic and keeps serving others', async () => {
    const { raw } = await open('disk');
    raw.request(nbd.NBD_CMD_READ, { handle: 1n, offset: 0, length: 512, magic: 0xdeadbeef });
    assert.equal(await raw.waitClosed(), true);
    await assertServerStillServes();
  });

  it('survives a client that disconnects in the middle of a write payload', async () => {
    const { raw } = await open('disk');
    const writesBefore = disk.calls.write;
    raw.write(requestBytes(nbd.NBD_CMD_WRITE, { handle: 0n, length: 65536, payload: Buffer.alloc(1000, 7) }));
    await sleep(20);
    raw.destroy();
    await sleep(20);
    assert.equal(disk.calls.write, writesBefore);
    await assertServerStillServes();
  });

  it('X7: releases the ReadBuffers of reads that complete after the client vanished', async () => {
    const { raw } = await open('disk');
    const release = disk.hold('read');
    for (let i = 0; i < 4; i++) raw.request(nbd.NBD_CMD_READ, { handle: BigInt(i), offset: 0, length: 4096 });
    await sleep(20);
    raw.destroy();
    await sleep(20);
    release();
    await sleep(50);
    assert.equal(disk.outstandingReadBuffers, 0);
  });

  it('X6: answers every in-flight request after DISC, then closes', async () => {
    const { raw } = await open('disk');
    const release = disk.hold('read');
    raw.request(nbd.NBD_CMD_READ, { handle: 31n, offset: 0, length: 512 });
    raw.request(nbd.NBD_CMD_DISC, { handle: 32n });
    await sleep(30);
    assert.equal(raw.closed, false);
    release();
    const reply = await raw.readReply(512);
    assert.equal(reply.handle, 31n);
    assert.equal(await raw.waitClosed(), true);
  });

  it('X6: serves every request sent before DISC and the client\'s half-close, past the in-flight bound', async () => {
    const { raw } = await open('disk');
    const count = 200; // maxInflightRequests is 8: most wait unparsed behind X2 when the end arrives
    const writes = Array.from({ length: count }, (_, i) => requestBytes(nbd.NBD_CMD_WRITE, {
      handle: BigInt(i), offset: 2 * MiB + i * 16, payload: Buffer.alloc(16, (i % 250) + 1),
    }));
    raw.write(Buffer.concat([...writes, requestBytes(nbd.NBD_CMD_DISC, { handle: 999n })]));
    raw.socket.end();
    const handles = new Set<bigint>();
    for (let i = 0; i < count; i++) {
      const reply = await raw.readReply();
      assert.equal(reply.error, 0);
      handles.add(reply.handle);
    }
    assert.equal(handles.size, count, 'one reply per request');
    for (let i = 0; i < count; i++) {
      assert.ok(disk.store.subarray(2 * MiB + i * 16, 2 * MiB + i * 16 + 16).every((b) => b === (i % 250) + 1), `write ${i} landed`);
    }
    assert.equal(await raw.waitClosed(), true);
  });

  it('X6: replies to a held request after the client half-closed, then closes', async () => {
    const { raw } = await open('disk');
    const release = disk.hold('read');
    raw.request(nbd.NBD_CMD_READ, { handle: 41n, offset: 0, length: 512 });
    raw.socket.end();
    await sleep(30);
    assert.equal(raw.closed, false);
    release();
    const reply = await raw.readReply(512);
    assert.equal(reply.handle, 41n);
    assert.equal(await raw.waitClosed(), true);
  });

  it('X6: drops a WRITE cut short by the client\'s end of input without executing it', async () => {
    const { raw } = await open('disk');
    disk.store.fill(0x5a, 3 * MiB, 3 * MiB + 4096);
    const writes = disk.calls.write;
    const request = requestBytes(nbd.NBD_CMD_WRITE, { handle: 51n, offset: 3 * MiB, length: 4096, payload: Buffer.alloc(4096, 0x11) });
    raw.write(request.subarray(0, request.length - 1000));
    raw.socket.end();
    assert.equal(await raw.waitClosed(), true);
    assert.equal(disk.calls.write, writes, 'no write reached the export');
    assert.ok(disk.store.subarray(3 * MiB, 3 * MiB + 4096).every((b) => b === 0x5a));
    await assertServerStillServes();
  });

  it('answers ERROR_OFFSET with the code and message when the export fails at a known offset', async () => {
    const { raw } = await open('disk', { structured: true });
    disk.injectFailure({ operation: 'read', code: 'VDM_IO_DEVICE', message: 'medium error', offset: 4096 + 512 });
    raw.request(nbd.NBD_CMD_READ, { handle: 7n, offset: 4096, length: 4096 });
    const reply = await raw.readReply();
    assert.equal(reply.type, nbd.NBD_REPLY_TYPE_ERROR_OFFSET);
    assert.equal(reply.error, nbd.NBD_EIO);
    assert.equal(errorMessageOf(reply), 'VDM_IO_DEVICE: medium error');
    assert.equal(reply.payload.readBigUInt64BE(reply.payload.length - 8), 4096n + 512n);
  });

  it('answers a simple reply with the errno of the export failure without structured replies', async () => {
    const { raw } = await open('disk');
    disk.injectFailure({ operation: 'write', code: 'VDM_IO_NOSPACE' });
    raw.request(nbd.NBD_CMD_WRITE, { handle: 8n, offset: 0, payload: Buffer.alloc(512) });
    assert.equal((await raw.readReply()).error, nbd.NBD_ENOSPC);
    disk.injectFailure({ operation: 'writeZeroes', code: 'VDM_DEVICE_UNSUPPORTED' });
    raw.request(nbd.NBD_CMD_WRITE_ZEROES, { handle: 9n, offset: 0, length: 512, flags: nbd.NBD_CMD_FLAG_FAST_ZERO });
    assert.equal((await raw.readReply()).error, nbd.NBD_ENOTSUP);
  });

  it('answers BLOCK_STATUS with one chunk of descriptors for base:allocation', async () => {
    disk.store.fill(0, 0, 4 * 65536);
    disk.allocated.fill(0);
    disk.allocated[1] = 1;
    const { raw } = await open('disk', { structured: true, allocation: true });
    raw.request(nbd.NBD_CMD_BLOCK_STATUS, { handle: 12n, offset: 0, length: 3 * 65536 });
    const reply = await raw.readReply();
    assert.equal(reply.type, nbd.NBD_REPLY_TYPE_BLOCK_STATUS);
    assert.equal(reply.flags, nbd.NBD_REPLY_FLAG_DONE);
    const descriptors: number[] = [];
    for (let at = 4; at < reply.payload.length; at += 4) descriptors.push(reply.payload.readUInt32BE(at));
    assert.deepEqual(descriptors.slice(0, 4), [65536, 3, 65536, 0]);
    raw.request(nbd.NBD_CMD_BLOCK_STATUS, { handle: 13n, offset: 0, length: 4096, flags: nbd.NBD_CMD_FLAG_REQ_ONE });
    const one = await raw.readReply();
    assert.deepEqual([one.payload.length, one.payload.readUInt32BE(4), one.payload.readUInt32BE(8)], [12, 4096, 3]);
  });

  it('answers EINVAL to BLOCK_STATUS when no metadata context was negotiated', async () => {
    const { raw } = await open('disk', { structured: true });
    raw.request(nbd.NBD_CMD_BLOCK_STATUS, { handle: 14n, offset: 0, length: 4096 });
    assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
  });

  it('passes FUA, NO_HOLE and FAST_ZERO through to the export', async () => {
    const { raw } = await open('disk');
    raw.request(nbd.NBD_CMD_WRITE_ZEROES, { handle: 1n, offset: 0, length: 65536, flags: nbd.NBD_CMD_FLAG_FUA | nbd.NBD_CMD_FLAG_NO_HOLE | nbd.NBD_CMD_FLAG_FAST_ZERO });
    assert.equal((await raw.readReply()).error, 0);
    assert.equal(disk.lastFua, true);
    assert.deepEqual(disk.lastZeroOptions, { noHole: true, fastZero: true });
    assert.equal(disk.isHole(0), false);
  });
});

describe('transmission byte bound', () => {
  it('X2: holds at most about maxInflightBytes of reads on the export', async () => {
    const disk = new MemoryExport({ name: 'disk', size: 8 * MiB });
    const server = await startTestServer([disk], { connection: { maxInflightBytes: MiB } });
    const raw = await RawClient.connect({ path: server.unixPath });
    try {
      await raw.open('disk');
      const release = disk.hold('read');
      for (let i = 0; i < 6; i++) raw.request(nbd.NBD_CMD_READ, { handle: BigInt(i), offset: i * 512 * 1024, length: 512 * 1024 });
      await until(() => disk.calls.read >= 2, 'the first 2 reads to reach the export');
      await sleep(100); // room for a third, if the bound leaked
      assert.equal(disk.calls.read, 2, 'two 512 KiB reads fill the 1 MiB budget');
      release();
      for (let i = 0; i < 6; i++) assert.equal((await raw.readReply(512 * 1024)).error, 0);
      assert.equal(disk.calls.read, 6);
    } finally {
      raw.destroy();
      await server.stop();
    }
    assert.equal(disk.outstandingReadBuffers, 0);
  });
});

describe('transmission meter', () => {
  it('X9: tells the meter of every request the export settled, once, with its bytes and whether it failed', async () => {
    const disk = new MemoryExport({ name: 'disk', size: 1 * MiB });
    const settled: Array<{ command: number; bytes: number; failed: boolean; seconds: number }> = [];
    const server = await startTestServer([disk], {
      connection: { meterFor: () => ({ settled: (command, bytes, seconds, failed) => settled.push({ command, bytes, failed, seconds }) }) },
    });
    const raw = await RawClient.connect({ path: server.unixPath });
    try {
      await raw.open('disk');
      raw.request(nbd.NBD_CMD_WRITE, { handle: 1n, offset: 0, payload: Buffer.alloc(4096, 3) });
      assert.equal((await raw.readReply()).error, 0);
      raw.request(nbd.NBD_CMD_READ, { handle: 2n, offset: 0, length: 4096 });
      assert.equal((await raw.readReply(4096)).error, 0);
      raw.request(nbd.NBD_CMD_FLUSH, { handle: 3n });
      assert.equal((await raw.readReply()).error, 0);
      raw.request(nbd.NBD_CMD_READ, { handle: 4n, offset: 1 * MiB, length: 512 }); // refused before the export: not metered
      assert.equal((await raw.readReply()).error, nbd.NBD_EINVAL);
      disk.injectFailure({ operation: 'read', code: 'VDM_IO_DEVICE', times: 1 });
      raw.request(nbd.NBD_CMD_READ, { handle: 5n, offset: 512, length: 512 });
      assert.equal((await raw.readReply()).error, nbd.NBD_EIO);
      assert.deepEqual(settled.map(({ command, bytes, failed }) => ({ command, bytes, failed })), [
        { command: nbd.NBD_CMD_WRITE, bytes: 4096, failed: false },
        { command: nbd.NBD_CMD_READ, bytes: 4096, failed: false },
        { command: nbd.NBD_CMD_FLUSH, bytes: 0, failed: false },
        { command: nbd.NBD_CMD_READ, bytes: 512, failed: true },
      ]);
      assert.ok(settled.every(({ seconds }) => seconds >= 0 && seconds < 10));
    } finally {
      raw.destroy();
      await server.stop();
    }
  });
});

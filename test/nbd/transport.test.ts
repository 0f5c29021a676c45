/**
 * Proves the protocol code honours the Transport contract (src/nbd/transport.ts) on its hard side: chunks lent for
 * the duration of one data() call (T1) and overwritten right after, as a ring's receive block is. Handshake,
 * pipelined requests and WRITE payloads split anywhere must still be read correctly (X4 of transmission.ts), and
 * an export's WriteBuffer (X6 of export.ts) must receive the payload and be committed exactly once per write, or
 * abandoned when the client vanishes mid-payload.
 * Oracle: a raw client speaking proto.md, the MemoryExport's bytes and call counts, and the WriteBuffers it lent,
 * committed and abandoned (writeBufferLimit, M5 of fixtures/memory-export.ts).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { serveTransport } from '../../src/nbd/connection.js';
import * as nbd from '../../src/nbd/protocol.js';
import { SocketTransport, type Transport, type TransportListener } from '../../src/nbd/transport.js';
import { MemoryExport } from './fixtures/memory-export.js';
import { RawClient, requestBytes } from './fixtures/raw-client.js';
import { ListRegistry } from './fixtures/test-server.js';

const MiB = 1024 * 1024;

/**
 * A Transport that lends every chunk (T1): it copies what the socket brought into one reused buffer, hands out a
 * view of it as borrowed, and scribbles over the buffer as soon as data() returns. Anyone who kept the view reads
 * 0xEE garbage.
 */
class LendingTransport implements Transport {
  private readonly inner: SocketTransport;
  private readonly scratch = Buffer.alloc(64 * 1024);
  private listener: TransportListener | undefined;

  constructor(socket: Socket) {
    this.inner = new SocketTransport(socket);
  }

  listen(listener: TransportListener | undefined): void {
    this.listener = listener;
    this.inner.listen(listener === undefined ? undefined : {
      data: (chunk) => this.lend(chunk),
      end: () => this.listener?.end(),
      close: () => this.listener?.close(),
    });
  }

  /** Splits the chunk into lent pieces of at most 13 bytes past the first, so headers and payloads straddle. */
  private lend(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.listener !== undefined) {
      const length = Math.min(chunk.length - at, at === 0 ? 41 : 13, this.scratch.length);
      chunk.copy(this.scratch, 0, at, at + length);
      at += length;
      this.listener.data(this.scratch.subarray(0, length), true);
      this.scratch.fill(0xee);
    }
  }

  pause(): void { this.inner.pause(); }
  resume(): void { this.inner.resume(); }
  get paused(): boolean { return this.inner.paused; }
  send(pieces: readonly Uint8Array[], sent?: () => void): void { this.inner.send(pieces, sent); }
  get pendingBytes(): number { return this.inner.pendingBytes; }
  onceDrained(drained: () => void): void { this.inner.onceDrained(drained); }
  end(): void { this.inner.end(); }
  destroy(): void { this.inner.destroy(); }
  get destroyed(): boolean { return this.inner.destroyed; }
  get closed(): boolean { return this.inner.closed; }
  get whenClosed(): Promise<void> { return this.inner.whenClosed; }
  afterBatch(callback: () => void): void { this.inner.afterBatch(callback); }
}

function writeRequest(handle: bigint, offset: number, payload: Buffer): Buffer {
  return requestBytes(nbd.NBD_CMD_WRITE, { handle, offset, payload });
}

function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + seed) & 0xff;
  return bytes;
}

describe('protocol over a transport that lends its chunks', () => {
  const plain = new MemoryExport({ name: 'plain', size: 4 * MiB });
  const buffered = new MemoryExport({ name: 'buffered', size: 4 * MiB, writeBufferLimit: 256 * 1024 });
  let server: Server;
  let narrowServer: Server;
  let directory: string;
  let path: string;
  let narrowPath: string;
  const served: Promise<void>[] = [];
  const clients: RawClient[] = [];

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'vdmap-transport-'));
    path = join(directory, 'nbd.sock');
    const registry = new ListRegistry([plain, buffered]);
    server = createServer((socket) => {
      served.push(serveTransport(new LendingTransport(socket), registry, { endTimeoutMs: 1000 }));
    });
    server.listen(path);
    await once(server, 'listening');
    narrowPath = join(directory, 'narrow.sock');
    narrowServer = createServer((socket) => {
      served.push(serveTransport(new LendingTransport(socket), registry, { endTimeoutMs: 1000, maxInflightRequests: 1 }));
    });
    narrowServer.listen(narrowPath);
    await once(narrowServer, 'listening');
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.destroy();
  });
  after(async () => {
    server.close();
    narrowServer.close();
    await Promise.all(served);
    rmSync(directory, { recursive: true, force: true });
  });

  async function open(name: string, where = path): Promise<RawClient> {
    const raw = await RawClient.connect({ path: where });
    clients.push(raw);
    await raw.open(name, { structured: true });
    return raw;
  }

  for (const exportName of ['plain', 'buffered']) {
    it(`writes pipelined payloads split across lent chunks exactly (${exportName} export)`, async () => {
      const raw = await open(exportName);
      const target = exportName === 'plain' ? plain : buffered;
      const payloads = [pattern(5000, 1), pattern(4096, 2), pattern(70 * 1024, 3), pattern(1, 4)];
      const offsets = [0, 8192, 65536, 200 * 1024];
      raw.write(Buffer.concat(payloads.map((payload, i) => writeRequest(BigInt(10 + i), offsets[i], payload))));
      for (let i = 0; i < payloads.length; i++) assert.equal((await raw.readReply()).error, 0);
      payloads.forEach((payload, i) => {
        assert.deepEqual(Buffer.from(target.store.subarray(offsets[i], offsets[i] + payload.length)), payload, `payload ${i}`);
      });
      raw.request(nbd.NBD_CMD_READ, { handle: 20n, offset: 65536, length: 70 * 1024 });
      const reply = await raw.readReply(70 * 1024);
      assert.equal(reply.error, 0);
    });
  }

  it('keeps the unparsed rest of a lent chunk when one request in flight blocks parsing (X2)', async () => {
    const raw = await open('plain', narrowPath);
    const payloads = [pattern(3000, 11), pattern(2000, 12), pattern(1000, 13)];
    raw.write(Buffer.concat(payloads.map((payload, i) => writeRequest(BigInt(50 + i), 300 * 1024 + i * 4096, payload))));
    for (let i = 0; i < payloads.length; i++) assert.equal((await raw.readReply()).error, 0);
    payloads.forEach((payload, i) => {
      const at = 300 * 1024 + i * 4096;
      assert.deepEqual(Buffer.from(plain.store.subarray(at, at + payload.length)), payload, `payload ${i}`);
    });
  });

  it('fills the export WriteBuffer and commits it once per write', async () => {
    const raw = await open('buffered');
    const before = { ...buffered.writeBuffers, writes: buffered.calls.write };
    raw.write(writeRequest(30n, 4096, pattern(8192, 9)));
    assert.equal((await raw.readReply()).error, 0);
    assert.equal(buffered.writeBuffers.lent - before.lent, 1);
    assert.equal(buffered.writeBuffers.committed - before.committed, 1);
    assert.equal(buffered.calls.write - before.writes, 1);
  });

  it('abandons the WriteBuffer of a payload the client never finished', async () => {
    const raw = await open('buffered');
    const abandonedBefore = buffered.writeBuffers.abandoned;
    const request = writeRequest(40n, 0, pattern(64 * 1024, 5));
    raw.write(request.subarray(0, 28 + 1000));
    await sleep(20);
    raw.destroy();
    for (let i = 0; i < 100 && buffered.writeBuffers.abandoned === abandonedBefore; i++) await sleep(10);
    assert.equal(buffered.writeBuffers.abandoned - abandonedBefore, 1);
  });
});

/**
 * Proves the ring serves sockets as it serves devices (RECV, POLL), that submit() can sleep in the kernel for a
 * completion (waitMicroseconds) and that setWake() turns the eventfd off and on (native-bindings/src/ring_submit.c
 * S5, ring_wake.c W5), and that the socket calls of src/native/socket.ts report outcomes as numbers (K1, K2).
 * Oracles: the bytes a real peer socket sent or received (node:net on the other end of a Unix socket), errno values
 * the kernel documents (0 at end of stream, EAGAIN on a full socket, EPIPE or ECONNRESET once the peer is gone), and
 * whether the eventfd callback ran.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { VdmapError } from '../../src/errors/error.js';
import {
  HUGE_PAGE_SIZE, Opcode, PAGE_SIZE, PollEvent, Ring, Shutdown, alignmentOf, allocateAligned, sendVector, setDescriptor,
  setSendBufferSize, shutdownSocket,
} from '../../src/native/index.js';
import { readExactly, type SocketPair, socketPair } from '../support/socket-pair.js';
import { collectCompletions } from './fixtures/system.js';

const { EAGAIN, EPIPE, ECONNRESET } = constants.errno;

describe('Ring socket operations', () => {
  let pair: SocketPair;
  let ring: Ring;
  let buffer: Uint8Array;
  let bufferIndex: number;

  beforeEach(async () => {
    pair = await socketPair();
    ring = new Ring({ entries: 8 });
    buffer = allocateAligned(4 * PAGE_SIZE);
    bufferIndex = ring.registerBuffer(buffer);
  });
  afterEach(() => {
    ring.close();
    pair.release();
  });

  function receive(userData: number, length = buffer.length): void {
    setDescriptor(ring.submissions, 0, Opcode.RECV, pair.fd, bufferIndex, 0, length, 0, userData, 0);
    assert.equal(ring.submit(1), 1);
  }

  it('RECV delivers the bytes the peer sent into the registered buffer', async () => {
    const sent = Buffer.from('the first request of a connection');
    pair.peer.write(sent);
    receive(7);
    const results = await collectCompletions(ring, 1);
    assert.equal(results.get(7), sent.length);
    assert.deepEqual(Buffer.from(buffer.subarray(0, sent.length)), sent);
  });

  it('RECV waits for the peer without blocking the event loop, whose timer sends the bytes', async () => {
    receive(8);
    const timer = setTimeout(() => pair.peer.write('late'), 20);
    const results = await collectCompletions(ring, 1);
    clearTimeout(timer);
    assert.equal(results.get(8), 4);
    assert.equal(Buffer.from(buffer.subarray(0, 4)).toString(), 'late');
  });

  it('RECV completes with 0 when the peer closes its sending side', async () => {
    pair.peer.end();
    receive(9);
    const results = await collectCompletions(ring, 1);
    assert.equal(results.get(9), 0);
  });

  it('a waiting RECV completes with 0 when its socket is shut down for reading', async () => {
    receive(10);
    assert.equal(shutdownSocket(pair.fd, Shutdown.READ), 0);
    const results = await collectCompletions(ring, 1);
    assert.equal(results.get(10), 0);
  });

  it('POLL for OUT completes at once on a socket with room, POLL for IN when the peer sends', async () => {
    setDescriptor(ring.submissions, 0, Opcode.POLL, pair.fd, 0, 0, 0, 0, 11, PollEvent.OUT);
    setDescriptor(ring.submissions, 1, Opcode.POLL, pair.fd, 0, 0, 0, 0, 12, PollEvent.IN);
    assert.equal(ring.submit(2), 2);
    const writable = await collectCompletions(ring, 1);
    assert.ok((writable.get(11)! & PollEvent.OUT) !== 0, `POLL OUT reported ${writable.get(11)}`);
    assert.equal(writable.has(12), false, 'nothing to read yet');
    pair.peer.write('x');
    const readable = await collectCompletions(ring, 1);
    assert.ok((readable.get(12)! & PollEvent.IN) !== 0, `POLL IN reported ${readable.get(12)}`);
  });

  it('submit with waitMicroseconds returns with the completion already reapable', () => {
    pair.peer.write('ready');
    setDescriptor(ring.submissions, 0, Opcode.RECV, pair.fd, bufferIndex, 0, buffer.length, 0, 13, 0);
    assert.equal(ring.submit(1, 0, 100_000), 1);
    assert.equal(ring.reap(), 1, 'the wait ended because the receive completed: no event-loop turn needed');
    assert.deepEqual([ring.completions[0], ring.completions[1]], [13, 5]);
  });

  it('submit(0, 0, us) only waits, and returns empty-handed when nothing completes in time', () => {
    receive(14);
    assert.equal(ring.submit(0, 0, 2000), 0);
    assert.equal(ring.reap(), 0);
    assert.equal(ring.inFlight, 1, 'the receive still waits');
  });

  it('setWake(false) keeps the eventfd quiet, setWake(true) brings it back', async () => {
    let wakes = 0;
    ring.onCompletion(() => {
      wakes++;
    });
    ring.setWake(false);
    setDescriptor(ring.submissions, 0, Opcode.NOP, 0, 0, 0, 0, 0, 15, 0);
    ring.submit(1, 0, 100_000);
    assert.equal(ring.reap(), 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(wakes, 0, 'no wake-up while off');
    ring.setWake(true);
    setDescriptor(ring.submissions, 0, Opcode.NOP, 0, 0, 0, 0, 0, 16, 0);
    ring.submit(1);
    const results = await collectCompletions(ring, 1);
    assert.ok(results.has(16));
  });

  it('sendVector sends every view in order in one call', async () => {
    const views = [Buffer.from('header:'), new Uint8Array(0), Buffer.from('payload'), Buffer.from('!')];
    const arrived = readExactly(pair.peer, 15);
    assert.equal(sendVector(pair.fd, views), 15);
    assert.equal((await arrived).toString(), 'header:payload!');
  });

  it('sendVector returns -EAGAIN instead of blocking once the socket is full', () => {
    setSendBufferSize(pair.fd, 16 * 1024);
    const chunk = new Uint8Array(256 * 1024);
    let result = 0;
    for (let attempt = 0; attempt < 1000 && result !== -EAGAIN; attempt++) result = sendVector(pair.fd, [chunk]);
    assert.equal(result, -EAGAIN);
  });

  it('sendVector returns -EPIPE (or -ECONNRESET) once the peer is gone, and raises no SIGPIPE', async () => {
    pair.peer.destroy();
    await once(pair.peer, 'close');
    const result = sendVector(pair.fd, [Buffer.from('anyone?')]);
    assert.ok(result === -EPIPE || result === -ECONNRESET, `got ${result}`);
  });

  it('setSendBufferSize reports what the kernel took: the request, capped at net.core.wmem_max', () => {
    const cap = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
    const effective = setSendBufferSize(pair.fd, 1024 * 1024);
    assert.ok(effective >= Math.min(1024 * 1024, cap), `got ${effective} with wmem_max ${cap}`);
    assert.throws(() => setSendBufferSize(pair.fd, 0), (error: unknown) => error instanceof VdmapError && error.code === 'VDM_RING_ARGUMENT');
    assert.throws(() => sendVector(-1, []), (error: unknown) => error instanceof VdmapError && error.code === 'VDM_RING_ARGUMENT');
  });
});

describe('allocateAligned with huge pages', () => {
  it('starts the view on a 2 MiB boundary and keeps its exact length when hugePages is asked', () => {
    const view = allocateAligned(4 * HUGE_PAGE_SIZE, { hugePages: true });
    assert.equal(view.length, 4 * HUGE_PAGE_SIZE);
    assert.equal(alignmentOf(view, HUGE_PAGE_SIZE), 0);
    view.fill(0xa5);
    assert.equal(view[view.length - 1], 0xa5);
  });

  it('reports alignment modulo any power of two, and refuses other moduli', () => {
    const view = allocateAligned(2 * PAGE_SIZE);
    assert.equal(alignmentOf(view.subarray(3), 8), 3);
    assert.throws(() => alignmentOf(view, 3));
  });
});

/**
 * Proves RingTransport (src/agent/workers/ring-transport.ts) keeps the Transport contract of src/nbd/transport.ts
 * while a real peer socket talks to it through this thread's ring: bytes arrive in order and are lent (T1, G1),
 * pause holds them back, sends keep their order through a full socket and each `sent` runs once (G2, G3), end and
 * destroy close the descriptor exactly once after the ring is done with it (G4), the peer's end leaves it open for
 * sending until this side ends too (G5), and the receive block starts small and grows only while receives fill it
 * (G1).
 * Oracles: the bytes the peer (a node:net socket) sent and received, its 'end' event, the listener's calls, and the
 * engine pool's bytes in use (the receive block comes back).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { IoEngine } from '../../src/agent/io-engine.js';
import { RingTransport } from '../../src/agent/workers/ring-transport.js';
import type { TransportListener } from '../../src/nbd/transport.js';
import { readExactly, type SocketPair, socketPair } from '../support/socket-pair.js';

/** A listener that copies every chunk (borrowed ones would be overwritten by the next receive). */
class Recorder implements TransportListener {
  readonly chunks: Buffer[] = [];
  borrowed = 0;
  ends = 0;
  closes = 0;
  private waiters: Array<() => void> = [];

  data(chunk: Buffer, borrowed: boolean): void {
    this.chunks.push(Buffer.from(chunk));
    if (borrowed) this.borrowed++;
    this.notify();
  }

  end(): void {
    this.ends++;
    this.notify();
  }

  close(): void {
    this.closes++;
    this.notify();
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }

  /** Resolves once `condition` holds (checked after every event). */
  until(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (condition()) resolve();
        else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

describe('RingTransport', () => {
  let engine: IoEngine;
  let pair: SocketPair;
  let transport: RingTransport;
  let recorder: Recorder;
  let baseline: number;

  beforeEach(async () => {
    engine = new IoEngine({ ringEntries: 16, poolBytes: 4 * 1024 * 1024 });
    baseline = engine.pool.inUse;
    pair = await socketPair();
    transport = await RingTransport.open(pair.fd, engine, { receiveBytes: 64 * 1024, sendBufferBytes: 16 * 1024 });
    recorder = new Recorder();
  });
  afterEach(async () => {
    if (!transport.closed) {
      transport.destroy();
      await transport.whenClosed;
    }
    pair.release({ fdOwnedElsewhere: true });
    engine.close();
  });

  it('delivers the peer bytes in order, lent for the duration of the call', async () => {
    transport.listen(recorder);
    pair.peer.write('first,');
    pair.peer.write('second,');
    pair.peer.write('third');
    await recorder.until(() => recorder.text.length === 18);
    assert.equal(recorder.text, 'first,second,third');
    assert.equal(recorder.borrowed, recorder.chunks.length, 'every chunk came straight from the receive block');
  });

  it('starts with a small receive block, grows it while receives fill it, and gives it back at close', async () => {
    transport.listen(recorder);
    assert.equal(engine.pool.inUse - baseline, 16 * 1024, 'an idle connection holds 16 KiB');
    const sent = pattern(1024 * 1024, 9);
    pair.peer.write(sent);
    await recorder.until(() => recorder.chunks.reduce((sum, chunk) => sum + chunk.length, 0) === sent.length);
    assert.deepEqual(new Uint8Array(Buffer.concat(recorder.chunks)), sent);
    assert.equal(engine.pool.inUse - baseline, 64 * 1024, 'grew to receiveBytes (64 KiB here)');
    transport.destroy();
    await transport.whenClosed;
    assert.equal(engine.pool.inUse, baseline);
  });

  it('holds bytes back while paused and delivers them, in order, on resume', async () => {
    transport.listen(recorder);
    pair.peer.write('before ');
    await recorder.until(() => recorder.text === 'before ');
    transport.pause();
    pair.peer.write('during');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(recorder.text, 'before ', 'nothing delivered while paused');
    transport.resume();
    await recorder.until(() => recorder.text === 'before during');
  });

  it('keeps the order of large sends through a full socket, counts them pending, and calls each sent once', async () => {
    transport.listen(recorder);
    const pieces = [pattern(1024 * 1024, 1), pattern(700 * 1024, 2), pattern(300 * 1024, 3)];
    const sent = [0, 0, 0];
    transport.send([pieces[0], pieces[1]], () => sent[0]++);
    transport.send([pieces[2]], () => sent[1]++);
    transport.send([pattern(10, 4)], () => sent[2]++);
    assert.ok(transport.pendingBytes > 0, 'the peer reads nothing yet, so most bytes must wait');
    const drained = new Promise<void>((resolve) => transport.onceDrained(resolve));
    const received = await readExactly(pair.peer, 2024 * 1024 + 10);
    await drained;
    assert.equal(transport.pendingBytes, 0);
    assert.deepEqual(sent, [1, 1, 1]);
    assert.deepEqual(new Uint8Array(received), new Uint8Array(Buffer.concat([...pieces, pattern(10, 4)])));
  });

  it('end() sends what is pending, shuts the sending side, and closes once the peer closes', async () => {
    transport.listen(recorder);
    transport.send([pattern(256 * 1024, 5)]);
    transport.end();
    const peerEnded = once(pair.peer, 'end');
    const received = await readExactly(pair.peer, 256 * 1024);
    pair.peer.resume();
    await peerEnded;
    assert.deepEqual(new Uint8Array(received), pattern(256 * 1024, 5));
    assert.equal(recorder.closes, 0, 'still open: the peer has not closed');
    pair.peer.end();
    await transport.whenClosed;
    assert.deepEqual([recorder.ends, recorder.closes], [1, 1]);
    assert.equal(engine.pool.inUse, baseline, 'the receive block went back to the pool');
  });

  it('destroy() ends the waiting receive, runs the sent callbacks of dropped bytes, and closes', async () => {
    transport.listen(recorder);
    let sent = 0;
    transport.send([pattern(2 * 1024 * 1024, 6)], () => sent++);
    assert.ok(transport.pendingBytes > 0);
    transport.destroy();
    await transport.whenClosed;
    assert.equal(sent, 1);
    assert.equal(recorder.closes, 1);
    assert.equal(transport.pendingBytes, 0);
    assert.equal(engine.pool.inUse, baseline);
  });

  it('G5: hears the peer end, still sends to it, and closes once this side ends too', async () => {
    transport.listen(recorder);
    pair.peer.end('last words');
    await recorder.until(() => recorder.ends === 1);
    assert.equal(recorder.text, 'last words');
    assert.equal(recorder.closes, 0, 'half-open: replies may still go');
    transport.send([pattern(64 * 1024, 7)]);
    transport.end();
    const received = await readExactly(pair.peer, 64 * 1024);
    await transport.whenClosed;
    assert.deepEqual(new Uint8Array(received), pattern(64 * 1024, 7));
    assert.deepEqual([recorder.ends, recorder.closes], [1, 1]);
  });

  it('keeps bytes for the next listener when nobody listens', async () => {
    transport.listen(recorder);
    pair.peer.write('handshake');
    await recorder.until(() => recorder.text === 'handshake');
    transport.listen(undefined);
    pair.peer.write('pipelined request');
    await new Promise((resolve) => setTimeout(resolve, 30));
    const next = new Recorder();
    transport.listen(next);
    await next.until(() => next.text === 'pipelined request');
    assert.equal(recorder.text, 'handshake');
  });
});

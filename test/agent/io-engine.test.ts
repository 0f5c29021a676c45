/**
 * IoEngine (src/agent/io-engine.ts) in its three ways of waiting: the eventfd alone (waitMicroseconds 0), busy
 * turns that sleep inside io_uring_enter (the default), and busy turns that spin first (pollMicroseconds). Proves
 * every operation completes exactly once with the kernel's result in each (E4), that the event loop keeps running
 * while operations flow in busy mode (E5), that a thread gone idle still hears later completions through the
 * eventfd (E6).
 * Oracles: the file's bytes read back with node:fs, the results the kernel returns, a timer's callback, and the
 * ring's own count of what is in flight.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { IoEngine, type IoEngineOptions } from '../../src/agent/io-engine.js';
import { closeDevice, openDevice } from '../../src/native/index.js';
import { cleanupDevices, deviceBytes, sparseFile } from '../support/devices.js';

const BLOCK = 4096;
const BLOCKS = 256;

after(cleanupDevices);

const modes: Array<[string, IoEngineOptions]> = [
  ['the eventfd alone', { waitMicroseconds: 0 }],
  ['busy turns', {}],
  ['busy turns that spin first', { pollMicroseconds: 50 }],
];

function engineWith(options: IoEngineOptions): IoEngine {
  return new IoEngine({ ringEntries: 32, poolBytes: 2 * 1024 * 1024, ...options });
}

function io(run: (done: (result: number) => void) => void): Promise<number> {
  return new Promise((resolve) => run(resolve));
}

describe('IoEngine', () => {
  for (const [mode, options] of modes) {
    it(`completes every write and read once, with the kernel's result, with ${mode}`, async () => {
      const path = sparseFile(BLOCKS * BLOCK);
      const device = openDevice(path, { readOnly: false });
      const engine = engineWith(options);
      try {
        const block = await engine.pool.allocate(BLOCK);
        for (let i = 0; i < BLOCKS; i += 16) {
          block.bytes.fill(i & 0xff);
          assert.equal(await io((done) => engine.write(device.fd, block, 0, BLOCK, i * BLOCK, 0, done)), BLOCK);
        }
        const results = await Promise.all(Array.from({ length: BLOCKS / 16 }, async (_, n) => {
          const target = await engine.pool.allocate(BLOCK);
          const result = await io((done) => engine.read(device.fd, target, 0, BLOCK, n * 16 * BLOCK, done));
          const ok = target.bytes.every((byte) => byte === ((n * 16) & 0xff));
          engine.pool.release(target);
          return { result, ok };
        }));
        assert.ok(results.every(({ result, ok }) => result === BLOCK && ok));
        assert.deepEqual(deviceBytes(path, 32 * BLOCK, 4), new Uint8Array(4).fill(32));
        assert.ok(await io((done) => engine.read(device.fd, block, 0, BLOCK, BLOCKS * BLOCK, done)) === 0, 'end of file reads 0');
        engine.pool.release(block);
        assert.equal(engine.operationsInFlight, 0);
      } finally {
        engine.close();
        closeDevice(device.fd);
      }
    });
  }

  it('E5: lets a timer run while a stream of operations keeps it busy', async () => {
    const path = sparseFile(BLOCKS * BLOCK);
    const device = openDevice(path, { readOnly: false });
    const engine = engineWith({ pollMicroseconds: 50 });
    try {
      const block = await engine.pool.allocate(BLOCK);
      let completed = 0;
      let completedWhenTimerRan = -1;
      const timer = setTimeout(() => {
        completedWhenTimerRan = completed;
      }, 1);
      for (let i = 0; i < 4000 && completedWhenTimerRan < 0; i++) {
        await io((done) => engine.read(device.fd, block, 0, BLOCK, (i % BLOCKS) * BLOCK, done));
        completed++;
      }
      clearTimeout(timer);
      assert.ok(completedWhenTimerRan >= 0, 'the timer ran while reads were still being issued');
      engine.pool.release(block);
    } finally {
      engine.close();
      closeDevice(device.fd);
    }
  });

  it('E6: hears a completion through the eventfd after it went idle', async () => {
    const path = sparseFile(BLOCKS * BLOCK);
    const device = openDevice(path, { readOnly: false });
    const engine = engineWith({ waitMicroseconds: 100 });
    try {
      const block = await engine.pool.allocate(BLOCK);
      assert.equal(await io((done) => engine.read(device.fd, block, 0, BLOCK, 0, done)), BLOCK);
      await sleep(20); // far longer than a busy turn waits: the engine is idle again
      assert.equal(await io((done) => engine.read(device.fd, block, 0, BLOCK, BLOCK, done)), BLOCK);
      engine.pool.release(block);
    } finally {
      engine.close();
      closeDevice(device.fd);
    }
  });
});

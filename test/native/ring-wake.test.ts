/**
 * Proves a thread sleeps until its I/O completes and is woken through the ring's eventfd on its own event loop
 * (native-bindings/src/ring_wake.c W1..W4), including with DEFER_TASKRUN, where completions are task work that only
 * the eventfd announces; that the loop stays responsive meanwhile; and that ref()/unref() decide whether an idle
 * process can exit.
 * Oracles: a FIFO read completes only when a timer on the same loop writes to the FIFO (so the timer must have run
 * while the read was pending); process.cpuUsage over the wait (a spinning waiter would burn about the whole wait);
 * child processes that exit, or not, on their own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Opcode, Ring, allocateAligned, setDescriptor } from '../../src/native/index.js';
import { BLOCK } from './fixtures/patterns.js';
import { type Scratch, collectCompletions, ext4Directory, makeFifo } from './fixtures/system.js';

const nativeIndexUrl = pathToFileURL(new URL('../../src/native/index.js', import.meta.url).pathname).href;

/** Runs an ES module snippet in a child node; resolves its exit code, or 'alive' if it is still running after `waitMilliseconds`. */
function runChild(source: string, waitMilliseconds: number): Promise<{ outcome: number | 'alive'; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ outcome: 'alive', stderr });
    }, waitMilliseconds);
    child.on('close', (code) => { /* 'close', not 'exit': stderr is complete only then */
      clearTimeout(timer);
      resolve({ outcome: code ?? -1, stderr });
    });
  });
}

describe('Ring completion wake-up', () => {
  let scratch: Scratch;
  let fifo: number;
  let ring: Ring;
  let bufferIndex: number;
  let buffer: Uint8Array;

  before(() => {
    scratch = ext4Directory('ring-wake');
    fifo = openSync(makeFifo(scratch.directory), 'r+');
    ring = new Ring({ entries: 8 });
    buffer = allocateAligned(BLOCK);
    bufferIndex = ring.registerBuffer(buffer);
  });
  after(() => {
    ring.close();
    closeSync(fifo);
    scratch.release();
  });

  it('wakes the callback through the eventfd when a pending read completes, with the loop responsive meanwhile', async () => {
    assert.equal(ring.features.deferTaskrun, true, 'the deferred task-run path is the one under test');
    const events: string[] = [];
    setDescriptor(ring.submissions, 0, Opcode.READ, fifo, bufferIndex, 0, BLOCK, 0, 7, 0);
    assert.equal(ring.submit(1), 1);
    const waited = collectCompletions(ring, 1).then((results) => {
      events.push('completion');
      return results;
    });
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    setTimeout(() => {
      events.push('timer');
      writeSync(fifo, Buffer.from('hello'));
    }, 200);
    const results = await waited;
    const elapsed = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuMilliseconds = (cpu.user + cpu.system) / 1000;
    assert.deepEqual(events, ['timer', 'completion']);
    assert.equal(results.get(7), 5);
    assert.equal(Buffer.from(buffer.subarray(0, 5)).toString(), 'hello');
    assert.ok(elapsed >= 190, `waited ${elapsed} ms`);
    assert.ok(cpuMilliseconds < elapsed / 2, `spent ${cpuMilliseconds} ms of CPU in ${elapsed} ms: the waiter spins`);
  });

  it('delivers completions already posted before the callback was installed when the callback reaps', async () => {
    setDescriptor(ring.submissions, 0, Opcode.NOP, 0, 0, 0, 0, 0, 11, 0);
    assert.equal(ring.submit(1), 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const results = await collectCompletions(ring, 1);
    assert.equal(results.get(11), 0);
  });
});

describe('Ring ref and unref', () => {
  const program = (referenced: boolean): string => `
    import { Ring } from ${JSON.stringify(nativeIndexUrl)};
    const ring = new Ring({ entries: 4 });
    ring.onCompletion(() => {});
    ${referenced ? 'ring.unref(); ring.ref();' : 'ring.unref();'}
  `;

  it('keeps an otherwise idle process alive when the completion watch is referenced', async () => {
    const { outcome, stderr } = await runChild(program(true), 1500);
    assert.equal(outcome, 'alive', stderr);
  });

  it('lets an idle process exit when the completion watch is unreferenced', async () => {
    const { outcome, stderr } = await runChild(program(false), 10000);
    assert.equal(outcome, 0, stderr);
  });

  it('raises an exception thrown by the callback as an uncaught exception of its thread', async () => {
    const source = `
      import { Ring, Opcode, setDescriptor } from ${JSON.stringify(nativeIndexUrl)};
      const ring = new Ring({ entries: 4 });
      ring.onCompletion(() => { ring.reap(); throw new Error('callback-failure-marker'); });
      setDescriptor(ring.submissions, 0, Opcode.NOP, 0, 0, 0, 0, 0, 1, 0);
      ring.submit(1);
    `;
    const { outcome, stderr } = await runChild(source, 10000);
    assert.notEqual(outcome, 0);
    assert.notEqual(outcome, 'alive');
    assert.match(stderr, /callback-failure-marker/);
  });
});

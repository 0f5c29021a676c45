/**
 * Proves closing is safe whatever is in flight (R2, R3, R5, R7 of native-bindings/src/ring.h): close() returns only
 * when the kernel is done with every buffer, cancels what would never finish, releases the ring fd and eventfd,
 * and a ring nobody holds is closed by its finalizer.
 * Oracles: the count of entries in /proc/self/fd; a buffer that in-flight reads targeted stays as we set it after
 * close (a late kernel write would change it); a FIFO read that can only end by cancellation; WeakRef + forced GC.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { VdmapError } from '../../src/errors/error.js';
import { loadAddon } from '../../src/native/addon.js';
import { type DeviceInfo, Opcode, Ring, allocateAligned, closeDevice, openDevice, setDescriptor } from '../../src/native/index.js';
import { BLOCK } from './fixtures/patterns.js';
import { type Scratch, ext4Directory, makeFifo, openFileDescriptorCount } from './fixtures/system.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Collects garbage until `condition` holds (or gives up). The turn between evaluating the condition and the next
 * collection matters: a WeakRef.deref() keeps its target alive until the end of the current job.
 */
async function collectUntil(condition: () => boolean): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    await nextTurn();
    collectGarbage();
    await nextTurn(); /* finalizers run from the loop */
    if (condition()) return true;
  }
  return false;
}

/** Creates a native ring that watches for completions and returns only a WeakRef to it (a separate function, so no
 * stack slot of the test keeps it alive). */
function watchingRingNobodyHolds(): WeakRef<{ unref(): void }> {
  const native = new (loadAddon().Ring)({ entries: 4 });
  native.onCompletion(() => {});
  native.registerBuffer(allocateAligned(BLOCK));
  return new WeakRef(native);
}

describe('Ring close', () => {
  const IO_SIZE = 64 * 1024;
  const IO_COUNT = 64;
  let scratch: Scratch;
  let device: DeviceInfo;

  before(() => {
    scratch = ext4Directory('ring-close');
    const path = join(scratch.directory, 'disk.img');
    writeFileSync(path, Buffer.alloc(IO_SIZE * IO_COUNT, 0xab));
    device = openDevice(path, { readOnly: false });
  });
  after(() => {
    closeDevice(device.fd);
    scratch.release();
  });

  it('returns after every in-flight read is done and releases its fds when closed right after a large batch', async () => {
    const baseline = openFileDescriptorCount();
    const ring = new Ring({ entries: 64 });
    ring.onCompletion(() => {});
    const buffer = allocateAligned(IO_SIZE * IO_COUNT);
    const index = ring.registerBuffer(buffer);
    assert.ok(openFileDescriptorCount() > baseline, 'the ring and its eventfd hold fds');
    for (let slot = 0; slot < IO_COUNT; slot++) {
      setDescriptor(ring.submissions, slot, Opcode.READ, device.fd, index, slot * IO_SIZE, IO_SIZE, slot * IO_SIZE, slot, 0);
    }
    assert.equal(ring.submit(IO_COUNT), IO_COUNT);
    ring.close();
    assert.equal(ring.closed, true);
    assert.equal(ring.inFlight, 0);
    buffer.fill(0x11);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(buffer.every((byte) => byte === 0x11), 'no read landed after close returned');
    assert.equal(openFileDescriptorCount(), baseline, 'ring fd and eventfd closed');
  });

  it('cancels a read that could never complete when closed with it pending', () => {
    const fifo = openSync(makeFifo(scratch.directory, 'close-fifo'), 'r+');
    const ring = new Ring({ entries: 4 });
    try {
      const index = ring.registerBuffer(allocateAligned(BLOCK));
      setDescriptor(ring.submissions, 0, Opcode.READ, fifo, index, 0, BLOCK, 0, 1, 0);
      assert.equal(ring.submit(1), 1);
      assert.equal(ring.inFlight, 1);
      const started = performance.now();
      ring.close();
      assert.equal(ring.inFlight, 0);
      assert.ok(performance.now() - started < 2000, 'close did not wait for the FIFO');
    } finally {
      ring.close();
      closeSync(fifo);
    }
  });

  it('throws VDM_RING_CLOSED from every method after close, and close again does nothing', () => {
    const ring = new Ring({ entries: 4 });
    ring.close();
    ring.close();
    const closedError = (error: unknown): boolean => error instanceof VdmapError && error.code === 'VDM_RING_CLOSED';
    assert.throws(() => ring.submit(0), closedError);
    assert.throws(() => ring.reap(), closedError);
    assert.throws(() => ring.registerBuffer(allocateAligned(BLOCK)), closedError);
    assert.throws(() => ring.onCompletion(() => {}), closedError);
    assert.throws(() => ring.ref(), closedError);
    assert.throws(() => ring.unref(), closedError);
  });

  it('R7: keeps a referenced watching ring alive and closes it by finalizer once unreferenced and unreachable', async () => {
    const baseline = openFileDescriptorCount();
    const weak = watchingRingNobodyHolds();
    assert.equal(await collectUntil(() => weak.deref() === undefined), false, 'a referenced watch holds its ring');
    weak.deref()?.unref();
    assert.equal(await collectUntil(() => weak.deref() === undefined), true, 'unreferenced, the ring is collected');
    assert.equal(await collectUntil(() => openFileDescriptorCount() === baseline), true, 'the finalizer closed its fds');
  });
});

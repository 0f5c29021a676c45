/**
 * Proves the ring moves real bytes to and from real files and block devices, and that every I/O outcome,
 * including failures, arrives as a completion result rather than a throw (invariant G2 of src/native/ring.ts).
 * Oracles: the file's bytes read back with node:fs (an independent path), the patterns written, and the errno
 * values the kernel is documented to return (EINVAL for misaligned O_DIRECT, ENOSPC on a full filesystem, 0 at
 * end of file).
 */
import assert from 'node:assert/strict';
import { closeSync, fstatSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { constants, release } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type DeviceInfo,
  FallocateMode,
  FsyncFlag,
  Opcode,
  Ring,
  WriteFlag,
  allocateAligned,
  closeDevice,
  completionUserData,
  openDevice,
  setDescriptor,
} from '../../src/native/index.js';
import { BLOCK, fillPattern, matchesPattern } from './fixtures/patterns.js';
import { type LoopDevice, type Mount, type RingOnFile, type Scratch, attachLoopDevice, collectCompletions, ext4Directory, mountFilesystem, ringOnExt4File } from './fixtures/system.js';

const { EINVAL, ENOSPC } = constants.errno;

function kernelAtLeast(major: number, minor: number): boolean {
  const [kernelMajor, kernelMinor] = release().split('.').map((part) => Number.parseInt(part, 10));
  return kernelMajor > major || (kernelMajor === major && kernelMinor >= minor);
}

/** Writes `count` pattern blocks (seeds firstSeed..) at file offset `fileOffset`, all in one batch, and checks results. */
async function writeBlocks(ring: Ring, fd: number, bufferIndex: number, buffer: Uint8Array, fileOffset: number, count: number, firstSeed: number): Promise<void> {
  for (let block = 0; block < count; block++) {
    fillPattern(buffer.subarray(block * BLOCK, (block + 1) * BLOCK), firstSeed + block);
    setDescriptor(ring.submissions, block, Opcode.WRITE, fd, bufferIndex, block * BLOCK, BLOCK, fileOffset + block * BLOCK, block, 0);
  }
  assert.equal(ring.submit(count), count);
  const results = await collectCompletions(ring, count);
  for (let block = 0; block < count; block++) assert.equal(results.get(block), BLOCK, `write ${block}`);
}

/** Reads `count` blocks at `fileOffset` into the buffer (after zeroing it) in one batch; returns the results by block. */
async function readBlocks(ring: Ring, fd: number, bufferIndex: number, buffer: Uint8Array, fileOffset: number, count: number): Promise<Map<number, number>> {
  buffer.fill(0, 0, count * BLOCK);
  for (let block = 0; block < count; block++) {
    setDescriptor(ring.submissions, block, Opcode.READ, fd, bufferIndex, block * BLOCK, BLOCK, fileOffset + block * BLOCK, block, 0);
  }
  assert.equal(ring.submit(count), count);
  return collectCompletions(ring, count);
}

describe('Ring on an ext4 file', () => {
  const FILE_SIZE = 1 << 20;
  let file: RingOnFile;
  let path: string;
  let device: DeviceInfo;
  let ring: Ring;
  let buffer: Uint8Array;
  let bufferIndex: number;

  before(() => {
    file = ringOnExt4File('ring-data', { fileBytes: FILE_SIZE, entries: 256, bufferBytes: 256 * BLOCK });
    ({ path, device, ring, buffer, bufferIndex } = file);
  });
  after(() => file.release());

  it('uses single issuer, deferred task run and fixed buffers when the kernel is 6.1 or later', () => {
    assert.equal(kernelAtLeast(6, 1), true, 'this suite expects a 6.1+ kernel');
    assert.equal(ring.features.singleIssuer, true);
    assert.equal(ring.features.deferTaskrun, true);
    assert.equal(ring.features.submitAll, true);
    assert.equal(ring.features.fixedBuffers, true);
    assert.equal(ring.features.sqpoll, false);
    assert.equal(ring.submissions.length, 256 * 8);
    assert.equal(ring.completions.length, 2 * 256 * 2);
  });

  it('round-trips 128 distinct blocks when each direction is one batch', async () => {
    await writeBlocks(ring, device.fd, bufferIndex, buffer, 0, 128, 1000);
    const onDisk = readFileSync(path);
    for (let block = 0; block < 128; block++) {
      assert.ok(matchesPattern(onDisk.subarray(block * BLOCK, (block + 1) * BLOCK), 1000 + block), `file block ${block}`);
    }
    const results = await readBlocks(ring, device.fd, bufferIndex, buffer, 0, 128);
    for (let block = 0; block < 128; block++) {
      assert.equal(results.get(block), BLOCK);
      assert.ok(matchesPattern(buffer.subarray(block * BLOCK, (block + 1) * BLOCK), 1000 + block), `read block ${block}`);
    }
  });

  it('returns 0 at end of file and a short count for a read that crosses it', async () => {
    setDescriptor(ring.submissions, 0, Opcode.READ, device.fd, bufferIndex, 0, BLOCK, FILE_SIZE, 1, 0);
    setDescriptor(ring.submissions, 1, Opcode.READ, device.fd, bufferIndex, 2 * BLOCK, 2 * BLOCK, FILE_SIZE - BLOCK, 2, 0);
    assert.equal(ring.submit(2), 2);
    const results = await collectCompletions(ring, 2);
    assert.equal(results.get(1), 0);
    assert.equal(results.get(2), BLOCK);
  });

  it('reports -EINVAL in the completion, without throwing, when O_DIRECT offset, address or length is misaligned', async () => {
    setDescriptor(ring.submissions, 0, Opcode.READ, device.fd, bufferIndex, 0, BLOCK, 100, 1, 0);
    setDescriptor(ring.submissions, 1, Opcode.READ, device.fd, bufferIndex, 1, BLOCK, 0, 2, 0);
    setDescriptor(ring.submissions, 2, Opcode.WRITE, device.fd, bufferIndex, 0, 100, 0, 3, 0);
    assert.equal(ring.submit(3), 3);
    const results = await collectCompletions(ring, 3);
    assert.deepEqual([...results.entries()].sort(([a], [b]) => a - b), [[1, -EINVAL], [2, -EINVAL], [3, -EINVAL]]);
  });

  it('completes fsync, fdatasync and a data-sync write with their success results', async () => {
    fillPattern(buffer.subarray(0, BLOCK), 77);
    setDescriptor(ring.submissions, 0, Opcode.WRITE, device.fd, bufferIndex, 0, BLOCK, 0, 1, WriteFlag.DATASYNC);
    setDescriptor(ring.submissions, 1, Opcode.FSYNC, device.fd, 0, 0, 0, 0, 2, 0);
    setDescriptor(ring.submissions, 2, Opcode.FSYNC, device.fd, 0, 0, 0, 0, 3, FsyncFlag.DATASYNC);
    assert.equal(ring.submit(3), 3);
    const results = await collectCompletions(ring, 3);
    assert.deepEqual([results.get(1), results.get(2), results.get(3)], [BLOCK, 0, 0]);
  });

  it('zeroes the range and keeps the size when fallocate punches a hole', async () => {
    const start = 512 * 1024;
    await writeBlocks(ring, device.fd, bufferIndex, buffer, start, 4, 500);
    setDescriptor(ring.submissions, 0, Opcode.FALLOCATE, device.fd, 0, 0, BLOCK, start + BLOCK, 9, FallocateMode.PUNCH_HOLE | FallocateMode.KEEP_SIZE);
    assert.equal(ring.submit(1), 1);
    assert.equal((await collectCompletions(ring, 1)).get(9), 0);
    const onDisk = readFileSync(path);
    assert.equal(onDisk.length, FILE_SIZE, 'size kept');
    assert.ok(matchesPattern(onDisk.subarray(start, start + BLOCK), 500));
    assert.ok(onDisk.subarray(start + BLOCK, start + 2 * BLOCK).every((byte) => byte === 0), 'hole reads as zeroes');
    assert.ok(matchesPattern(onDisk.subarray(start + 2 * BLOCK, start + 3 * BLOCK), 502));
  });

  it('takes descriptors from `first` when submit is given a start index', async () => {
    for (let slot = 10; slot < 14; slot++) setDescriptor(ring.submissions, slot, Opcode.NOP, 0, 0, 0, 0, 0, 0xfffffff0 + slot, 0);
    setDescriptor(ring.submissions, 0, Opcode.NOP, 0, 0, 0, 0, 0, 1, 0);
    assert.equal(ring.submit(4, 10), 4);
    const results = await collectCompletions(ring, 4);
    assert.deepEqual([...results.keys()].sort(), [0xfffffffa, 0xfffffffb, 0xfffffffc, 0xfffffffd]);
  });
});

describe('Ring reaping', () => {
  it('reaps at most the completion capacity per call and loses nothing when more completions are pending', () => {
    const ring = new Ring({ entries: 8 });
    try {
      for (let batch = 0; batch < 3; batch++) {
        for (let slot = 0; slot < 8; slot++) setDescriptor(ring.submissions, slot, Opcode.NOP, 0, 0, 0, 0, 0, batch * 8 + slot, 0);
        assert.equal(ring.submit(8), 8);
      }
      assert.equal(ring.inFlight, 24);
      const seen: number[] = [];
      const counts: number[] = [];
      for (let count = ring.reap(); count > 0; count = ring.reap()) {
        counts.push(count);
        for (let index = 0; index < count; index++) seen.push(completionUserData(ring.completions, index));
      }
      assert.deepEqual(counts, [16, 8]);
      assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 24 }, (_, index) => index));
      assert.equal(ring.inFlight, 0);
    } finally {
      ring.close();
    }
  });
});

describe('Ring setup variants', () => {
  let scratch: Scratch;
  before(() => {
    scratch = ext4Directory('ring-plain');
  });
  after(() => scratch.release());

  it('round-trips through plain READ/WRITE when fixed buffers are turned off', async () => {
    const path = join(scratch.directory, 'plain.img');
    writeFileSync(path, Buffer.alloc(64 * BLOCK));
    const device = openDevice(path, { readOnly: false });
    const ring = new Ring({ entries: 64, fixedBuffers: false });
    try {
      assert.equal(ring.features.fixedBuffers, false);
      const buffer = allocateAligned(64 * BLOCK);
      const index = ring.registerBuffer(buffer);
      await writeBlocks(ring, device.fd, index, buffer, 0, 64, 3000);
      const results = await readBlocks(ring, device.fd, index, buffer, 0, 64);
      for (let block = 0; block < 64; block++) {
        assert.equal(results.get(block), BLOCK);
        assert.ok(matchesPattern(buffer.subarray(block * BLOCK, (block + 1) * BLOCK), 3000 + block));
      }
    } finally {
      ring.close();
      closeDevice(device.fd);
    }
  });

  it('round-trips with a kernel submission-polling thread when sqpoll is asked for', async () => {
    const path = join(scratch.directory, 'sqpoll.img');
    writeFileSync(path, Buffer.alloc(16 * BLOCK));
    const device = openDevice(path, { readOnly: false });
    const ring = new Ring({ entries: 16, sqpoll: { idleMilliseconds: 50 } });
    try {
      assert.equal(ring.features.sqpoll, true);
      const buffer = allocateAligned(16 * BLOCK);
      const index = ring.registerBuffer(buffer);
      await writeBlocks(ring, device.fd, index, buffer, 0, 16, 4000);
      const results = await readBlocks(ring, device.fd, index, buffer, 0, 16);
      for (let block = 0; block < 16; block++) {
        assert.equal(results.get(block), BLOCK);
        assert.ok(matchesPattern(buffer.subarray(block * BLOCK, (block + 1) * BLOCK), 4000 + block));
      }
    } finally {
      ring.close();
      closeDevice(device.fd);
    }
  });
});

describe('Ring on a loop device', () => {
  let loop: LoopDevice;
  let device: DeviceInfo;
  let ring: Ring;
  let buffer: Uint8Array;
  let bufferIndex: number;
  before(() => {
    loop = attachLoopDevice(16 << 20);
    device = openDevice(loop.path, { readOnly: false });
    ring = new Ring({ entries: 64 });
    buffer = allocateAligned(64 * BLOCK);
    bufferIndex = ring.registerBuffer(buffer);
  });
  after(() => {
    ring.close();
    closeDevice(device.fd);
    loop.release();
  });

  it('round-trips 64 blocks through fixed buffers on a block device', async () => {
    await writeBlocks(ring, device.fd, bufferIndex, buffer, BLOCK * 100, 64, 7000);
    const results = await readBlocks(ring, device.fd, bufferIndex, buffer, BLOCK * 100, 64);
    for (let block = 0; block < 64; block++) {
      assert.equal(results.get(block), BLOCK);
      assert.ok(matchesPattern(buffer.subarray(block * BLOCK, (block + 1) * BLOCK), 7000 + block), `block ${block}`);
    }
    const image = readFileSync(loop.image);
    assert.ok(matchesPattern(image.subarray(BLOCK * 100, BLOCK * 101), 7000), 'the backing image holds the bytes');
  });

  it('zeroes a range of a block device when fallocate is asked for ZERO_RANGE', async () => {
    await writeBlocks(ring, device.fd, bufferIndex, buffer, 0, 4, 8000);
    setDescriptor(ring.submissions, 0, Opcode.FALLOCATE, device.fd, 0, 0, 2 * BLOCK, BLOCK, 5, FallocateMode.ZERO_RANGE | FallocateMode.KEEP_SIZE);
    assert.equal(ring.submit(1), 1);
    assert.equal((await collectCompletions(ring, 1)).get(5), 0);
    const results = await readBlocks(ring, device.fd, bufferIndex, buffer, 0, 4);
    assert.ok([...results.values()].every((result) => result === BLOCK));
    assert.ok(matchesPattern(buffer.subarray(0, BLOCK), 8000));
    assert.ok(buffer.subarray(BLOCK, 3 * BLOCK).every((byte) => byte === 0), 'zeroed range');
    assert.ok(matchesPattern(buffer.subarray(3 * BLOCK, 4 * BLOCK), 8003));
  });
});

describe('Ring on a full filesystem', () => {
  let tmpfs: Mount;
  before(() => {
    tmpfs = mountFilesystem('tmpfs', ['size=1M']);
  });
  after(() => tmpfs.release());

  it('reports -ENOSPC in the completion when a write needs space the filesystem does not have', async () => {
    const victim = openSync(join(tmpfs.directory, 'victim'), 'w+');
    const filler = openSync(join(tmpfs.directory, 'filler'), 'w');
    const chunk = Buffer.alloc(64 * 1024, 1);
    assert.throws(() => {
      for (;;) writeSync(filler, chunk);
    }, /ENOSPC/);
    closeSync(filler);
    const ring = new Ring({ entries: 4 });
    try {
      const buffer = allocateAligned(BLOCK);
      const index = ring.registerBuffer(buffer);
      setDescriptor(ring.submissions, 0, Opcode.WRITE, victim, index, 0, BLOCK, 0, 1, 0);
      assert.equal(ring.submit(1), 1);
      assert.equal((await collectCompletions(ring, 1)).get(1), -ENOSPC);
      assert.equal(fstatSync(victim).size, 0);
    } finally {
      ring.close();
      closeSync(victim);
    }
  });
});

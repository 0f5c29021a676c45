/**
 * VirtualDisk (src/agent/virtual-disk.ts) on real O_DIRECT files and loop devices: data lands where the table
 * says, any offset and length works, table states hold and release I/O, and device errors carry their code.
 * Oracles: the device files' bytes read back with plain fs calls at the physical offsets the table names;
 * fault records; error codes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExtentState, NoDevice } from '../../src/table/document.js';
import { VdmapError } from '../../src/errors/error.js';
import { readFrom, writeTo } from '../../src/nbd/export.js';
import { cleanupDevices, deviceBytes, isRoot, loopDevice, smallTmpfs, sparseFile } from '../support/devices.js';
import { DiskFixture, pattern } from './fixtures/disk.js';

const KiB = 1024;
const extentSize = 64 * KiB;
const extentCount = 32;
/** Extent i lives on device i % 2, at physical extent (extentCount - 1 - i) >> 1: reversed and interleaved. */
const shuffled = (extent: number) => ({ device: extent % 2, physicalExtent: (extentCount - 1 - extent) >> 1, state: ExtentState.Valid });

const isCode = (code: string) => (e: unknown) => e instanceof VdmapError && e.code === code;

async function shuffledDisk(holdTimeoutMs = 5000) {
  const devices = [sparseFile(extentSize * extentCount), sparseFile(extentSize * extentCount)];
  return DiskFixture.open({ devices, extentSize, extentCount, map: shuffled, holdTimeoutMs });
}

after(cleanupDevices);

describe('virtual disk data path', () => {
  it('writes each extent to the device and offset its table entry names', async () => {
    const disk = await shuffledDisk();
    try {
      const data = pattern(0, extentSize * extentCount, 1);
      await writeTo(disk.vdisk, 0, data, false);
      for (const extent of [0, 1, 17, 31]) {
        const { device, physicalExtent } = shuffled(extent);
        const onDevice = deviceBytes(disk.options.devices[device], physicalExtent * extentSize, extentSize);
        assert.deepEqual(onDevice, data.subarray(extent * extentSize, (extent + 1) * extentSize), `extent ${extent}`);
      }
    } finally {
      disk.close();
    }
  });

  it('reads back a request that spans several extents as one result', async () => {
    const disk = await shuffledDisk();
    try {
      const offset = extentSize - 4096;
      const data = pattern(offset, 3 * extentSize, 2);
      await writeTo(disk.vdisk, offset, data, false);
      const result = await readFrom(disk.vdisk, offset, data.length);
      assert.deepEqual(result.bytes, data);
      result.release();
    } finally {
      disk.close();
    }
  });

  it('handles any byte offset and length by read-modify-write, keeping the neighbouring bytes', async () => {
    const disk = await shuffledDisk();
    try {
      const base = pattern(0, 4 * extentSize, 3);
      await writeTo(disk.vdisk, 0, base, false);
      const expected = base.slice();
      for (const [offset, length] of [[1, 1], [511, 2], [4095, 4098], [extentSize - 7, 100], [3 * extentSize + 13, 999]]) {
        const data = pattern(offset, length, 99);
        await writeTo(disk.vdisk, offset, data, false);
        expected.set(data, offset);
      }
      const result = await readFrom(disk.vdisk, 0, 4 * extentSize);
      assert.deepEqual(result.bytes, expected);
      result.release();
      const odd = await readFrom(disk.vdisk, 4095, 3);
      assert.deepEqual(odd.bytes, expected.subarray(4095, 4098));
      odd.release();
    } finally {
      disk.close();
    }
  });

  it('loses no write when many partial writes to the same block are in flight at once', async () => {
    const disk = await shuffledDisk();
    try {
      await writeTo(disk.vdisk, 0, new Uint8Array(4096), false);
      const writes = Array.from({ length: 64 }, (_, i) => writeTo(disk.vdisk, i * 64, new Uint8Array(64).fill(i + 1), false));
      await Promise.all(writes);
      const result = await readFrom(disk.vdisk, 0, 4096);
      for (let i = 0; i < 64; i++) assert.ok(result.bytes.subarray(i * 64, (i + 1) * 64).every((b) => b === i + 1), `slice ${i} lost`);
      result.release();
    } finally {
      disk.close();
    }
  });

  it('rejects a request past the end of the disk with VDM_IO_OUT_OF_RANGE', async () => {
    const disk = await shuffledDisk();
    try {
      const size = extentSize * extentCount;
      await assert.rejects(readFrom(disk.vdisk, size - 10, 11), isCode('VDM_IO_OUT_OF_RANGE'));
      await assert.rejects(writeTo(disk.vdisk, size, new Uint8Array(1), false), isCode('VDM_IO_OUT_OF_RANGE'));
      await assert.rejects(readFrom(disk.vdisk, -1, 1), isCode('VDM_IO_OUT_OF_RANGE'));
    } finally {
      disk.close();
    }
  });

  it('reports to the Completion only after read() and write() returned, even for a request refused at once', async () => {
    const disk = await shuffledDisk();
    try {
      const size = extentSize * extentCount;
      const heard: string[] = [];
      const outcome = (name: string) => new Promise<unknown>((resolve) => {
        const done = { succeeded: () => { heard.push(name); resolve(undefined); }, failed: (error: unknown) => { heard.push(name); resolve(error); } };
        if (name === 'read') disk.vdisk.read(size, 1, done);
        else disk.vdisk.write(size, new Uint8Array(1), false, done);
        heard.push(`${name} returned`);
      });
      const [readError, writeError] = await Promise.all([outcome('read'), outcome('write')]);
      assert.deepEqual(heard.slice(0, 2), ['read returned', 'write returned']);
      assert.ok(isCode('VDM_IO_OUT_OF_RANGE')(readError) && isCode('VDM_IO_OUT_OF_RANGE')(writeError));
    } finally {
      disk.close();
    }
  });

  it('flushes every device of the disk', async () => {
    const disk = await shuffledDisk();
    try {
      await writeTo(disk.vdisk, 0, pattern(0, 8192, 4), true);
      await disk.vdisk.flush();
    } finally {
      disk.close();
    }
  });

  it('zeroes a range, including partial blocks at its edges', async () => {
    const disk = await shuffledDisk();
    try {
      await writeTo(disk.vdisk, 0, pattern(0, 3 * extentSize, 5), false);
      await disk.vdisk.writeZeroes(100, 2 * extentSize, { noHole: true, fastZero: false }, false);
      const result = await readFrom(disk.vdisk, 0, 3 * extentSize);
      assert.deepEqual(result.bytes.subarray(0, 100), pattern(0, 100, 5));
      assert.ok(result.bytes.subarray(100, 100 + 2 * extentSize).every((b) => b === 0));
      assert.deepEqual(result.bytes.subarray(100 + 2 * extentSize), pattern(100 + 2 * extentSize, extentSize - 100, 5));
      result.release();
    } finally {
      disk.close();
    }
  });

  it('fails a fast zero with a partial block at once, changing nothing (it would need a read-modify-write)', async () => {
    const disk = await shuffledDisk();
    try {
      await writeTo(disk.vdisk, 0, pattern(0, 2 * extentSize, 7), false);
      await assert.rejects(
        disk.vdisk.writeZeroes(100, extentSize, { noHole: false, fastZero: true }, false),
        isCode('VDM_IO_FAST_ZERO_UNSUPPORTED'),
      );
      const result = await readFrom(disk.vdisk, 0, 2 * extentSize);
      assert.deepEqual(result.bytes, pattern(0, 2 * extentSize, 7));
      result.release();
    } finally {
      disk.close();
    }
  });

  it('fails a fast zero before changing any byte once a device it touches has refused to zero quickly', async () => {
    // Extent 0 on ext4 (FALLOC_FL_ZERO_RANGE works), extent 1 on tmpfs (it does not).
    const devices = [sparseFile(extentSize * extentCount), sparseFile(extentSize * extentCount, smallTmpfs(2 * extentSize * extentCount))];
    const disk = await DiskFixture.open({ devices, extentSize, extentCount, map: shuffled, holdTimeoutMs: 5000 });
    try {
      const data = pattern(0, 2 * extentSize, 8);
      const zeroQuickly = () => disk.vdisk.writeZeroes(0, 2 * extentSize, { noHole: true, fastZero: true }, false);
      await writeTo(disk.vdisk, 0, data, false);
      await assert.rejects(zeroQuickly(), isCode('VDM_IO_FAST_ZERO_UNSUPPORTED'));
      await writeTo(disk.vdisk, 0, data, false);
      await assert.rejects(zeroQuickly(), isCode('VDM_IO_FAST_ZERO_UNSUPPORTED'));
      const result = await readFrom(disk.vdisk, 0, 2 * extentSize);
      assert.deepEqual(result.bytes, data, 'the ext4 extent was not zeroed by the refused request');
      result.release();
    } finally {
      disk.close();
    }
  });

  it('trims whole blocks so they read back as zeroes on a file device', async () => {
    const disk = await shuffledDisk();
    try {
      await writeTo(disk.vdisk, 0, pattern(0, extentSize, 6), false);
      await disk.vdisk.trim(0, extentSize, false);
      const result = await readFrom(disk.vdisk, 0, extentSize);
      assert.ok(result.bytes.every((b) => b === 0));
      result.release();
    } finally {
      disk.close();
    }
  });

  it('round-trips data on a tmpfs-backed loop device', { skip: !isRoot() && 'needs root for losetup' }, async () => {
    const device = loopDevice(extentSize * extentCount);
    const disk = await DiskFixture.open({ devices: [device], extentSize, extentCount, map: (i) => ({ device: 0, physicalExtent: extentCount - 1 - i, state: 0 }) });
    try {
      const data = pattern(0, extentSize * extentCount, 7);
      await writeTo(disk.vdisk, 0, data, true);
      const result = await readFrom(disk.vdisk, 0, data.length);
      assert.deepEqual(result.bytes, data);
      result.release();
      assert.deepEqual(deviceBytes(device, (extentCount - 1) * extentSize, extentSize), data.subarray(0, extentSize));
    } finally {
      disk.close();
    }
  });
});

describe('virtual disk table states', () => {
  it('holds a read of an INVALID extent, faults once, and completes when the controller fixes the entry', async () => {
    const disk = await shuffledDisk();
    try {
      await writeTo(disk.vdisk, 3 * extentSize, pattern(0, extentSize, 8), false);
      await disk.setEntry(3, { device: NoDevice, physicalExtent: 0, state: ExtentState.Invalid });
      let done = false;
      const reads = [readFrom(disk.vdisk, 3 * extentSize, 4096), readFrom(disk.vdisk, 3 * extentSize + 4096, 4096)];
      void Promise.all(reads).then(() => { done = true; });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(done, false, 'the read must be held');
      assert.equal(disk.faults.length, 1, 'two held reads of one extent make one fault');
      assert.deepEqual({ ...disk.faults[0] }, { disk: 'vd0', extent: 3, operation: 'read', epoch: disk.agentDisk.epoch, kind: 'invalid' });
      await disk.setEntry(3, shuffled(3));
      const [first] = await Promise.all(reads);
      assert.deepEqual(first.bytes, pattern(0, 4096, 8));
    } finally {
      disk.close();
    }
  });

  it('fails a held request with VDM_STATE_INVALID_TIMEOUT when nobody fixes the entry', async () => {
    const disk = await shuffledDisk(100);
    try {
      await disk.setEntry(5, { device: NoDevice, physicalExtent: 0, state: ExtentState.Invalid });
      await assert.rejects(readFrom(disk.vdisk, 5 * extentSize, 512), isCode('VDM_STATE_INVALID_TIMEOUT'));
    } finally {
      disk.close();
    }
  });

  it('lets reads pass a NOWRITE extent and holds writes until the state is cleared', async () => {
    const disk = await shuffledDisk();
    try {
      await writeTo(disk.vdisk, 2 * extentSize, pattern(0, 4096, 9), false);
      await disk.setEntry(2, { ...shuffled(2), state: ExtentState.NoWrite });
      const read = await readFrom(disk.vdisk, 2 * extentSize, 4096);
      assert.deepEqual(read.bytes, pattern(0, 4096, 9));
      read.release();
      let written = false;
      const write = writeTo(disk.vdisk, 2 * extentSize, pattern(0, 4096, 10), false).then(() => { written = true; });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(written, false);
      assert.equal(disk.faults.at(-1)?.kind, 'nowrite');
      await disk.setEntry(2, shuffled(2));
      await write;
      const after = await readFrom(disk.vdisk, 2 * extentSize, 4096);
      assert.deepEqual(after.bytes, pattern(0, 4096, 10));
      after.release();
    } finally {
      disk.close();
    }
  });

  it('fails a write held by NOWRITE with VDM_STATE_NOWRITE_TIMEOUT', async () => {
    const disk = await shuffledDisk(100);
    try {
      await disk.setEntry(2, { ...shuffled(2), state: ExtentState.NoWrite });
      await assert.rejects(writeTo(disk.vdisk, 2 * extentSize, new Uint8Array(4096), false), isCode('VDM_STATE_NOWRITE_TIMEOUT'));
    } finally {
      disk.close();
    }
  });

  it('does not let a held request block other requests', async () => {
    const disk = await shuffledDisk();
    try {
      await disk.setEntry(7, { device: NoDevice, physicalExtent: 0, state: ExtentState.Invalid });
      const held = readFrom(disk.vdisk, 7 * extentSize, 4096);
      await writeTo(disk.vdisk, 8 * extentSize, pattern(0, 4096, 11), false);
      const other = await readFrom(disk.vdisk, 8 * extentSize, 4096);
      assert.deepEqual(other.bytes, pattern(0, 4096, 11));
      other.release();
      await disk.setEntry(7, shuffled(7));
      (await held).release();
    } finally {
      disk.close();
    }
  });

  it('reads an unallocated (ZERO) extent as zeroes and holds writes to it for allocation', async () => {
    const disk = await shuffledDisk();
    try {
      await writeTo(disk.vdisk, 4 * extentSize, pattern(0, 4096, 12), false);
      await disk.setEntry(4, { device: NoDevice, physicalExtent: 0, state: ExtentState.Zero });
      const read = await readFrom(disk.vdisk, 4 * extentSize, 4096);
      assert.ok(read.bytes.every((b) => b === 0));
      read.release();
      const write = writeTo(disk.vdisk, 4 * extentSize, pattern(0, 4096, 13), false);
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(disk.faults.at(-1)?.kind, 'unallocated');
      await disk.setEntry(4, shuffled(4));
      await write;
      const status = await disk.vdisk.blockStatus(0, extentSize * extentCount);
      assert.deepEqual(status, [{ length: extentSize * extentCount, hole: false, zero: false }]);
    } finally {
      disk.close();
    }
  });

  it('reports unallocated extents as holes in block status', async () => {
    const disk = await DiskFixture.open({
      devices: [sparseFile(extentSize * extentCount)], extentSize, extentCount,
      map: (i) => (i < 4 ? { device: 0, physicalExtent: i, state: 0 } : { device: NoDevice, physicalExtent: 0, state: ExtentState.Zero }),
    });
    try {
      assert.deepEqual(await disk.vdisk.blockStatus(extentSize, 8 * extentSize), [
        { length: 3 * extentSize, hole: false, zero: false },
        { length: 5 * extentSize, hole: true, zero: true },
      ]);
    } finally {
      disk.close();
    }
  });

  it('fails held requests with VDM_IO_CLOSED when the disk closes', async () => {
    const disk = await shuffledDisk();
    await disk.setEntry(6, { device: NoDevice, physicalExtent: 0, state: ExtentState.Invalid });
    const held = readFrom(disk.vdisk, 6 * extentSize, 4096);
    await new Promise((resolve) => setTimeout(resolve, 20));
    disk.close();
    await assert.rejects(held, isCode('VDM_IO_CLOSED'));
  });
});

/** Four extents on a read-only loop device, virtual extent i at physical extent 3 - i (a fault naming the physical
 * extent instead of the virtual one would be caught). */
function readOnlyReversedDisk(): Promise<DiskFixture> {
  const device = loopDevice(extentSize * 4, { readOnly: true });
  return DiskFixture.open({ devices: [device], extentSize, extentCount: 4, map: (i) => ({ device: 0, physicalExtent: 3 - i, state: 0 }) });
}

describe('virtual disk device errors', () => {
  it('surfaces ENOSPC from a full filesystem as VDM_IO_NOSPACE', { skip: !isRoot() && 'needs root to mount tmpfs' }, async () => {
    const mount = smallTmpfs(1024 * 1024);
    const path = join(mount, 'device.img');
    writeFileSync(path, '');
    const { truncateSync } = await import('node:fs');
    truncateSync(path, extentSize * extentCount);
    const disk = await DiskFixture.open({ devices: [path], extentSize, extentCount, map: (i) => ({ device: 0, physicalExtent: i, state: 0 }) });
    try {
      await assert.rejects(writeTo(disk.vdisk, 0, pattern(0, 2 * 1024 * 1024, 14), false), isCode('VDM_IO_NOSPACE'));
      assert.equal(disk.faults.at(-1)?.kind, 'device-error');
      assert.equal(disk.faults.at(-1)?.error?.code, 'VDM_IO_NOSPACE');
    } finally {
      disk.close();
    }
  });

  it('surfaces the error of a write to a read-only loop device as VDM_IO_READ_ONLY', { skip: !isRoot() && 'needs root for losetup' }, async () => {
    const device = loopDevice(extentSize * 4, { readOnly: true });
    const disk = await DiskFixture.open({ devices: [device], extentSize, extentCount: 4, map: (i) => ({ device: 0, physicalExtent: i, state: 0 }) });
    try {
      // The kernel fails the write with EPERM (the device is opened, the write refused).
      await assert.rejects(writeTo(disk.vdisk, 0, pattern(0, 4096, 15), false), (e: unknown) => e instanceof VdmapError && e.code === 'VDM_IO_READ_ONLY' && e.details?.errno === 'EPERM');
      const read = await readFrom(disk.vdisk, 0, 4096);
      read.release();
    } finally {
      disk.close();
    }
  });

  it('reports a device error as a fault on the virtual extent it hit, in the epoch the request was planned in', { skip: !isRoot() && 'needs root for losetup' }, async () => {
    const disk = await readOnlyReversedDisk();
    try {
      await assert.rejects(writeTo(disk.vdisk, 2 * extentSize + 8192, pattern(0, 4096, 16), false), isCode('VDM_IO_READ_ONLY'));
      assert.deepEqual(disk.faults.map(({ kind, extent, operation, epoch }) => ({ kind, extent, operation, epoch })),
        [{ kind: 'device-error', extent: 2, operation: 'write', epoch: disk.epoch }]);
    } finally {
      disk.close();
    }
  });

  it('names every extent a failed multi-extent write hit (the general path)', { skip: !isRoot() && 'needs root for losetup' }, async () => {
    const disk = await readOnlyReversedDisk();
    try {
      await assert.rejects(writeTo(disk.vdisk, extentSize - 4096, pattern(0, 3 * 4096, 17), false), isCode('VDM_IO_READ_ONLY'));
      assert.deepEqual(disk.faults.map((fault) => fault.extent).sort(), [0, 1]);
      assert.ok(disk.faults.every((fault) => fault.kind === 'device-error' && fault.epoch === disk.epoch));
    } finally {
      disk.close();
    }
  });

  it('reports a short read past the end of a file device as VDM_IO_DEVICE', async () => {
    const small = sparseFile(extentSize);
    const disk = await DiskFixture.open({ devices: [small], extentSize, extentCount: 2, map: (i) => ({ device: 0, physicalExtent: i, state: 0 }) });
    try {
      await assert.rejects(readFrom(disk.vdisk, extentSize, 4096), isCode('VDM_IO_DEVICE'));
    } finally {
      disk.close();
    }
  });
});

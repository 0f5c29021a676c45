/**
 * VirtualDisk.writeBuffer (X6 of src/nbd/export.ts): the NBD server fills the disk's own pool block with a WRITE
 * payload and commits it, so the payload is copied once. Proves it writes exactly what write() would, only offers
 * memory for whole blocks of a writable open disk, and gives the block back on commit, abandon and failure.
 * Oracles: the device files' bytes read back with plain fs calls at the offsets the table names; the engine pool's
 * bytes in use; error codes.
 */
import assert from 'node:assert/strict';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { VdmapError } from '../../src/errors/error.js';
import { commitWrite, readFrom } from '../../src/nbd/export.js';
import { ExtentState } from '../../src/table/document.js';
import { cleanupDevices, deviceBytes, isRoot, smallTmpfs, sparseFile } from '../support/devices.js';
import { DiskFixture, type Mapping, pattern } from './fixtures/disk.js';

const extentSize = 64 * 1024;
const extentCount = 16;
/** Reversed extents: a payload written at the wrong place would be visible. */
const reversed = (extent: number) => ({ device: 0, physicalExtent: extentCount - 1 - extent, state: ExtentState.Valid });

async function reversedDisk(map: (extent: number) => Mapping = reversed): Promise<DiskFixture> {
  return DiskFixture.open({ devices: [sparseFile(extentSize * extentCount)], extentSize, extentCount, map, holdTimeoutMs: 200 });
}

after(cleanupDevices);

describe('VirtualDisk.writeBuffer', () => {
  it('writes the filled buffer where the table maps it, across an extent boundary, when committed', async () => {
    const disk = await reversedDisk();
    try {
      const offset = 3 * extentSize - 8192;
      const data = pattern(offset, 16384, 7);
      const buffer = disk.vdisk.writeBuffer(offset, data.length);
      assert.ok(buffer !== undefined);
      assert.equal(buffer.bytes.length, data.length);
      buffer.bytes.set(data);
      await commitWrite(buffer, false);
      assert.deepEqual(deviceBytes(disk.options.devices[0], reversed(2).physicalExtent * extentSize + extentSize - 8192, 8192), data.subarray(0, 8192));
      assert.deepEqual(deviceBytes(disk.options.devices[0], reversed(3).physicalExtent * extentSize, 8192), data.subarray(8192));
      const back = await readFrom(disk.vdisk, offset, data.length);
      assert.deepEqual(back.bytes, data);
      back.release();
    } finally {
      disk.close();
    }
  });

  it('offers no buffer for a partial-block write, a range past the end, nothing, or a closed disk', async () => {
    const disk = await reversedDisk();
    try {
      const offered = (offset: number, length: number): boolean => disk.vdisk.writeBuffer(offset, length) !== undefined;
      assert.ok(!offered(100, 4096), 'an offset inside a block');
      assert.ok(!offered(0, 1000), 'a length that ends inside a block');
      assert.ok(!offered(extentSize * extentCount - 4096, 8192), 'past the end');
      assert.ok(!offered(0, 0), 'nothing to write');
      disk.vdisk.close();
      assert.ok(!offered(0, 4096), 'closed');
    } finally {
      disk.close();
    }
  });

  it('gives the block back to the pool on commit and on abandon', async () => {
    const disk = await reversedDisk();
    try {
      const pool = disk.engine.pool;
      const before = pool.inUse;
      const committed = disk.vdisk.writeBuffer(0, 8192)!;
      committed.bytes.fill(1);
      const abandoned = disk.vdisk.writeBuffer(8192, 8192)!;
      assert.ok(pool.inUse > before);
      abandoned.abandon();
      await commitWrite(committed, true);
      assert.equal(pool.inUse, before);
      await assert.rejects(commitWrite(committed, false), (error: unknown) => error instanceof VdmapError && error.code === 'VDM_INTERNAL');
    } finally {
      disk.close();
    }
  });

  it('fails a commit the table holds past the hold timeout like write(), and still gives the block back', async () => {
    const disk = await reversedDisk((extent) => ({ ...reversed(extent), state: extent === 0 ? ExtentState.Invalid : ExtentState.Valid }));
    try {
      const pool = disk.engine.pool;
      const before = pool.inUse;
      const buffer = disk.vdisk.writeBuffer(0, 4096)!;
      await assert.rejects(commitWrite(buffer, false), (error: unknown) => error instanceof VdmapError && error.code === 'VDM_STATE_INVALID_TIMEOUT');
      assert.equal(pool.inUse, before);
      assert.ok(disk.faults.some((fault) => fault.extent === 0 && fault.operation === 'write'));
    } finally {
      disk.close();
    }
  });

  it('fails a single-extent commit on a full device with VDM_IO_NOSPACE, and gives back its block and write lock', { skip: !isRoot() && 'needs root to mount tmpfs' }, async () => {
    const mount = smallTmpfs(4 * extentSize);
    const path = join(mount, 'device.img');
    writeFileSync(path, '');
    truncateSync(path, extentSize * extentCount);
    const disk = await DiskFixture.open({ devices: [path], extentSize, extentCount, map: reversed, holdTimeoutMs: 200 });
    try {
      const pool = disk.engine.pool;
      const before = pool.inUse;
      let failure: unknown;
      for (let extent = 0; extent < extentCount && failure === undefined; extent++) {
        const buffer = disk.vdisk.writeBuffer(extent * extentSize, extentSize)!;
        buffer.bytes.fill(extent + 1);
        await commitWrite(buffer, false).catch((error: unknown) => { failure = error; });
      }
      assert.ok(failure instanceof VdmapError && failure.code === 'VDM_IO_NOSPACE', `expected VDM_IO_NOSPACE, got ${String(failure)}`);
      assert.equal(pool.inUse, before);
      assert.ok(disk.agentDisk.locks.stripes.every((word) => word === 0), 'every write-lock stripe is free again');
      assert.equal(disk.faults.at(-1)?.kind, 'device-error');
    } finally {
      disk.close();
    }
  });
});


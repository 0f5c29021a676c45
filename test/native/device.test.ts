/**
 * Proves openDevice reports the facts of real files and real block devices and classifies failures (invariants V1,
 * V2 of src/native/device.ts).
 * Oracles: fs.statSync for file sizes; `blockdev --getss --getsize64` for the loop device; statx-backed ext4 facts
 * (512-byte direct-I/O alignment on this machine's ext4); the kernel's refusal of O_DIRECT on ramfs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fstatSync, mkdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VdmapError } from '../../src/errors/error.js';
import { closeDevice, openDevice } from '../../src/native/index.js';
import { type LoopDevice, type Mount, type Scratch, attachLoopDevice, blockDeviceAlignments, ext4Directory, mountFilesystem, requireTool } from './fixtures/system.js';

function isDeviceError(code: string, errno: string) {
  return (error: unknown): boolean =>
    error instanceof VdmapError && error.code === code && (error.details as { errno?: string }).errno === errno;
}

describe('openDevice on a regular file', () => {
  let scratch: Scratch;
  before(() => {
    scratch = ext4Directory('device');
  });
  after(() => scratch.release());

  it('reports size, alignments and kind when the file is on ext4', () => {
    const path = join(scratch.directory, 'disk.img');
    writeFileSync(path, Buffer.alloc(3 * 4096 + 512, 1));
    const device = openDevice(path, { readOnly: false });
    try {
      assert.equal(device.size, statSync(path).size);
      assert.equal(device.isBlockDevice, false);
      assert.equal(device.readOnly, false);
      assert.equal(device.path, path);
      const expected = blockDeviceAlignments(path);
      assert.equal(device.offsetAlignment, expected.offset, 'ext4 reports its device\'s logical block size through statx');
      assert.equal(device.memoryAlignment, expected.memory, 'and its DMA alignment');
      assert.ok(fstatSync(device.fd).isFile());
    } finally {
      closeDevice(device.fd);
    }
  });

  it('opens read-only when asked, so that writes through the fd fail with EBADF', () => {
    const path = join(scratch.directory, 'readonly.img');
    writeFileSync(path, Buffer.alloc(4096));
    const device = openDevice(path, { readOnly: true });
    try {
      assert.equal(device.readOnly, true);
      assert.throws(() => writeSync(device.fd, Buffer.alloc(4096), 0, 4096, 0), /EBADF/);
    } finally {
      closeDevice(device.fd);
    }
  });

  it('closes the fd when closeDevice is called', () => {
    const path = join(scratch.directory, 'close.img');
    writeFileSync(path, Buffer.alloc(4096));
    const device = openDevice(path, { readOnly: true });
    closeDevice(device.fd);
    assert.throws(() => fstatSync(device.fd), /EBADF/);
  });

  it('throws VDM_DEVICE_OPEN with errno ENOENT when the path does not exist', () => {
    const path = join(scratch.directory, 'missing.img');
    assert.throws(() => openDevice(path, { readOnly: true }), (error: unknown) =>
      isDeviceError('VDM_DEVICE_OPEN', 'ENOENT')(error) && (error as VdmapError).details?.path === path &&
      (error as VdmapError).message.includes(path));
  });

  it('throws VDM_DEVICE_UNSUPPORTED when the path is a directory', () => {
    const path = join(scratch.directory, 'a-directory');
    mkdirSync(path);
    assert.throws(() => openDevice(path, { readOnly: true }), isDeviceError('VDM_DEVICE_UNSUPPORTED', 'ENOTSUP'));
    assert.throws(() => openDevice(path, { readOnly: false }), isDeviceError('VDM_DEVICE_UNSUPPORTED', 'EISDIR'));
  });
});

describe('openDevice on a filesystem without direct I/O', () => {
  let ramfs: Mount;
  before(() => {
    ramfs = mountFilesystem('ramfs');
  });
  after(() => ramfs.release());

  it('throws VDM_DEVICE_UNSUPPORTED with errno EINVAL when the filesystem refuses O_DIRECT', () => {
    const path = join(ramfs.directory, 'file.img');
    writeFileSync(path, Buffer.alloc(4096));
    assert.throws(() => openDevice(path, { readOnly: false }), (error: unknown) =>
      isDeviceError('VDM_DEVICE_UNSUPPORTED', 'EINVAL')(error) && /O_DIRECT/.test((error as Error).message));
  });
});

describe('openDevice on a block device', () => {
  let loop: LoopDevice;
  before(() => {
    loop = attachLoopDevice(16 << 20, 4096);
  });
  after(() => loop.release());

  it('reports the size and logical block size the kernel reports for a loop device', () => {
    requireTool('blockdev', 'util-linux');
    const [sectorSize, size] = execFileSync('blockdev', ['--getss', '--getsize64', loop.path], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
    const device = openDevice(loop.path, { readOnly: false });
    try {
      assert.equal(device.isBlockDevice, true);
      assert.equal(device.size, size);
      assert.equal(device.size, 16 << 20);
      assert.equal(device.logicalBlockSize, sectorSize);
      assert.equal(device.logicalBlockSize, 4096);
      assert.equal(device.offsetAlignment, 4096);
      assert.ok(device.memoryAlignment >= 512 && (device.memoryAlignment & (device.memoryAlignment - 1)) === 0);
    } finally {
      closeDevice(device.fd);
    }
  });
});


/**
 * NBD clients served by the agent's I/O workers (src/agent/nbd-listener.ts, workers/io-worker.ts): the main
 * thread accepts, each connection is handed once to a worker, and its requests meet that worker's ring.
 * Oracles: clients nobody here wrote (qemu-io pattern verification, nbdinfo, fio crc32c verify over two
 * connections that land on different workers) and the device's bytes at the mapped offsets.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openSync, readSync, closeSync } from 'node:fs';
import { AgentDisk } from '../../src/agent/agent-disk.js';
import { NbdListener } from '../../src/agent/nbd-listener.js';
import { IoWorkerPool } from '../../src/agent/workers/io-worker-pool.js';
import { emptyDocument, ExtentState, NoDevice } from '../../src/table/document.js';
import { cleanupDevices, deviceBytes, sparseFile, tempDir } from '../support/devices.js';
import { requireTool, runTool, runToolOk } from '../support/tools.js';

const extentSize = 1024 * 1024;
const extentCount = 64;
/** Extent i lives at physical extent extentCount - 1 - i: reversed, so misplaced data is visible. */
const physicalOf = (extent: number) => extentCount - 1 - extent;

describe('NBD served by I/O workers', () => {
  let disk: AgentDisk;
  let pool: IoWorkerPool;
  let listener: NbdListener;
  let device: string;
  let uri: string;

  before(async () => {
    device = sparseFile(extentSize * extentCount);
    disk = new AgentDisk({ name: 'vd0', size: extentSize * extentCount, extentCapacity: extentCount, readerSlots: 3 });
    disk.attachDevice('d0', device);
    const doc = emptyDocument('vd0', 1, extentSize, extentCount);
    doc.devices = ['d0'];
    for (let i = 0; i < extentCount; i++) { doc.device[i] = 0; doc.physicalExtent[i] = physicalOf(i); doc.state[i] = 0; }
    doc.device[extentCount - 1] = NoDevice;
    doc.state[extentCount - 1] = ExtentState.Zero;
    await disk.applyDocument(doc);
    pool = new IoWorkerPool({ threads: 2, ringEntries: 64, poolBytes: 32 * 1024 * 1024, onFault: () => {} });
    await pool.start();
    pool.attach(disk);
    const socketPath = join(tempDir(), 'nbd.sock');
    listener = new NbdListener(pool, { tcp: { host: '127.0.0.1', port: 0 }, unixPath: socketPath });
    await listener.listen();
    uri = `nbd+unix:///vd0?socket=${socketPath}`;
  });

  after(async () => {
    await listener.close();
    await pool.close();
    disk.close();
    cleanupDevices();
  });

  it('writes through qemu-io land at the physical offset the table names', async () => {
    requireTool('qemu-io');
    await runToolOk('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a ${extentSize + 4096} 8192`, '-c', `read -P 0x5a ${extentSize + 4096} 8192`, uri]);
    assert.ok(deviceBytes(device, physicalOf(1) * extentSize + 4096, 8192).every((b) => b === 0x5a));
  });

  it('takes an image converted into it by qemu-img and compares equal to it', async () => {
    requireTool('qemu-img');
    const dir = tempDir();
    const image = join(dir, 'source.raw');
    const { writeFileSync } = await import('node:fs');
    const bytes = new Uint8Array(8 * extentSize);
    for (let i = 0; i < bytes.length; i += 4096) bytes.fill((i / 4096) % 251, i, i + 4096);
    writeFileSync(image, bytes);
    await runToolOk('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', image, uri]);
    // The disk is larger than the image: qemu-img compare requires the rest of the disk to read as zeroes.
    await runToolOk('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, uri], 120_000);
    const copy = new Uint8Array(bytes.length);
    const fd = openSync(device, 'r');
    for (let extent = 0; extent < 8; extent++) readSync(fd, copy, extent * extentSize, extentSize, physicalOf(extent) * extentSize);
    closeSync(fd);
    assert.deepEqual(copy, bytes);
  });

  it('lists the disk and maps the unallocated extent as a hole (nbdinfo)', async () => {
    requireTool('nbdinfo');
    const list = await runToolOk('nbdinfo', ['--list', '--json', uri.replace('/vd0', '/')]);
    assert.match(list, /"export-name": "vd0"/);
    const map = await runToolOk('nbdinfo', ['--map', uri]);
    assert.match(map, new RegExp(`${(extentCount - 1) * extentSize}\\s+${extentSize}\\s+3\\s+hole,zero`));
  });

  it('verifies random writes from two connections on two workers (fio crc32c)', async () => {
    requireTool('fio');
    const result = await runTool('fio', ['--name=verify', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=16',
      '--numjobs=2', `--size=${16 * extentSize}`, '--offset_increment=16m', '--verify=crc32c', '--do_verify=1', '--verify_state_save=0', '--output-format=terse'], 120_000);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(pool.connectionCounts().length, 2);
  });
});

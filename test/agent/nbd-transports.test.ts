/**
 * Both ways an I/O worker can carry an NBD connection (src/agent/workers/io-worker.ts): on its own ring
 * (RingTransport, the default) and on a net.Socket of its event loop (socketsOnRing: false), with hybrid polling
 * on and off. Each must serve the same bytes: a qemu-io write read back with pattern verification, several requests
 * in flight from fio with crc32c verification, and an orderly disconnect, also when the client shuts its sending side
 * right after DISC with requests still unanswered (every one is served first).
 * Oracles: clients nobody here wrote (qemu-io -P verification, fio verify) and the device file's bytes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AgentDisk } from '../../src/agent/agent-disk.js';
import { NbdListener } from '../../src/agent/nbd-listener.js';
import { IoWorkerPool, type IoWorkerPoolOptions } from '../../src/agent/workers/io-worker-pool.js';
import * as nbd from '../../src/nbd/protocol.js';
import { emptyDocument } from '../../src/table/document.js';
import { RawClient, requestBytes } from '../nbd/fixtures/raw-client.js';
import { cleanupDevices, deviceBytes, sparseFile, tempDir } from '../support/devices.js';
import { requireTool, runToolOk } from '../support/tools.js';

const extentSize = 1024 * 1024;
const extentCount = 16;

after(cleanupDevices);

const variants: Array<[string, Partial<IoWorkerPoolOptions>]> = [
  ['on the ring, with hybrid polling', {}],
  ['on the ring, without polling or busy waits', { pollMicroseconds: 0, waitMicroseconds: 0 }],
  ['on a net.Socket', { socketsOnRing: false }],
];

for (const [name, options] of variants) {
  describe(`NBD connections carried ${name}`, () => {
    it('serves qemu-io writes and fio verified random writes, landing on the device', async () => {
      requireTool('qemu-io');
      requireTool('fio');
      const device = sparseFile(extentSize * extentCount);
      const disk = new AgentDisk({ name: 'vd0', size: extentSize * extentCount, extentCapacity: extentCount, readerSlots: 2 });
      disk.attachDevice('d0', device);
      const doc = emptyDocument('vd0', 1, extentSize, extentCount);
      doc.devices = ['d0'];
      for (let i = 0; i < extentCount; i++) { doc.device[i] = 0; doc.physicalExtent[i] = i; doc.state[i] = 0; }
      await disk.applyDocument(doc);
      const pool = new IoWorkerPool({ threads: 1, ringEntries: 64, poolBytes: 16 * 1024 * 1024, onFault: () => {}, ...options });
      await pool.start();
      pool.attach(disk);
      const socketPath = join(tempDir(), 'nbd.sock');
      const listener = new NbdListener(pool, { tcp: false, unixPath: socketPath });
      await listener.listen();
      const uri = `nbd+unix:///vd0?socket=${socketPath}`;
      try {
        await runToolOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x3c 12288 65536', '-c', 'read -P 0x3c 12288 65536', uri]);
        assert.ok(deviceBytes(device, 12288, 65536).every((byte) => byte === 0x3c), 'the write is on the device');
        await runToolOk('fio', [
          '--name=verify', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=16', '--size=8m',
          '--verify=crc32c', '--do_verify=1', '--verify_fatal=1', '--verify_state_save=0',
        ], 120_000);
        await serveThroughHalfClose(socketPath, device);
      } finally {
        await listener.close();
        await pool.close();
        disk.close();
      }
    });
  });
}

/** X6 of src/nbd/transmission.ts through a worker: requests sent before DISC and a half-close are all served. */
async function serveThroughHalfClose(socketPath: string, device: string): Promise<void> {
  const raw = await RawClient.connect({ path: socketPath });
  try {
    await raw.open('vd0');
    const count = 160; // over maxInflightRequests (128): some wait unparsed behind X2 when the end arrives
    const requests = Array.from({ length: count }, (_, i) => requestBytes(nbd.NBD_CMD_WRITE, {
      handle: BigInt(i), offset: 8 * extentSize + i * 4096, payload: Buffer.alloc(4096, (i % 250) + 1),
    }));
    raw.write(Buffer.concat([...requests, requestBytes(nbd.NBD_CMD_DISC, { handle: 999n })]));
    raw.socket.end();
    for (let i = 0; i < count; i++) assert.equal((await raw.readReply()).error, 0, `reply ${i}`);
    assert.equal(await raw.waitClosed(), true);
    for (let i = 0; i < count; i++) {
      assert.ok(deviceBytes(device, 8 * extentSize + i * 4096, 4096).every((byte) => byte === (i % 250) + 1), `write ${i} on the device`);
    }
  } finally {
    raw.destroy();
  }
}

/**
 * BulkPool (src/agent/workers/bulk-pool.ts): copy jobs and table validation on piscina bulk workers.
 * Oracles: the target device's bytes after a copy, the error code of a failing copy, and the problems
 * validation reports for a table with a known defect.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readSync, writeSync, closeSync } from 'node:fs';
import { BulkPool } from '../../src/agent/workers/bulk-pool.js';
import { closeDevice, openDevice } from '../../src/native/index.js';
import { emptyDocument } from '../../src/table/document.js';
import { VdmapError } from '../../src/errors/error.js';
import { cleanupDevices, sparseFile } from '../support/devices.js';
import { pattern } from './fixtures/disk.js';

const MiB = 1024 * 1024;
after(cleanupDevices);

describe('bulk pool', () => {
  it('copies a range between devices on a bulk worker, byte for byte', async () => {
    const source = sparseFile(16 * MiB);
    const target = sparseFile(16 * MiB);
    const data = pattern(0, 5 * MiB + 4096, 31);
    const fd = openSync(source, 'r+');
    writeSync(fd, data, 0, data.length, 2 * MiB);
    closeSync(fd);
    const from = openDevice(source, { readOnly: true });
    const to = openDevice(target, { readOnly: false });
    const pool = new BulkPool();
    try {
      assert.equal(await pool.copyRange({ sourceFd: from.fd, sourceOffset: 2 * MiB, targetFd: to.fd, targetOffset: 8 * MiB, length: data.length }), data.length);
      const copy = new Uint8Array(data.length);
      const check = openSync(target, 'r');
      readSync(check, copy, 0, copy.length, 8 * MiB);
      closeSync(check);
      assert.deepEqual(copy, data);
    } finally {
      await pool.close();
      closeDevice(from.fd);
      closeDevice(to.fd);
    }
  });

  it('fails a copy that reads past the end of its source with a device error code', async () => {
    const source = sparseFile(MiB);
    const target = sparseFile(4 * MiB);
    const from = openDevice(source, { readOnly: true });
    const to = openDevice(target, { readOnly: false });
    const pool = new BulkPool();
    try {
      await assert.rejects(pool.copyRange({ sourceFd: from.fd, sourceOffset: 0, targetFd: to.fd, targetOffset: 0, length: 2 * MiB }),
        (e: unknown) => e instanceof VdmapError && e.code === 'VDM_IO_DEVICE');
    } finally {
      await pool.close();
      closeDevice(from.fd);
      closeDevice(to.fd);
    }
  });

  it('validates a 1M-entry table off the main thread and reports its bad entries', async () => {
    const doc = emptyDocument('vd0', 1, MiB, 1 << 20);
    doc.devices = ['d0'];
    for (let i = 0; i < doc.extentCount; i++) { doc.device[i] = 0; doc.physicalExtent[i] = i; doc.state[i] = 0; }
    doc.physicalExtent[7] = 3; // maps physical extent 3 twice, and neither is NOWRITE
    const pool = new BulkPool();
    try {
      const problems = await pool.validateTable(doc, new Map([['d0', { size: 2 ** 40, logicalBlockSize: 512 }]]));
      assert.ok(problems.some((p) => p.code === 'VDM_TABLE_OVERLAP' && (p.extent === 7 || p.extent === 3)), JSON.stringify(problems));
    } finally {
      await pool.close();
    }
  });
});

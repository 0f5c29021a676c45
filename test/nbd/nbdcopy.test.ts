/**
 * Proves: nbdcopy (libnbd, a client nobody here wrote; it uses several connections when the server allows
 * multi-conn, and asks for extents to skip holes) copies a file into an export and back out unchanged.
 * Oracle: byte equality of the round-tripped file with the original, and the MemoryExport's page map.
 * Needs: nbdcopy (apt-get install -y libnbd-bin); fails without it.
 */
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemoryExport, PAGE_SIZE } from './fixtures/memory-export.js';
import { startTestServer, type TestServer } from './fixtures/test-server.js';
import { requireTool, runToolOk } from '../support/tools.js';

const MiB = 1024 * 1024;

describe('nbdcopy against the server', () => {
  let server: TestServer;
  let directory: string;
  const disk = new MemoryExport({ name: 'disk', size: 64 * MiB });

  before(async () => {
    requireTool('nbdcopy');
    directory = mkdtempSync(join(tmpdir(), 'vdmap-nbdcopy-'));
    server = await startTestServer([disk]);
  });
  after(async () => {
    await server?.stop();
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
    assert.equal(disk.outstandingReadBuffers, 0);
  });

  it('copies a file into the export and back out byte for byte, over several connections', async () => {
    const original = Buffer.alloc(64 * MiB);
    randomFillSync(original, 0, 5 * MiB);
    randomFillSync(original, 40 * MiB, 7 * MiB + 12345);
    const source = join(directory, 'in.raw');
    const target = join(directory, 'out.raw');
    writeFileSync(source, original);
    await runToolOk('nbdcopy', ['--connections=4', '--requests=32', source, server.unixUri('disk')], 120_000);
    await runToolOk('nbdcopy', ['--connections=4', '--requests=32', server.tcpUri('disk'), target], 120_000);
    assert.ok(readFileSync(target).equals(original));
  });

  it('leaves the zero regions of the source as holes when asked to skip zeroes', async () => {
    disk.allocated.fill(1);
    disk.store.fill(1);
    const source = join(directory, 'sparse.raw');
    const data = Buffer.alloc(64 * MiB);
    data.fill(9, 0, MiB);
    writeFileSync(source, data);
    await runToolOk('nbdcopy', [source, server.unixUri('disk')], 120_000);
    assert.equal(disk.isHole(0), false);
    assert.equal(disk.store[10], 9);
    assert.equal(disk.store[2 * MiB], 0, 'zeroes were written or zeroed');
    const holes = Array.from(disk.allocated).filter((page) => page === 0).length;
    assert.ok(holes >= (63 * MiB) / PAGE_SIZE - 1, `expected the zero tail to be holes, found ${holes} hole pages`);
  });
});

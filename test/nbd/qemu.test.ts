/**
 * Proves: QEMU's NBD client (qemu-img and qemu-io, clients nobody here wrote) works against NbdServer:
 * qemu-img info sees the size, qemu-img convert writes an image into the export and qemu-img compare finds it
 * identical, and qemu-io write/read patterns verify (-P) including write-zeroes and discard.
 * Oracle: qemu-img compare's exit code against the source image, qemu-io's pattern verification, and the
 * MemoryExport's bytes.
 * Needs: qemu-img, qemu-io (apt-get install -y qemu-utils); fails without them.
 */
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemoryExport } from './fixtures/memory-export.js';
import { startTestServer, type TestServer } from './fixtures/test-server.js';
import { requireTool, runToolOk } from '../support/tools.js';

const MiB = 1024 * 1024;

describe('qemu-img and qemu-io against the server', () => {
  let server: TestServer;
  let directory: string;
  let image: Buffer;
  const disk = new MemoryExport({ name: 'disk', size: 32 * MiB });
  const scratch = new MemoryExport({ name: 'scratch', size: 8 * MiB, capabilities: { minimumBlockSize: 512 } });

  before(async () => {
    requireTool('qemu-img');
    requireTool('qemu-io');
    directory = mkdtempSync(join(tmpdir(), 'vdmap-qemu-'));
    // 32 MiB: random data in the first 3 MiB and at 20 MiB, zeroes elsewhere (holes for convert to skip).
    image = Buffer.alloc(32 * MiB);
    randomFillSync(image, 0, 3 * MiB);
    randomFillSync(image, 20 * MiB, MiB);
    writeFileSync(join(directory, 'source.raw'), image);
    server = await startTestServer([disk, scratch]);
  });
  after(async () => {
    await server?.stop();
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
    assert.equal(disk.outstandingReadBuffers, 0);
  });

  it('reports the export size when asked qemu-img info', async () => {
    const info = JSON.parse(await runToolOk('qemu-img', ['info', '--output=json', server.unixUri('disk')])) as { 'virtual-size': number };
    assert.equal(info['virtual-size'], 32 * MiB);
  });

  it('holds an identical copy after qemu-img convert, as qemu-img compare confirms', async () => {
    const source = join(directory, 'source.raw');
    await runToolOk('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', source, server.unixUri('disk')], 120_000);
    assert.ok(Buffer.from(disk.store.buffer, disk.store.byteOffset, disk.store.length).equals(image));
    const out = await runToolOk('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', source, server.tcpUri('disk')], 120_000);
    assert.match(out, /Images are identical/);
  });

  it('verifies written patterns, zeroes and discards with qemu-io', async () => {
    const out = await runToolOk('qemu-io', [
      '-f', 'raw',
      '-c', 'write -P 0xa5 0 1M',
      '-c', 'write -P 0x5a 1M 64k',
      '-c', 'write -z 2M 512k',
      '-c', 'discard 4M 1M',
      '-c', 'flush',
      '-c', 'read -P 0xa5 0 1M',
      '-c', 'read -P 0x5a 1M 64k',
      '-c', 'read -P 0 2M 512k',
      '-c', 'read -P 0xa5 4096 512',
      server.unixUri('scratch'),
    ]);
    assert.doesNotMatch(out, /fail|error/i);
    assert.equal(out.match(/^read /gm)?.length, 4);
    assert.equal(scratch.store[MiB + 10], 0x5a);
    assert.equal(scratch.isHole(4 * MiB), true);
  });
});

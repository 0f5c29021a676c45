/**
 * Proves: nbdinfo (libnbd, a client nobody here wrote) lists, describes and maps exports served by NbdServer:
 * names and descriptions, size, flags and block sizes as the export's capabilities say, base:allocation,
 * and a map of holes and data that matches the MemoryExport's 64 KiB page map, over Unix and TCP.
 * Oracle: the MemoryExport's capabilities and page map; nbdinfo's --json and --map output.
 * Needs: nbdinfo (apt-get install -y libnbd-bin); fails without it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryExport, PAGE_SIZE } from './fixtures/memory-export.js';
import { startTestServer, type TestServer } from './fixtures/test-server.js';
import { requireTool, runToolOk } from '../support/tools.js';

const MiB = 1024 * 1024;

describe('nbdinfo against the server', () => {
  let server: TestServer;
  const disk = new MemoryExport({ name: 'disk', size: 16 * MiB, description: 'sixteen mebibytes' });
  const ro = new MemoryExport({ name: 'ro', size: 4 * MiB, capabilities: { readOnly: true, minimumBlockSize: 512 } });

  before(async () => {
    requireTool('nbdinfo');
    // Data in pages 0-1 and 8, holes elsewhere.
    for (const page of [0, 1, 8]) {
      disk.store.fill(0x11, page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
      disk.allocated[page] = 1;
    }
    server = await startTestServer([disk, ro]);
  });
  after(async () => {
    await server?.stop();
  });

  it('lists every export with its description when run with --list', async () => {
    const out = await runToolOk('nbdinfo', ['--list', server.unixUri('')]);
    assert.match(out, /export="disk":\s*\n\s*description: sixteen mebibytes/);
    assert.match(out, /export="ro":/);
  });

  it('lists a hundred exports with --list under the default option limits', async () => {
    const many = Array.from({ length: 100 }, (_, i) => new MemoryExport({ name: `vd${i}`, size: 64 * 1024 }));
    const crowded = await startTestServer(many);
    try {
      const out = await runToolOk('nbdinfo', ['--list', crowded.unixUri('')]);
      assert.equal(out.match(/^export="vd\d+":/gm)?.length, 100);
    } finally {
      await crowded.stop();
    }
  });

  it('reports size, flags, block sizes and base:allocation as the capabilities say when run with --json', async () => {
    const info = JSON.parse(await runToolOk('nbdinfo', ['--json', server.unixUri('ro')])) as { structured: boolean; exports: Record<string, unknown>[] };
    assert.equal(info.structured, true);
    const ro0 = info.exports[0];
    assert.equal(ro0['export-size'], 4 * MiB);
    assert.equal(ro0.is_read_only, true);
    assert.equal(ro0.can_trim, false);
    assert.equal(ro0.can_zero, false);
    assert.equal(ro0.can_flush, true);
    assert.equal(ro0.can_multi_conn, true);
    assert.equal(ro0.block_size_minimum, 512);
    assert.equal(ro0.block_size_preferred, 4096);
    assert.equal(ro0.block_size_maximum, 32 * MiB);
    assert.deepEqual(ro0.contexts, ['base:allocation']);
  });

  it('maps holes and data exactly where the export has them when run with --map', async () => {
    const out = await runToolOk('nbdinfo', ['--map', '--totals', server.unixUri('disk')]);
    const map = await runToolOk('nbdinfo', ['--map', server.unixUri('disk')]);
    const runs = map.trim().split('\n').map((line) => line.trim().split(/\s+/).slice(0, 3).map(Number));
    assert.deepEqual(runs, [
      [0, 2 * PAGE_SIZE, 0],
      [2 * PAGE_SIZE, 6 * PAGE_SIZE, 3],
      [8 * PAGE_SIZE, PAGE_SIZE, 0],
      [9 * PAGE_SIZE, 16 * MiB - 9 * PAGE_SIZE, 3],
    ]);
    assert.match(out, /data/);
  });

  it('gives the same map over TCP', async () => {
    const unix = await runToolOk('nbdinfo', ['--map', server.unixUri('disk')]);
    const tcp = await runToolOk('nbdinfo', ['--map', server.tcpUri('disk')]);
    assert.equal(tcp, unix);
  });
});

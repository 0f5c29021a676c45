/**
 * Proves: serveConnection runs inside a worker thread (invariant C5: no main-thread assumptions): a worker
 * accepts a socket, serves nbdsh reads from it, and shuts down gracefully on request.
 * Oracle: the bytes nbdsh reads (set by the worker's MemoryExport) and the worker's own report after shutdown.
 * Needs: nbdsh (apt-get install -y python3-libnbd); fails without it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { requireTool, runToolOk } from '../support/tools.js';

describe('serveConnection in a worker thread', () => {
  it('serves reads from a worker and reports a clean shutdown', async () => {
    requireTool('nbdsh');
    const directory = mkdtempSync(join(tmpdir(), 'vdmap-worker-'));
    const path = join(directory, 'nbd.sock');
    const worker = new Worker(new URL('./fixtures/worker-server.js', import.meta.url), { workerData: { path } });
    try {
      const [ready] = (await once(worker, 'message')) as [string];
      assert.equal(ready, 'listening');
      const out = await runToolOk('nbdsh', ['-u', `nbd+unix:///disk?socket=${path}`, '-c', 'print(h.pread(4, 0).hex(), h.get_size())']);
      assert.equal(out.trim(), `77777777 ${4 * 1024 * 1024}`);
      worker.postMessage('stop');
      const [report] = (await once(worker, 'message')) as [{ stopped: boolean; outstandingReadBuffers: number; reads: number }];
      assert.deepEqual(report, { stopped: true, outstandingReadBuffers: 0, reads: report.reads });
      assert.ok(report.reads >= 1);
    } finally {
      await worker.terminate();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

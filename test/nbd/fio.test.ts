/**
 * Proves: fio's nbd engine (libnbd, a client nobody here wrote) runs a short random-write job with
 * crc32c verification against NbdServer at queue depth 16 and finds no corruption: replies arrive out of
 * order, many requests per tick, and every block reads back as written.
 * Oracle: fio's own --verify=crc32c check (a mismatch fails the job with a nonzero exit code).
 * Needs: fio with the nbd engine (apt-get install -y fio); fails without it. Bounded: a few seconds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryExport } from './fixtures/memory-export.js';
import { startTestServer, type TestServer } from './fixtures/test-server.js';
import { requireTool, runTool } from '../support/tools.js';

describe('fio against the server', () => {
  let server: TestServer;
  const disk = new MemoryExport({ name: 'disk', size: 64 * 1024 * 1024, completeInReverse: true });

  before(async () => {
    requireTool('fio');
    server = await startTestServer([disk]);
  });
  after(async () => {
    await server?.stop();
    assert.equal(disk.outstandingReadBuffers, 0);
  });

  for (const engineJob of [
    { name: 'randwrite', args: ['--rw=randwrite', '--bsrange=4k-64k'] },
    { name: 'readwrite', args: ['--rw=randrw', '--bs=16k'] },
  ]) {
    it(`verifies every block with crc32c after a ${engineJob.name} job at queue depth 16`, async () => {
      const result = await runTool('fio', [
        '--name=verify', '--ioengine=nbd', `--uri=${server.unixUri('disk')}`,
        ...engineJob.args, '--iodepth=16', '--size=32m', '--verify=crc32c', '--do_verify=1',
        '--verify_fatal=1', '--verify_state_save=0', '--runtime=10', '--output-format=json',
      ], 120_000);
      assert.equal(result.code, 0, `fio failed\n${result.stderr}\n${result.stdout.slice(0, 2000)}`);
      const report = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { jobs: { error: number; write: { io_bytes: number }; read: { io_bytes: number } }[] };
      assert.equal(report.jobs[0].error, 0);
      assert.ok(report.jobs[0].write.io_bytes > 0);
      assert.ok(report.jobs[0].read.io_bytes > 0, 'the verify phase read the data back');
    });
  }
});

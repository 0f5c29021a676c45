/**
 * Proves: libnbd's Python shell (nbdsh, a client nobody here wrote) can pread, pwrite, flush, trim, zero,
 * cache and block_status against NbdServer with structured replies on and off, and that errors reach it
 * with the right errno and, with structured replies, the "CODE: message" text.
 * Oracle: the MemoryExport's bytes and page map, and errno names as libnbd reports them.
 * Needs: nbdsh (apt-get install -y python3-libnbd); fails without it.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { MemoryExport, PAGE_SIZE } from './fixtures/memory-export.js';
import { startTestServer, type TestServer } from './fixtures/test-server.js';
import { requireTool, runTool } from '../support/tools.js';

const MiB = 1024 * 1024;

describe('nbdsh against the server', () => {
  let server: TestServer;
  const disk = new MemoryExport({ name: 'disk', size: 8 * MiB });
  const ro = new MemoryExport({ name: 'ro', size: MiB, capabilities: { readOnly: true } });

  before(async () => {
    requireTool('nbdsh');
    server = await startTestServer([disk, ro]);
  });
  afterEach(() => disk.injectFailure(undefined));
  after(async () => {
    await server?.stop();
    assert.equal(disk.outstandingReadBuffers, 0);
  });

  /** Runs a Python snippet with `h` connected to `name`; `structured` chooses structured replies. */
  async function python(name: string, body: string, structured = true, debug = false): Promise<{ stdout: string; stderr: string }> {
    const script = [
      'import nbd, errno',
      `h.set_request_structured_replies(${structured ? 'True' : 'False'})`,
      'h.set_strict_mode(0)',
      'h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)',
      `h.set_debug(${debug ? 'True' : 'False'})`,
      `h.connect_uri(${JSON.stringify(server.unixUri(name))})`,
      body,
      'h.shutdown()',
    ].join('\n');
    const result = await runTool('nbdsh', ['-c', script]);
    assert.equal(result.code, 0, `nbdsh failed\n${result.stdout}\n${result.stderr.split('\n').slice(-15).join('\n')}`);
    return result;
  }

  for (const structured of [true, false]) {
    it(`writes and reads back a pattern with structured replies ${structured ? 'on' : 'off'}`, async () => {
      const { stdout } = await python('disk', [
        `assert h.get_structured_replies_negotiated() == ${structured ? 'True' : 'False'}`,
        'data = bytes(range(256)) * 64',
        'h.pwrite(data, 1048576)',
        'h.flush()',
        'assert h.pread(len(data), 1048576) == data',
        'h.pwrite(b"\\xee" * 4096, 0, nbd.CMD_FLAG_FUA)',
        'print("ok", h.pread(4, 0).hex())',
      ].join('\n'), structured);
      assert.match(stdout, /ok eeeeeeee/);
      assert.equal(disk.store[1048576 + 300], 300 % 256);
      assert.equal(disk.lastFua, true);
    });
  }

  it('trims into holes and zeroes that read back as zero, as block_status shows', async () => {
    const { stdout } = await python('disk', [
      `h.pwrite(b"\\x01" * ${4 * PAGE_SIZE}, ${2 * MiB})`,
      `h.trim(${2 * PAGE_SIZE}, ${2 * MiB})`,
      `h.zero(4096, ${2 * MiB + 2 * PAGE_SIZE + 100}, nbd.CMD_FLAG_NO_HOLE)`,
      `assert h.pread(4096, ${2 * MiB + 2 * PAGE_SIZE + 100}) == bytes(4096)`,
      'entries = []',
      'def collect(context, offset, extents, err):',
      '    entries.extend(extents)',
      '    return 0',
      `h.block_status(${4 * PAGE_SIZE}, ${2 * MiB}, collect)`,
      'print("extents", entries[:6])',
      `h.cache(65536, 0)`,
    ].join('\n'));
    const match = /extents \[([^\]]*)\]/.exec(stdout);
    assert.ok(match, stdout);
    const values = match[1].split(',').map((v) => Number(v.trim()));
    assert.deepEqual(values.slice(0, 4), [2 * PAGE_SIZE, 3, 2 * PAGE_SIZE, 0]);
    assert.equal(disk.isHole(2 * MiB), true);
    assert.equal(disk.isHole(2 * MiB + 2 * PAGE_SIZE), false);
    assert.ok(disk.calls.cache > 0);
  });

  it('reports EINVAL past the end and EPERM on a read-only export, with the code in the message', async () => {
    const { stdout, stderr } = await python('ro', [
      'for call in (lambda: h.pread(512, 1048576), lambda: h.pwrite(b"x" * 512, 0)):',
      '    try:',
      '        call()',
      '        print("no error")',
      '    except nbd.Error as e:',
      '        print("errno", e.errno)',
    ].join('\n'), true, true);
    assert.match(stdout, /errno EINVAL\nerrno EPERM/);
    assert.match(stderr, /structured error server message: VDM_IO_OUT_OF_RANGE: /);
    assert.match(stderr, /structured error server message: VDM_IO_READ_ONLY: /);
  });

  for (const structured of [true, false]) {
    it(`reports the export's failure as EIO with structured replies ${structured ? 'on' : 'off'}`, async () => {
      disk.injectFailure({ operation: 'read', code: 'VDM_IO_DEVICE', message: 'medium error' });
      const { stdout, stderr } = await python('disk', [
        'try:',
        '    h.pread(4096, 0)',
        '    print("no error")',
        'except nbd.Error as e:',
        '    print("errno", e.errno)',
      ].join('\n'), structured, true);
      assert.match(stdout, /errno EIO/);
      if (structured) assert.match(stderr, /structured error server message: VDM_IO_DEVICE: medium error/);
    });
  }

  it('reports the failing offset through pread_structured when the export names one', async () => {
    disk.injectFailure({ operation: 'read', code: 'VDM_IO_DEVICE', offset: 8192 });
    const { stdout } = await python('disk', [
      'seen = []',
      'def chunk(buf, offset, status, err):',
      '    seen.append((offset, status, err.value))',
      '    return 0',
      'try:',
      '    h.pread_structured(16384, 4096, chunk)',
      'except nbd.Error as e:',
      '    print("errno", e.errno)',
      'print("seen", seen)',
    ].join('\n'));
    assert.match(stdout, /errno EIO/);
    assert.match(stdout, /seen \[\(8192, 3, 5\)\]/); // LIBNBD_READ_ERROR = 3, EIO = 5
  });
});

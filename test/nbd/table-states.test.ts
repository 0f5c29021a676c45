/**
 * Proves: the table's entry states reach a real NBD client (nbdsh, libnbd) through the agent's own serving stack
 * (AgentDisk, I/O worker, NbdListener, ring transport): a read of an INVALID extent is held without delaying
 * another read on the same connection, faults once, and completes with the data once the entry is fixed; left
 * unfixed it fails with EIO and the VDM_STATE_INVALID_TIMEOUT message.
 * Oracle: the order in which libnbd saw its commands complete, the bytes it read, the errno and server message
 * it reports, and the faults the worker pool forwarded.
 * Needs: nbdsh (apt-get install -y python3-libnbd); fails without it.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentDisk } from '../../src/agent/agent-disk.js';
import type { Fault } from '../../src/agent/faults.js';
import { NbdListener } from '../../src/agent/nbd-listener.js';
import { IoWorkerPool } from '../../src/agent/workers/io-worker-pool.js';
import { emptyDocument, ExtentState, type TableDocument } from '../../src/table/document.js';
import { cleanupDevices, sparseFile, tempDir } from '../support/devices.js';
import { requireTool, runTool } from '../support/tools.js';
import { until } from '../support/wait.js';

const extentSize = 1024 * 1024;
const extentCount = 4;
const holdTimeoutMs = 1500;

/** Extent i on physical extent i; `invalid` lists the extents marked INVALID. */
function documentWith(epoch: number, invalid: number[]): TableDocument {
  const document = emptyDocument('vd0', epoch, extentSize, extentCount);
  document.devices = ['d0'];
  for (let i = 0; i < extentCount; i++) {
    document.device[i] = 0;
    document.physicalExtent[i] = i;
    document.state[i] = invalid.includes(i) ? ExtentState.Invalid : ExtentState.Valid;
  }
  return document;
}

describe('table states seen by an NBD client', () => {
  let disk: AgentDisk;
  let pool: IoWorkerPool;
  let listener: NbdListener;
  let socketPath: string;
  const faults: Fault[] = [];
  let epoch = 1;

  before(async () => {
    requireTool('nbdsh');
    const device = sparseFile(extentSize * extentCount);
    const fd = openSync(device, 'r+');
    for (let i = 0; i < extentCount; i++) writeSync(fd, Buffer.alloc(4096, 0x10 + i), 0, 4096, i * extentSize);
    closeSync(fd);
    disk = new AgentDisk({ name: 'vd0', size: extentSize * extentCount, extentCapacity: extentCount, readerSlots: 2 });
    disk.attachDevice('d0', device);
    await disk.applyDocument(documentWith(epoch, [2]));
    pool = new IoWorkerPool({ threads: 1, holdTimeoutMs, onFault: (fault) => faults.push(fault) });
    await pool.start();
    pool.attach(disk);
    socketPath = join(tempDir(), 'nbd.sock');
    listener = new NbdListener(pool, { tcp: false, unixPath: socketPath });
    await listener.listen();
  });

  after(async () => {
    await listener?.close();
    await pool?.close();
    disk?.close();
    cleanupDevices();
  });

  /** Runs nbdsh with `h` connected to vd0; the script prints what the test checks. */
  async function nbdsh(body: string[]): Promise<{ stdout: string; stderr: string }> {
    const script = ['import nbd, errno', 'h.set_debug(True)', `h.connect_uri("nbd+unix:///vd0?socket=${socketPath}")`, ...body, 'h.shutdown()'].join('\n');
    const result = await runTool('nbdsh', ['-c', script]);
    assert.equal(result.code, 0, `nbdsh failed\n${result.stdout}\n${result.stderr.split('\n').slice(-15).join('\n')}`);
    return result;
  }

  /** Python: issues a held read of extent 2 and a read of extent 0, and records the order they complete in. */
  const raceHeldAgainstFree = [
    'order = []',
    'held = nbd.Buffer(4096)',
    'free = nbd.Buffer(4096)',
    `c_held = h.aio_pread(held, ${2 * extentSize}, completion=lambda err: order.append("held") or 0)`,
    'c_free = h.aio_pread(free, 0, completion=lambda err: order.append("free") or 0)',
    'while h.aio_in_flight() > 0:',
    '    h.poll(-1)',
    'print("order", ",".join(order))',
    'print("free", free.to_bytearray()[:2].hex())',
  ];

  it('holds a read of an INVALID extent without delaying another read, and completes it once the entry is fixed', async () => {
    const faultsBefore = faults.length;
    const fixed = (async () => {
      await until(() => faults.length > faultsBefore, 'the fault of the held read');
      await disk.applyDocument(documentWith(++epoch, []));
    })();
    const [{ stdout }] = await Promise.all([
      nbdsh([...raceHeldAgainstFree, 'h.aio_command_completed(c_held)', 'print("held", held.to_bytearray()[:2].hex())']),
      fixed,
    ]);
    assert.match(stdout, /^order free,held$/m, 'the free read completes first, the held one after the fix');
    assert.match(stdout, /^free 1010$/m);
    assert.match(stdout, /^held 1212$/m);
    const newFaults = faults.slice(faultsBefore);
    assert.equal(newFaults.length, 1, 'one fault for the held read');
    assert.deepEqual({ disk: newFaults[0].disk, extent: newFaults[0].extent, kind: newFaults[0].kind }, { disk: 'vd0', extent: 2, kind: 'invalid' });
  });

  it('fails a read held past the hold timeout with EIO and the VDM_STATE_INVALID_TIMEOUT message', async () => {
    await disk.applyDocument(documentWith(++epoch, [2]));
    const { stdout, stderr } = await nbdsh([
      ...raceHeldAgainstFree,
      'try:',
      '    h.aio_command_completed(c_held)',
      '    print("held succeeded")',
      'except nbd.Error as error:',
      '    print("held", error.errno)',
    ]);
    assert.match(stdout, /^order free,held$/m);
    assert.match(stdout, /^held EIO$/m);
    assert.match(stderr, /structured error server message: VDM_STATE_INVALID_TIMEOUT: extent 2 of vd0/);
  });
});

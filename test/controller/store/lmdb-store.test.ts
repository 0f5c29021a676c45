/**
 * Proves src/controller/store/lmdb-store.ts against the store.ts contract on a real LMDB environment in a
 * temporary directory: records round-trip and survive close/reopen; an acknowledged commit survives SIGKILL of
 * the writing process (ST1, with a real child process); epochs grow, are pruned to keepVersions and stay
 * strictly increasing under concurrent commits (ST3); an invalid table changes nothing (ST4); in-use devices
 * are protected and removals cascade (ST5); bad records are refused in and out (ST6); transactions are atomic,
 * see their own writes and rerun on conflict (ST2). Oracle: what a fresh reader (often a reopened store) sees.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { LmdbStore } from '../../../src/controller/store/lmdb-store.js';
import type { AgentRecord, DeviceRecord, DiskRecord } from '../../../src/controller/store/store.js';
import { VdmapError } from '../../../src/errors/error.js';
import { emptyDocument, ExtentState, NoDevice, type TableDocument } from '../../../src/table/document.js';
import { issueCredential } from '../../../src/wire/auth.js';

const MiB = 1 << 20;
const deviceA: DeviceRecord = { id: 'dev-a', size: 1024 * MiB, logicalBlockSize: 512, paths: [{ agent: 'host-1', path: '/dev/sdb' }] };
const deviceB: DeviceRecord = { id: 'dev-b', size: 1024 * MiB, logicalBlockSize: 4096, paths: [] };
const disk: DiskRecord = { name: 'vol1', size: 16 * MiB, extentSize: MiB };
const agent: AgentRecord = { name: 'host-1', credential: issueCredential(), enrolledAt: 1_700_000_000_000, lastSeen: null, applied: [] };

/** 16 extents: 0-7 on dev-a at `base`.., 8-15 ZERO. */
function table(base = 0, devices = ['dev-a']): TableDocument {
  const doc = emptyDocument('vol1', 0, MiB, 16);
  doc.devices = devices;
  for (let extent = 0; extent < 16; extent++) {
    if (extent < 8) [doc.device[extent], doc.physicalExtent[extent], doc.state[extent]] = [0, base + extent, 0];
    else [doc.device[extent], doc.state[extent]] = [NoDevice, ExtentState.Zero];
  }
  return doc;
}

async function rejection(promise: Promise<unknown>): Promise<VdmapError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof VdmapError, `expected a VdmapError, got ${String(error)}`);
    return error;
  }
  return assert.fail('expected a rejection');
}

describe('LmdbStore', () => {
  let directory: string;
  let store: LmdbStore;

  beforeEach(async () => {
    directory = mkdtempSync(join(tmpdir(), 'vdmap-store-'));
    store = await LmdbStore.open(join(directory, 'store'), { keepVersions: 3 });
  });

  afterEach(async () => {
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  async function reopen(): Promise<LmdbStore> {
    await store.close();
    store = await LmdbStore.open(join(directory, 'store'), { keepVersions: 3 });
    return store;
  }

  async function populate(): Promise<void> {
    await store.putDevice(deviceA);
    await store.putDevice(deviceB);
    await store.putDisk(disk);
    await store.putAgent(agent);
    await store.attach('vol1', 'host-1');
  }

  it('returns the records it stored', async () => {
    await populate();
    assert.deepEqual(await store.getDevice('dev-a'), deviceA);
    assert.deepEqual(await store.listDevices(), [deviceA, deviceB]);
    assert.deepEqual(await store.getDisk('vol1'), disk);
    assert.deepEqual(await store.getAgent('host-1'), agent);
    assert.deepEqual(await store.listAttachments({ disk: 'vol1' }), [{ disk: 'vol1', agent: 'host-1' }]);
    assert.equal(await store.getDevice('nope'), undefined);
  });

  it('keeps everything across close and reopen', async () => {
    await populate();
    await store.commitTable('vol1', table());
    await reopen();
    assert.deepEqual(await store.listDevices(), [deviceA, deviceB]);
    assert.deepEqual(await store.listDisks(), [disk]);
    assert.deepEqual(await store.listAgents(), [agent]);
    assert.deepEqual(await store.listAttachments(), [{ disk: 'vol1', agent: 'host-1' }]);
    assert.deepEqual(await store.getTable('vol1'), { ...table(), epoch: 1 });
  });

  it('creates its directory and files owner-only', async () => {
    assert.equal(statSync(join(directory, 'store')).mode & 0o777, 0o700);
    assert.equal(statSync(join(directory, 'store', 'data.mdb')).mode & 0o777, 0o600);
  });

  it('ST1: keeps every acknowledged commit of a writer killed with SIGKILL', async () => {
    await store.close();
    const child = fileURLToPath(new URL('./fixtures/child-writer.js', import.meta.url));
    const path = join(directory, 'crash');
    const writer = spawn(process.execPath, [child, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let lastAcked = 0;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      writer.on('error', reject);
      writer.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited ${code} ${signal}`))));
      writer.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const acks = [...output.matchAll(/acked (\d+)\n/g)];
        if (acks.length === 0) return;
        lastAcked = Number(acks[acks.length - 1][1]);
        if (lastAcked >= 20) writer.kill('SIGKILL');
      });
    });
    store = await LmdbStore.open(path, { keepVersions: 100_000 });
    const head = await store.getTableHead('vol1');
    assert.ok(head !== undefined && head.epoch >= lastAcked, `acknowledged ${lastAcked}, found ${head?.epoch}`);
    for (let epoch = 1; epoch <= lastAcked; epoch++) {
      const doc = await store.getTable('vol1', epoch);
      assert.ok(doc !== undefined, `acknowledged epoch ${epoch} is missing`);
      assert.equal(doc.physicalExtent[(epoch - 1) % 64], epoch - 1);
    }
  });

  it('ST1: syncs the file to disk before each write is acknowledged (traced with strace)', async () => {
    const strace = spawnSync('strace', ['-V']);
    assert.ok(strace.error === undefined, 'strace is missing: apt-get install -y strace');
    const child = fileURLToPath(new URL('./fixtures/sync-writer.js', import.meta.url));
    const trace = join(directory, 'trace.txt');
    const run = spawnSync('strace', ['-f', '-e', 'trace=fsync,fdatasync,msync,write', '-o', trace,
      process.execPath, child, join(directory, 'traced')], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const lines = readFileSync(trace, 'utf8').split('\n');
    let syncedSinceAck = false;
    let acks = 0;
    for (const line of lines) {
      if (/\b(fsync|fdatasync|msync)\(.*= 0/.test(line)) syncedSinceAck = true;
      if (/write\(1, "ACK \d/.test(line)) {
        assert.ok(syncedSinceAck, `ACK ${acks + 1} was printed before any sync after the previous one`);
        syncedSinceAck = false;
        acks++;
      }
    }
    assert.equal(acks, 3);
  });

  it('ST3: commits tables as epochs 1, 2, 3 and reads back the latest or any kept one', async () => {
    await populate();
    assert.equal(await store.commitTable('vol1', table(0)), 1);
    assert.equal(await store.commitTable('vol1', table(100)), 2);
    assert.equal(await store.commitTable('vol1', table(200)), 3);
    assert.equal((await store.getTable('vol1'))?.physicalExtent[0], 200);
    assert.equal((await store.getTable('vol1', 2))?.physicalExtent[0], 100);
    assert.deepEqual(await store.getTableHead('vol1'), { disk: 'vol1', epoch: 3, devices: ['dev-a'], epochs: [1, 2, 3] });
  });

  it('ST3: prunes versions beyond keepVersions', async () => {
    await populate();
    for (let round = 0; round < 5; round++) await store.commitTable('vol1', table(round * 10));
    assert.deepEqual((await store.getTableHead('vol1'))?.epochs, [3, 4, 5]);
    assert.equal(await store.getTable('vol1', 2), undefined);
    assert.equal((await store.getTable('vol1', 3))?.physicalExtent[0], 20);
    await reopen();
    assert.equal(await store.getTable('vol1', 1), undefined, 'pruned versions stay gone');
  });

  it('ST3: gives concurrent commits distinct, strictly increasing epochs', async () => {
    await populate();
    const epochs = await Promise.all(Array.from({ length: 20 }, (_v, round) => store.commitTable('vol1', table(round * 10))));
    assert.deepEqual([...epochs].sort((a, b) => a - b), Array.from({ length: 20 }, (_v, index) => index + 1));
    for (const [round, epoch] of epochs.entries()) {
      if (epoch > 17) assert.equal((await store.getTable('vol1', epoch))?.physicalExtent[0], round * 10, 'each epoch holds its own table');
    }
    assert.equal((await store.getTableHead('vol1'))?.epoch, 20);
  });

  it('ST4: refuses an invalid table, names every bad entry and changes nothing', async () => {
    await populate();
    await store.commitTable('vol1', table());
    const bad = table();
    bad.physicalExtent[3] = 1;
    bad.physicalExtent[5] = 4096;
    const error = await rejection(store.commitTable('vol1', bad));
    assert.equal(error.code, 'VDM_TABLE_INVALID');
    assert.deepEqual((error.details?.problems as { extent: number; code: string }[]).map((p) => [p.extent, p.code]),
      [[1, 'VDM_TABLE_OVERLAP'], [3, 'VDM_TABLE_OVERLAP'], [5, 'VDM_TABLE_OUT_OF_BOUNDS']]);
    assert.equal((await store.getTableHead('vol1'))?.epoch, 1);
  });

  it('ST4: refuses a table on an unregistered device', async () => {
    await populate();
    const error = await rejection(store.commitTable('vol1', table(0, ['dev-zz'])));
    assert.equal(error.code, 'VDM_TABLE_INVALID');
    assert.equal((error.details?.countsByCode as Record<string, number>).VDM_TABLE_UNKNOWN_DEVICE, 9);
  });

  it('ST4: refuses a table whose size does not match the disk', async () => {
    await populate();
    await store.putDisk({ ...disk, size: 32 * MiB });
    assert.equal((await rejection(store.commitTable('vol1', table()))).code, 'VDM_TABLE_INVALID');
  });

  it('refuses a commit built on another epoch with VDM_TABLE_EPOCH_STALE', async () => {
    await populate();
    await store.commitTable('vol1', table(), { expectedEpoch: 0 });
    const error = await rejection(store.commitTable('vol1', table(50), { expectedEpoch: 0 }));
    assert.equal(error.code, 'VDM_TABLE_EPOCH_STALE');
    assert.equal(error.details?.epoch, 1);
  });

  it('refuses a table for a disk that does not exist with VDM_STORE_NOT_FOUND', async () => {
    assert.equal((await rejection(store.commitTable('vol1', table()))).code, 'VDM_STORE_NOT_FOUND');
  });

  it('ST2: writes nothing when the transaction throws', async () => {
    await populate();
    const error = await rejection(store.transaction(async (tx) => {
      await tx.putDevice({ ...deviceA, id: 'dev-c' });
      await tx.removeAgent('host-1');
      throw new VdmapError('VDM_INTERNAL', 'changed my mind');
    }));
    assert.equal(error.message, 'changed my mind');
    assert.equal(await store.getDevice('dev-c'), undefined);
    assert.deepEqual(await store.getAgent('host-1'), agent);
  });

  it('ST2: sees its own writes, so a disk and its first table commit together', async () => {
    await store.putDevice(deviceA);
    const epoch = await store.transaction(async (tx) => {
      await tx.putDisk(disk);
      assert.deepEqual(await tx.getDisk('vol1'), disk);
      return tx.commitTable('vol1', table());
    });
    assert.equal(epoch, 1);
    assert.deepEqual(await store.getTable('vol1'), { ...table(), epoch: 1 });
  });

  it('ST2: reruns a transaction whose reads changed before it committed', async () => {
    await populate();
    let attempts = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const slow = store.transaction(async (tx) => {
      attempts++;
      const agentNow = await tx.getAgent('host-1');
      await gate;
      await tx.putAgent({ ...(agentNow as AgentRecord), lastSeen: (agentNow?.lastSeen ?? 0) + 1 });
    });
    await store.putAgent({ ...agent, lastSeen: 100 });
    release();
    await slow;
    assert.equal(attempts, 2);
    assert.equal((await store.getAgent('host-1'))?.lastSeen, 101, 'the rerun saw the concurrent write');
  });

  it('ST2: does not pass on a refusal that was based on reads a concurrent commit had already changed', async () => {
    await populate();
    await store.commitTable('vol1', table());
    let attempts = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const guarded = store.transaction(async (tx) => {
      attempts++;
      const head = await tx.getTableHead('vol1');
      await gate;
      if (head?.epoch === 1) throw new VdmapError('VDM_TABLE_EPOCH_STALE', 'decided on epoch 1');
      return head?.epoch;
    });
    await store.commitTable('vol1', table(100));
    release();
    assert.equal(await guarded, 2);
    assert.equal(attempts, 2);
  });

  it('ST5: refuses to remove or resize a device a table uses, and allows a path change', async () => {
    await populate();
    await store.commitTable('vol1', table());
    const removal = await rejection(store.removeDevice('dev-a'));
    assert.equal(removal.code, 'VDM_STORE_IN_USE');
    assert.deepEqual(removal.details?.disks, ['vol1']);
    assert.equal((await rejection(store.putDevice({ ...deviceA, size: 512 * MiB }))).code, 'VDM_STORE_IN_USE');
    await store.putDevice({ ...deviceA, paths: [{ agent: 'host-1', path: '/dev/sdc' }] });
    assert.equal(await store.removeDevice('dev-b'), true);
  });

  it('ST5: refuses to remove a disk attached to an agent with VDM_STORE_IN_USE naming the agent, and changes nothing', async () => {
    await populate();
    await store.commitTable('vol1', table());
    const refusal = await rejection(store.removeDisk('vol1'));
    assert.equal(refusal.code, 'VDM_STORE_IN_USE');
    assert.deepEqual(refusal.details?.agents, ['host-1']);
    await reopen();
    assert.deepEqual(await store.getDisk('vol1'), disk);
    assert.equal((await store.getTableHead('vol1'))?.epoch, 1);
    assert.deepEqual(await store.listAttachments(), [{ disk: 'vol1', agent: 'host-1' }]);
  });

  it('ST5: refuses to remove a disk attached in a transaction that committed after the removal read', async () => {
    await populate();
    await store.detach('vol1', 'host-1');
    let raced = false;
    const refusal = await rejection(store.transaction(async (tx) => {
      const removed = await tx.removeDisk('vol1');
      if (!raced) { raced = true; await store.attach('vol1', 'host-1'); } // commits between the read and this commit
      return removed;
    }));
    assert.equal(refusal.code, 'VDM_STORE_IN_USE');
    assert.deepEqual(await store.listDisks(), [disk]);
  });

  it('ST5: removing a detached disk removes its versions', async () => {
    await populate();
    await store.commitTable('vol1', table());
    await store.detach('vol1', 'host-1');
    assert.equal(await store.removeDisk('vol1'), true);
    assert.equal(await store.getTableHead('vol1'), undefined);
    assert.equal(await store.getTable('vol1', 1), undefined);
    assert.equal(await store.removeDevice('dev-a'), true, 'the device is free again');
    await store.putDisk(disk);
    assert.equal(await store.commitTable('vol1', table(0, ['dev-b'])), 1, 'a recreated disk starts again at epoch 1');
  });

  it('ST5: removing an agent removes its attachments', async () => {
    await populate();
    assert.equal(await store.removeAgent('host-1'), true);
    assert.deepEqual(await store.listAttachments({ agent: 'host-1' }), []);
    assert.equal(await store.removeAgent('host-1'), false);
  });

  it('refuses to attach a disk or agent that does not exist', async () => {
    await populate();
    assert.equal((await rejection(store.attach('vol9', 'host-1'))).code, 'VDM_STORE_NOT_FOUND');
    assert.equal((await rejection(store.attach('vol1', 'host-9'))).code, 'VDM_STORE_NOT_FOUND');
    assert.equal(await store.detach('vol1', 'host-1'), true);
    assert.equal(await store.detach('vol1', 'host-1'), false);
  });

  for (const [description, write] of [
    ['a device name with a slash', (s: LmdbStore) => s.putDevice({ ...deviceA, id: 'dev/a' })],
    ['a device size that is not a multiple of its block size', (s: LmdbStore) => s.putDevice({ ...deviceA, size: 1000 })],
    ['a disk extent size that is not a power of two', (s: LmdbStore) => s.putDisk({ ...disk, extentSize: 3 * MiB })],
    ['a credential of 16 bytes', (s: LmdbStore) => s.putAgent({ ...agent, credential: new Uint8Array(16) })],
  ] as const) {
    it(`ST6: refuses ${description} with VDM_STORE_INVALID_RECORD`, async () => {
      assert.equal((await rejection(write(store))).code, 'VDM_STORE_INVALID_RECORD');
    });
  }

  it('ST6: reports a stored record that does not decode as VDM_STORE_CORRUPT', async () => {
    await populate();
    await store.close();
    const raw = open({ path: join(directory, 'store'), encoding: 'binary', overlappingSync: false, maxDbs: 16 });
    await raw.openDB('devices', { encoding: 'binary' }).put('dev-a', Buffer.from([0xff, 0x00, 0x13]));
    await raw.close();
    store = await LmdbStore.open(join(directory, 'store'), { keepVersions: 3 });
    const error = await rejection(store.getDevice('dev-a'));
    assert.equal(error.code, 'VDM_STORE_CORRUPT');
    assert.equal(error.details?.key, 'devices/dev-a');
  });

  it('refuses work after close with VDM_STORE_CLOSED', async () => {
    await store.close();
    assert.equal((await rejection(store.getDevice('dev-a'))).code, 'VDM_STORE_CLOSED');
    assert.equal((await rejection(store.putDevice(deviceA))).code, 'VDM_STORE_CLOSED');
  });
});

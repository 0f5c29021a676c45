/**
 * Proves: NbdServer (src/nbd/server.ts) serves on TCP and on a Unix socket, bounds a flood of connections
 * without disturbing an established one (S1), and shuts down as its numbered steps say (S2): in-flight
 * requests finish, new ones get ESHUTDOWN, handshaking clients get NBD_REP_ERR_SHUTDOWN, sockets close.
 * Oracle: raw socket clients reading reply bytes against proto.md, and the server's reported error codes.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as nbd from '../../src/nbd/protocol.js';
import { MemoryExport } from './fixtures/memory-export.js';
import { infoData, RawClient } from './fixtures/raw-client.js';
import { startTestServer } from './fixtures/test-server.js';
import { until } from '../support/wait.js';

describe('nbd server', () => {
  it('serves the same export on TCP and on the Unix socket', async () => {
    const disk = new MemoryExport({ name: 'disk', size: 1 << 20 });
    disk.store.fill(3, 0, 512);
    const server = await startTestServer([disk]);
    try {
      for (const where of [{ path: server.unixPath }, { port: server.port, host: '127.0.0.1' }]) {
        const raw = await RawClient.connect(where);
        await raw.open('disk');
        raw.request(nbd.NBD_CMD_READ, { handle: 1n, offset: 0, length: 512 });
        const reply = await raw.readReply(512);
        assert.ok(reply.payload.every((b) => b === 3));
        raw.destroy();
      }
    } finally {
      await server.stop();
    }
  });

  it('S1: refuses connections past the handshake limit while an established one keeps working', async () => {
    const disk = new MemoryExport({ name: 'disk', size: 1 << 20 });
    const server = await startTestServer([disk], { maxHandshakes: 8, maxConnections: 32 });
    const flood: RawClient[] = [];
    try {
      const established = await RawClient.connect({ path: server.unixPath });
      await established.open('disk');
      for (let i = 0; i < 40; i++) flood.push(await RawClient.connect({ path: server.unixPath }));
      await until(() => flood.filter((c) => c.closed).length >= 40 - 8, 'the connections past the limit to be refused');
      await sleep(100); // room for a ninth handshake slot to be refused too, if the count were wrong
      const refused = flood.filter((c) => c.closed).length;
      assert.equal(refused, 40 - 8, 'eight handshake slots: the established connection no longer holds one');
      for (let i = 0; i < 20; i++) {
        established.request(nbd.NBD_CMD_READ, { handle: BigInt(i), offset: i * 512, length: 512 });
        assert.equal((await established.readReply(512)).handle, BigInt(i));
      }
      assert.ok(server.errors.some((e) => e.code === 'VDM_NBD_CONNECTION_LIMIT'));
      established.destroy();
    } finally {
      for (const c of flood) c.destroy();
      await server.stop();
    }
  });

  it('S2: lets an in-flight request finish, answers new ones with ESHUTDOWN, then closes', async () => {
    const disk = new MemoryExport({ name: 'disk', size: 1 << 20 });
    const server = await startTestServer([disk]);
    const raw = await RawClient.connect({ path: server.unixPath });
    await raw.open('disk', { structured: true });
    const release = disk.hold('read');
    raw.request(nbd.NBD_CMD_READ, { handle: 1n, offset: 0, length: 4096 });
    await until(() => disk.calls.read === 1, 'the read to reach the export');
    const closing = server.stop();
    await sleep(20);
    raw.request(nbd.NBD_CMD_FLUSH, { handle: 2n });
    const refused = await raw.readReply();
    assert.deepEqual([refused.handle, refused.error], [2n, nbd.NBD_ESHUTDOWN]);
    release();
    const finished = await raw.readReply();
    assert.deepEqual([finished.handle, finished.type], [1n, nbd.NBD_REPLY_TYPE_OFFSET_DATA]);
    assert.equal(await raw.waitClosed(), true);
    await closing;
    assert.equal(existsSync(server.unixPath), false, 'the Unix socket path is removed');
    assert.equal(disk.outstandingReadBuffers, 0);
  });

  it('S2: answers options with NBD_REP_ERR_SHUTDOWN while shutting down, and closes after the grace', async () => {
    const disk = new MemoryExport({ name: 'disk', size: 1 << 20 });
    const server = await startTestServer([disk], { closeGraceMs: 300 });
    const raw = await RawClient.connect({ path: server.unixPath });
    await raw.greet();
    const closing = server.stop();
    await sleep(20);
    const [reply] = await raw.optionExchange(nbd.NBD_OPT_GO, infoData('disk'));
    assert.equal(reply.type, nbd.NBD_REP_ERR_SHUTDOWN);
    assert.equal(await raw.waitClosed(2_000), true);
    await closing;
  });

  it('refuses to listen on a Unix socket path another server is using', async () => {
    const disk = new MemoryExport({ name: 'disk', size: 4096 });
    const first = await startTestServer([disk]);
    const { NbdServer } = await import('../../src/nbd/server.js');
    const { ListRegistry } = await import('./fixtures/test-server.js');
    const second = new NbdServer({ registry: new ListRegistry([disk]), tcp: false, unixPath: first.unixPath });
    try {
      await assert.rejects(second.listen(), /EADDRINUSE/);
      const raw = await RawClient.connect({ path: first.unixPath });
      await raw.open('disk');
      raw.destroy();
    } finally {
      await second.close();
      await first.stop();
    }
  });
});

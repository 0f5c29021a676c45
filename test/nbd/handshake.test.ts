/**
 * Proves: the fixed newstyle handshake (src/nbd/handshake.ts) answers every option as proto.md says, keeps
 * the option stream parseable after errors (H1), drops the connection only where the spec allows (H2), ties
 * base:allocation to the export it was selected for (H3), and answers INFO and GO alike (H4).
 * Oracle: the byte layouts and reply types of proto.md, checked with a raw socket client; a second,
 * well-behaved connection must keep working after every misbehaving one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as nbd from '../../src/nbd/protocol.js';
import { MemoryExport } from './fixtures/memory-export.js';
import { infoData, metaContextData, RawClient, requestBytes } from './fixtures/raw-client.js';
import { startTestServer, type TestServer } from './fixtures/test-server.js';

const ERROR_BIT = 0x80000000;

describe('handshake', () => {
  let server: TestServer;
  const disk = new MemoryExport({ name: 'disk', size: 1 << 20, description: 'the first disk' });
  const other = new MemoryExport({ name: 'other', size: 2 << 20, description: '' });

  before(async () => {
    server = await startTestServer([disk, other], { connection: { maxOptions: 16, maxOptionLength: 8192, handshakeTimeoutMs: 3_000 } });
  });
  after(async () => {
    await server.stop();
  });

  const client = (): Promise<RawClient> => RawClient.connect({ path: server.unixPath });

  /** A well-behaved client still gets served. */
  async function assertServerStillServes(): Promise<void> {
    const healthy = await client();
    const { size } = await healthy.open('disk');
    assert.equal(size, 1n << 20n);
    healthy.request(nbd.NBD_CMD_READ, { handle: 9n, offset: 0, length: 512 });
    const reply = await healthy.readReply(512);
    assert.equal(reply.error, 0);
    healthy.destroy();
  }

  it('greets with NBDMAGIC, IHAVEOPT and exactly FIXED_NEWSTYLE | NO_ZEROES', async () => {
    const raw = await client();
    const greeting = await raw.read(nbd.GREETING_LENGTH);
    assert.equal(greeting.readBigUInt64BE(0), nbd.NBDMAGIC);
    assert.equal(greeting.readBigUInt64BE(8), nbd.IHAVEOPT);
    assert.equal(greeting.readUInt16BE(16), nbd.NBD_FLAG_FIXED_NEWSTYLE | nbd.NBD_FLAG_NO_ZEROES);
    raw.destroy();
  });

  it('drops the connection when the client sets an unknown client flag', async () => {
    const raw = await client();
    await raw.greet(nbd.NBD_FLAG_C_FIXED_NEWSTYLE | (1 << 5));
    assert.equal(await raw.waitClosed(), true);
    await assertServerStillServes();
  });

  it('answers NBD_REP_ERR_UNSUP to an unknown option and still parses the next one', async () => {
    const raw = await client();
    await raw.greet();
    const [unknown] = await raw.optionExchange(0x4242, Buffer.alloc(300, 1));
    assert.equal(unknown.option, 0x4242);
    assert.equal(unknown.type, nbd.NBD_REP_ERR_UNSUP);
    const [tls] = await raw.optionExchange(nbd.NBD_OPT_STARTTLS);
    assert.equal(tls.type, nbd.NBD_REP_ERR_UNSUP);
    const [extended] = await raw.optionExchange(nbd.NBD_OPT_EXTENDED_HEADERS);
    assert.equal(extended.type, nbd.NBD_REP_ERR_UNSUP);
    const replies = await raw.optionExchange(nbd.NBD_OPT_LIST);
    assert.equal(replies[replies.length - 1].type, nbd.NBD_REP_ACK);
    raw.destroy();
  });

  it('lists every export with its name and description, then ACK, when asked NBD_OPT_LIST', async () => {
    const raw = await client();
    await raw.greet();
    const replies = await raw.optionExchange(nbd.NBD_OPT_LIST);
    assert.deepEqual(replies.map((r) => r.type), [nbd.NBD_REP_SERVER, nbd.NBD_REP_SERVER, nbd.NBD_REP_ACK]);
    const first = replies[0].data;
    const nameLength = first.readUInt32BE(0);
    assert.equal(first.subarray(4, 4 + nameLength).toString(), 'disk');
    assert.equal(first.subarray(4 + nameLength).toString(), 'the first disk');
    raw.destroy();
  });

  it('answers NBD_REP_ERR_INVALID when NBD_OPT_LIST or NBD_OPT_STRUCTURED_REPLY carry data', async () => {
    const raw = await client();
    await raw.greet();
    assert.equal((await raw.optionExchange(nbd.NBD_OPT_LIST, Buffer.from('x')))[0].type, nbd.NBD_REP_ERR_INVALID);
    assert.equal((await raw.optionExchange(nbd.NBD_OPT_STRUCTURED_REPLY, Buffer.from('x')))[0].type, nbd.NBD_REP_ERR_INVALID);
    raw.destroy();
  });

  it('answers INFO with EXPORT, NAME, DESCRIPTION and BLOCK_SIZE when all are requested', async () => {
    const raw = await client();
    await raw.greet();
    const replies = await raw.optionExchange(nbd.NBD_OPT_INFO, infoData('disk', [nbd.NBD_INFO_NAME, nbd.NBD_INFO_DESCRIPTION, nbd.NBD_INFO_BLOCK_SIZE]));
    assert.equal(replies[replies.length - 1].type, nbd.NBD_REP_ACK);
    const infos = new Map(replies.filter((r) => r.type === nbd.NBD_REP_INFO).map((r) => [r.data.readUInt16BE(0), r.data]));
    const exportInfo = infos.get(nbd.NBD_INFO_EXPORT);
    assert.ok(exportInfo);
    assert.equal(exportInfo.length, 12);
    assert.equal(exportInfo.readBigUInt64BE(2), 1n << 20n);
    assert.equal(exportInfo.readUInt16BE(10) & nbd.NBD_FLAG_HAS_FLAGS, nbd.NBD_FLAG_HAS_FLAGS);
    assert.equal(exportInfo.readUInt16BE(10) & nbd.NBD_FLAG_SEND_DF, 0, 'DF only after structured replies');
    assert.equal(infos.get(nbd.NBD_INFO_NAME)?.subarray(2).toString(), 'disk');
    assert.equal(infos.get(nbd.NBD_INFO_DESCRIPTION)?.subarray(2).toString(), 'the first disk');
    const blockSize = infos.get(nbd.NBD_INFO_BLOCK_SIZE);
    assert.ok(blockSize);
    assert.deepEqual([blockSize.readUInt32BE(2), blockSize.readUInt32BE(6), blockSize.readUInt32BE(10)], [1, 4096, 32 * 1024 * 1024]);
    raw.destroy();
  });

  it('H4: sends the same information to GO as to the INFO just before it', async () => {
    const raw = await client();
    await raw.greet();
    const request = infoData('disk', [nbd.NBD_INFO_BLOCK_SIZE, nbd.NBD_INFO_NAME]);
    const info = await raw.optionExchange(nbd.NBD_OPT_INFO, request);
    const go = await raw.optionExchange(nbd.NBD_OPT_GO, request);
    const payloads = (replies: typeof info): string[] => replies.map((r) => `${r.type}:${r.data.toString('hex')}`).sort();
    assert.deepEqual(payloads(go), payloads(info));
    raw.destroy();
  });

  it('answers NBD_REP_ERR_UNKNOWN to INFO and GO of an unknown export and keeps haggling', async () => {
    const raw = await client();
    await raw.greet();
    assert.equal((await raw.optionExchange(nbd.NBD_OPT_INFO, infoData('nope')))[0].type, nbd.NBD_REP_ERR_UNKNOWN);
    const [refused] = await raw.optionExchange(nbd.NBD_OPT_GO, infoData('nope'));
    assert.equal(refused.type, nbd.NBD_REP_ERR_UNKNOWN);
    assert.match(refused.data.toString(), /nope/);
    const replies = await raw.optionExchange(nbd.NBD_OPT_GO, infoData('disk'));
    assert.equal(replies[replies.length - 1].type, nbd.NBD_REP_ACK);
    raw.destroy();
  });

  it('answers NBD_REP_ERR_INVALID when the INFO lengths do not add up', async () => {
    const raw = await client();
    await raw.greet();
    const tooShort = Buffer.alloc(5);
    assert.equal((await raw.optionExchange(nbd.NBD_OPT_INFO, tooShort))[0].type, nbd.NBD_REP_ERR_INVALID);
    const nameTooLong = infoData('disk');
    nameTooLong.writeUInt32BE(1000, 0);
    assert.equal((await raw.optionExchange(nbd.NBD_OPT_INFO, nameTooLong))[0].type, nbd.NBD_REP_ERR_INVALID);
    const countWrong = Buffer.concat([infoData('disk'), Buffer.alloc(3)]);
    assert.equal((await raw.optionExchange(nbd.NBD_OPT_GO, countWrong))[0].type, nbd.NBD_REP_ERR_INVALID);
    raw.destroy();
  });

  it('resolves the empty name to the default export and names it', async () => {
    const raw = await client();
    await raw.greet();
    const replies = await raw.optionExchange(nbd.NBD_OPT_INFO, infoData(''));
    const name = replies.find((r) => r.type === nbd.NBD_REP_INFO && r.data.readUInt16BE(0) === nbd.NBD_INFO_NAME);
    assert.equal(name?.data.subarray(2).toString(), 'disk');
    raw.destroy();
  });

  it('answers NBD_OPT_EXPORT_NAME with size and flags and no zeroes when NO_ZEROES was agreed', async () => {
    const raw = await client();
    await raw.greet();
    raw.sendOption(nbd.NBD_OPT_EXPORT_NAME, Buffer.from('other'));
    const reply = await raw.read(10);
    assert.equal(reply.readBigUInt64BE(0), 2n << 20n);
    raw.request(nbd.NBD_CMD_READ, { handle: 5n, offset: 0, length: 16 });
    const read = await raw.readReply(16);
    assert.equal(read.kind, 'simple', 'the 124 zeroes would have shifted this reply');
    assert.equal(read.handle, 5n);
    raw.destroy();
  });

  it('sends the 124 zero bytes after NBD_OPT_EXPORT_NAME when the client did not set NO_ZEROES', async () => {
    const raw = await client();
    await raw.greet(nbd.NBD_FLAG_C_FIXED_NEWSTYLE);
    raw.sendOption(nbd.NBD_OPT_EXPORT_NAME, Buffer.from('disk'));
    const reply = await raw.read(10 + 124);
    assert.ok(reply.subarray(10).every((byte) => byte === 0));
    raw.request(nbd.NBD_CMD_FLUSH, { handle: 6n });
    assert.equal((await raw.readReply()).handle, 6n);
    raw.destroy();
  });

  it('drops the connection when NBD_OPT_EXPORT_NAME names an unknown export', async () => {
    const raw = await client();
    await raw.greet();
    raw.sendOption(nbd.NBD_OPT_EXPORT_NAME, Buffer.from('nope'));
    assert.equal(await raw.waitClosed(), true);
    await assertServerStillServes();
  });

  it('acknowledges NBD_OPT_ABORT and then closes the connection', async () => {
    const raw = await client();
    await raw.greet();
    const [ack] = await raw.optionExchange(nbd.NBD_OPT_ABORT);
    assert.equal(ack.type, nbd.NBD_REP_ACK);
    assert.equal(await raw.waitClosed(), true);
  });

  it('answers NBD_REP_ERR_INVALID to SET_META_CONTEXT before structured replies', async () => {
    const raw = await client();
    await raw.greet();
    const [reply] = await raw.optionExchange(nbd.NBD_OPT_SET_META_CONTEXT, metaContextData('disk', [nbd.BASE_ALLOCATION]));
    assert.equal(reply.type, nbd.NBD_REP_ERR_INVALID);
    raw.destroy();
  });

  it('lists base:allocation for no query and for "base:", and nothing for another namespace', async () => {
    const raw = await client();
    await raw.greet();
    await raw.optionExchange(nbd.NBD_OPT_STRUCTURED_REPLY);
    for (const queries of [[], ['base:'], ['base:allocation']]) {
      const replies = await raw.optionExchange(nbd.NBD_OPT_LIST_META_CONTEXT, metaContextData('disk', queries));
      assert.deepEqual(replies.map((r) => r.type), [nbd.NBD_REP_META_CONTEXT, nbd.NBD_REP_ACK], JSON.stringify(queries));
      assert.equal(replies[0].data.subarray(4).toString(), 'base:allocation');
    }
    const none = await raw.optionExchange(nbd.NBD_OPT_LIST_META_CONTEXT, metaContextData('disk', ['qemu:dirty-bitmap:x']));
    assert.deepEqual(none.map((r) => r.type), [nbd.NBD_REP_ACK]);
    const bad = await raw.optionExchange(nbd.NBD_OPT_LIST_META_CONTEXT, metaContextData('disk', ['no-colon']));
    assert.equal(bad[0].type, nbd.NBD_REP_ERR_INVALID);
    raw.destroy();
  });

  it('H3: refuses BLOCK_STATUS with EINVAL when base:allocation was selected for another export', async () => {
    const raw = await client();
    await raw.greet();
    await raw.optionExchange(nbd.NBD_OPT_STRUCTURED_REPLY);
    const selected = await raw.optionExchange(nbd.NBD_OPT_SET_META_CONTEXT, metaContextData('other', [nbd.BASE_ALLOCATION]));
    assert.equal(selected[0].type, nbd.NBD_REP_META_CONTEXT);
    const go = await raw.optionExchange(nbd.NBD_OPT_GO, infoData('disk'));
    assert.equal(go[go.length - 1].type, nbd.NBD_REP_ACK);
    raw.request(nbd.NBD_CMD_BLOCK_STATUS, { handle: 3n, offset: 0, length: 4096 });
    const reply = await raw.readReply();
    assert.equal(reply.error, nbd.NBD_EINVAL);
    raw.destroy();
  });

  it('answers NBD_REP_ERR_TOO_BIG to an option over the length limit, skips its data and keeps haggling', async () => {
    const raw = await client();
    await raw.greet();
    raw.sendOption(nbd.NBD_OPT_SET_META_CONTEXT, Buffer.alloc(100_000, 0x61)); // maxOptionLength is 8192 here
    const refused = await raw.readOptionReply();
    assert.deepEqual([refused.option, refused.type], [nbd.NBD_OPT_SET_META_CONTEXT, nbd.NBD_REP_ERR_TOO_BIG]);
    const next = await raw.optionExchange(nbd.NBD_OPT_STRUCTURED_REPLY);
    assert.deepEqual(next.map((reply) => reply.type), [nbd.NBD_REP_ACK]);
    raw.destroy();
  });

  it('drops the connection when an option is longer than it would skip', async () => {
    const raw = await client();
    await raw.greet();
    raw.sendOption(nbd.NBD_OPT_GO, Buffer.alloc(0), nbd.IHAVEOPT, 0xfffffff0);
    assert.equal(await raw.waitClosed(), true);
    await assertServerStillServes();
  });

  it('drops the connection when the client sends more options than the limit', async () => {
    const raw = await client();
    await raw.greet();
    let dropped = false;
    for (let i = 0; i < 40 && !dropped; i++) {
      raw.sendOption(nbd.NBD_OPT_STRUCTURED_REPLY);
      try {
        await raw.readOptionReply();
      } catch {
        dropped = true;
      }
    }
    assert.equal(dropped, true);
    assert.equal(await raw.waitClosed(), true);
    await assertServerStillServes();
  });

  it('drops the connection when an option header has a bad magic', async () => {
    const raw = await client();
    await raw.greet();
    raw.sendOption(nbd.NBD_OPT_LIST, Buffer.alloc(0), 0x1234n);
    assert.equal(await raw.waitClosed(), true);
    await assertServerStillServes();
  });

  it('serves requests the client pipelined right behind NBD_OPT_GO', async () => {
    const raw = await client();
    await raw.greet();
    const header = Buffer.alloc(16);
    const data = infoData('disk');
    header.writeBigUInt64BE(nbd.IHAVEOPT, 0);
    header.writeUInt32BE(nbd.NBD_OPT_GO, 8);
    header.writeUInt32BE(data.length, 12);
    const request = requestBytes(nbd.NBD_CMD_FLUSH, { handle: 77n });
    raw.write(Buffer.concat([header, data, request]));
    for (;;) {
      const reply = await raw.readOptionReply();
      if (reply.type === nbd.NBD_REP_ACK) break;
    }
    const flushed = await raw.readReply();
    assert.equal(flushed.handle, 77n);
    assert.equal(flushed.error, 0);
    raw.destroy();
  });

  it('serves requests pipelined behind NBD_OPT_GO, then closes, when the client shut its sending side during the handshake', async () => {
    const raw = await client();
    await raw.read(nbd.GREETING_LENGTH);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(nbd.NBD_FLAG_C_FIXED_NEWSTYLE | nbd.NBD_FLAG_C_NO_ZEROES);
    const go = Buffer.alloc(16);
    go.writeBigUInt64BE(nbd.IHAVEOPT, 0);
    go.writeUInt32BE(nbd.NBD_OPT_GO, 8);
    go.writeUInt32BE(infoData('disk').length, 12);
    raw.socket.end(Buffer.concat([flags, go, infoData('disk'), requestBytes(nbd.NBD_CMD_FLUSH, { handle: 78n })]));
    for (;;) {
      const reply = await raw.readOptionReply();
      if (reply.type === nbd.NBD_REP_ACK) break;
    }
    assert.equal((await raw.readReply()).handle, 78n);
    assert.equal(await raw.waitClosed(), true, 'the server closes once the pipelined requests are answered');
  });
});

describe('handshake timeout', () => {
  it('drops a client that sends nothing of the handshake for the timeout', async () => {
    const server = await startTestServer([new MemoryExport({ name: 'disk', size: 4096 })], { connection: { handshakeTimeoutMs: 200 } });
    try {
      const raw = await RawClient.connect({ path: server.unixPath });
      await raw.greet();
      assert.equal(await raw.waitClosed(2_000), true);
      assert.ok(server.errors.some((e) => e.code === 'VDM_NBD_HANDSHAKE_TIMEOUT'));
    } finally {
      await server.stop();
    }
  });

  it('keeps a client that goes on haggling past the timeout, as long as each option comes in time', async () => {
    const server = await startTestServer([new MemoryExport({ name: 'disk', size: 4096 })], { connection: { handshakeTimeoutMs: 600 } });
    try {
      const raw = await RawClient.connect({ path: server.unixPath });
      await raw.greet();
      for (let i = 0; i < 6; i++) { // 6 x 200 ms: twice the timeout in all
        await sleep(200);
        assert.deepEqual((await raw.optionExchange(nbd.NBD_OPT_LIST)).at(-1)?.type, nbd.NBD_REP_ACK);
      }
      const go = await raw.optionExchange(nbd.NBD_OPT_GO, infoData('disk'));
      assert.equal(go.at(-1)?.type, nbd.NBD_REP_ACK);
      raw.destroy();
    } finally {
      await server.stop();
    }
  });
});

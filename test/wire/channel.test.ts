/**
 * Proves the wire end to end over real sockets (loopback TCP and a Unix socket): the handshake of
 * src/wire/handshake.ts admits an agent holding its issued credential and refuses a wrong or unknown one on
 * both ends (HS2); after it every frame is sealed, so a frame replayed into the stream by a relay in the
 * middle is refused (auth.ts A1); garbage, oversized announcements and silent peers are refused with a
 * reason and never take the server down (channel.ts W2, handshake.ts HS3); a 1M-entry table crosses the
 * socket in chunks and is reassembled exactly. Oracle: what each end reports and receives, and a fresh
 * agent still being served after every attack.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VdmapError } from '../../src/errors/error.js';
import { ExtentState, NoDevice, type TableDocument } from '../../src/table/document.js';
import { issueCredential } from '../../src/wire/auth.js';
import { WireChannel } from '../../src/wire/channel.js';
import { encodeFrame, FrameDecoder } from '../../src/wire/frame.js';
import { agentHandshake, controllerHandshake } from '../../src/wire/handshake.js';
import type { WireMessage } from '../../src/wire/messages.js';
import { TableAssembler, tableMessages } from '../../src/wire/tables.js';

const devices = [{ id: 'nvme-a', path: '/dev/nvme0n1', size: 2 ** 40, logicalBlockSize: 4096 }];
const secrets = new Map([['host-a', issueCredential()]]);

interface ControllerEnd {
  address: { port: number } | { path: string };
  accepted: string[];
  handshakeErrors: VdmapError[];
  refusals: VdmapError[];
  received: WireMessage[];
  /** Resolves with each accepted session's channel, for the test to send on. */
  nextSession(): Promise<WireChannel>;
  close(): Promise<void>;
}

async function startController(listen: { port: 0 } | { path: string }, handshakeTimeoutMs = 2000): Promise<ControllerEnd> {
  const sockets = new Set<Socket>();
  const sessionWaiters: ((channel: WireChannel) => void)[] = [];
  const end: Omit<ControllerEnd, 'address' | 'close'> = {
    accepted: [], handshakeErrors: [], refusals: [], received: [],
    nextSession: () => new Promise((resolve) => sessionWaiters.push(resolve)),
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    void serve(socket);
  });
  async function serve(socket: Socket): Promise<void> {
    const channel = new WireChannel(socket, { onRefusal: (error) => end.refusals.push(error) });
    const result = await controllerHandshake(channel, {
      lookupSecret: (agent) => secrets.get(agent), leaseMs: 10_000, heartbeatMs: 1000, handshakeTimeoutMs,
    });
    if (result instanceof VdmapError) {
      end.handshakeErrors.push(result);
      return;
    }
    end.accepted.push(result.agent);
    sessionWaiters.shift()?.(channel);
    for (let message = await channel.receive(); message !== null; message = await channel.receive()) {
      end.received.push(message);
    }
  }
  await new Promise<void>((resolve) => server.listen(listen, resolve));
  const address = 'path' in listen ? { path: listen.path } : { port: (server.address() as { port: number }).port };
  return {
    ...end, address,
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

function connect(address: { port: number } | { path: string }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in address ? createConnection(address.path) : createConnection(address.port, '127.0.0.1');
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function connectAgent(address: { port: number } | { path: string }, agent: string, secret: Uint8Array):
  Promise<{ channel: WireChannel; result: Awaited<ReturnType<typeof agentHandshake>> }> {
  const channel = new WireChannel(await connect(address));
  return { channel, result: await agentHandshake(channel, { agent, secret, devices }) };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A TCP relay between agent and controller that records agent->controller bytes and can inject more. */
async function startRelay(target: number): Promise<{ port: number; upstream: Buffer[]; inject(bytes: Buffer): void; close(): Promise<void> }> {
  const upstream: Buffer[] = [];
  const pairs: Socket[] = [];
  let toController: Socket | undefined;
  const server = createServer((client) => {
    const controller = createConnection(target, '127.0.0.1');
    toController = controller;
    pairs.push(client, controller);
    client.on('data', (chunk: Buffer) => {
      upstream.push(chunk);
      controller.write(chunk);
    });
    controller.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => controller.destroy());
    controller.on('close', () => client.destroy());
    client.on('error', () => undefined);
    controller.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port, upstream,
    inject: (bytes) => toController?.write(bytes),
    close: () => new Promise((resolve) => {
      for (const socket of pairs) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

describe('wire channel over TCP', async () => {
  const controller = await startController({ port: 0 });
  after(() => controller.close());

  it('admits an agent with its issued credential and carries sealed messages both ways', async () => {
    const session = controller.nextSession();
    const { channel, result } = await connectAgent(controller.address, 'host-a', secrets.get('host-a') as Uint8Array);
    assert.ok(!(result instanceof VdmapError), result instanceof VdmapError ? result.message : '');
    assert.equal(result.type, 'welcome');
    assert.equal(result.leaseMs, 10_000);
    const controllerSide = await session;
    await channel.send({ type: 'heartbeat', sentAt: 123 });
    await until(() => controller.received.some((m) => m.type === 'heartbeat'), 'the heartbeat');
    await controllerSide.send({ type: 'lease', leaseMs: 9000 });
    assert.deepEqual(await channel.receive(), { type: 'lease', leaseMs: 9000 });
    await channel.close();
  });

  it('refuses a wrong credential on both ends with VDM_AUTH_DENIED', async () => {
    const before = controller.handshakeErrors.length;
    const { result } = await connectAgent(controller.address, 'host-a', issueCredential());
    assert.ok(result instanceof VdmapError);
    assert.equal(result.code, 'VDM_AUTH_DENIED');
    await until(() => controller.handshakeErrors.length > before, 'the controller to record the refusal');
    assert.equal(controller.handshakeErrors[before].code, 'VDM_AUTH_DENIED');
    assert.equal(controller.handshakeErrors[before].details?.reason, 'wrong-credential');
  });

  it('refuses an unknown agent with VDM_AUTH_DENIED and tells it no more than code and message', async () => {
    const { result } = await connectAgent(controller.address, 'host-zz', issueCredential());
    assert.ok(result instanceof VdmapError);
    assert.equal(result.code, 'VDM_AUTH_DENIED');
    assert.equal(result.details, undefined);
  });

  it('carries a 1M-entry table in chunks that reassemble exactly', async () => {
    const extentCount = 1 << 20;
    const doc: TableDocument = {
      disk: 'vol1', epoch: 3, extentSize: 1 << 20, extentCount, devices: ['nvme-a'],
      device: new Int32Array(extentCount), physicalExtent: new Uint32Array(extentCount), state: new Uint8Array(extentCount),
    };
    for (let extent = 0; extent < extentCount; extent++) {
      doc.device[extent] = extent % 4 === 0 ? NoDevice : 0;
      doc.physicalExtent[extent] = extent % 4 === 0 ? 0 : extent;
      doc.state[extent] = extent % 4 === 0 ? ExtentState.Zero : 0;
    }
    const session = controller.nextSession();
    const { channel, result } = await connectAgent(controller.address, 'host-a', secrets.get('host-a') as Uint8Array);
    assert.ok(!(result instanceof VdmapError));
    const controllerSide = await session;
    const sending = (async () => {
      for (const message of tableMessages(doc, 1)) await controllerSide.send(message);
    })();
    let assembler: TableAssembler | undefined;
    let assembled: TableDocument | VdmapError | undefined;
    while (assembled === undefined) {
      const message = await channel.receive();
      assert.ok(message !== null, channel.endError?.message);
      if (message.type === 'table-begin') assembler = new TableAssembler(message);
      else if (message.type === 'table-chunk') assert.equal(assembler?.addChunk(message), undefined);
      else if (message.type === 'table-end') assembled = assembler?.finish(message);
    }
    await sending;
    assert.deepEqual(assembled, doc);
    await channel.close();
  });

  it('refuses a frame replayed into a session by a relay with VDM_AUTH_REPLAY', async () => {
    const relay = await startRelay((controller.address as { port: number }).port);
    try {
      const before = controller.refusals.length;
      const { channel, result } = await connectAgent({ port: relay.port }, 'host-a', secrets.get('host-a') as Uint8Array);
      assert.ok(!(result instanceof VdmapError));
      await channel.send({ type: 'applied', disk: 'vol1', epoch: 7 });
      await until(() => controller.received.some((m) => m.type === 'applied' && m.epoch === 7), 'the applied message');
      const frames = new FrameDecoder().push(Buffer.concat(relay.upstream)).frames;
      relay.inject(encodeFrame(frames[frames.length - 1]));
      await until(() => controller.refusals.length > before, 'the controller to refuse the replay');
      assert.equal(controller.refusals[before].code, 'VDM_AUTH_REPLAY');
      assert.equal(controller.received.filter((m) => m.type === 'applied' && m.epoch === 7).length, 1);
      const notice = await channel.receive();
      assert.equal(notice?.type === 'error' ? notice.error.code : notice?.type, 'VDM_AUTH_REPLAY', 'the agent is told why');
      assert.equal(await channel.receive(), null, 'and the session ends');
    } finally {
      await relay.close();
    }
  });

  it('refuses garbage with a reason and keeps serving agents', async () => {
    const before = controller.handshakeErrors.length;
    const socket = await connect(controller.address);
    socket.on('error', () => undefined);
    socket.write(Buffer.concat([encodeFrame(Buffer.from('this is not CBOR')), Buffer.from([0xff])]));
    await until(() => controller.handshakeErrors.length > before, 'the garbage to be refused');
    assert.equal(controller.handshakeErrors[before].code, 'VDM_WIRE_MALFORMED');
    socket.destroy();
    const { channel, result } = await connectAgent(controller.address, 'host-a', secrets.get('host-a') as Uint8Array);
    assert.ok(!(result instanceof VdmapError), 'a real agent is still admitted');
    await channel.close();
  });

  it('refuses an oversized frame announcement and closes the connection', async () => {
    const before = controller.handshakeErrors.length;
    const socket = await connect(controller.address);
    socket.on('error', () => undefined);
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.resume();
    socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
    await closed;
    await until(() => controller.handshakeErrors.length > before, 'the refusal');
    assert.equal(controller.handshakeErrors[before].code, 'VDM_WIRE_FRAME_TOO_LARGE');
  });

  it('refuses a peer that is still silent at the handshake deadline', async () => {
    const quick = await startController({ port: 0 }, 200);
    try {
      const socket = await connect(quick.address);
      socket.on('error', () => undefined);
      await until(() => quick.handshakeErrors.length > 0, 'the handshake timeout');
      assert.equal(quick.handshakeErrors[0].code, 'VDM_WIRE_TIMEOUT');
      socket.destroy();
    } finally {
      await quick.close();
    }
  });
});

describe('wire channel over a Unix socket', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'vdmap-wire-'));
  const controller = await startController({ path: join(directory, 'controller.sock') });
  after(async () => {
    await controller.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('admits an agent with its issued credential', async () => {
    const { channel, result } = await connectAgent(controller.address, 'host-a', secrets.get('host-a') as Uint8Array);
    assert.ok(!(result instanceof VdmapError));
    await channel.send({ type: 'heartbeat', sentAt: 1 });
    await until(() => controller.received.some((m) => m.type === 'heartbeat'), 'the heartbeat');
    await channel.close();
  });

  it('refuses a wrong credential with VDM_AUTH_DENIED', async () => {
    const { result } = await connectAgent(controller.address, 'host-a', issueCredential());
    assert.ok(result instanceof VdmapError);
    assert.equal(result.code, 'VDM_AUTH_DENIED');
  });
});

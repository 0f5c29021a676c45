/**
 * Proves connections.ts CN1/CN2 against a real controller process: garbage, truncated, oversized, unknown,
 * out-of-order and silent input on its TCP port is refused, connection by connection, with the reason logged
 * under its code and told to the peer, while a well-behaved agent on the same controller keeps its session
 * and keeps receiving pushes, and the controller process never exits.
 * Oracles: the `error` frame each attacker receives (decoded with the wire codec), the controller's log lines,
 * the agent's live epoch after pushes made between the attacks, and the controller's session log.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Encoder } from 'cbor-x';
import type { TableJson } from '../../src/table/codec.js';
import { decodeMessage } from '../../src/wire/codec.js';
import { encodeFrame, FrameDecoder } from '../../src/wire/frame.js';
import { cleanupDevices, sparseFile, tempDir } from '../support/devices.js';
import {
  admin, agentEpoch, converged, enroll, startAgentProcess, startControllerProcess, stopAll,
} from './fixtures/daemons.js';

const MiB = 1024 * 1024;
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

/** Connects, sends `bytes` (then ends the stream when `end`), and returns the error code the controller sent back. */
function attack(port: number, bytes: Uint8Array, end = false): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const decoder = new FrameDecoder();
    let code: string | undefined;
    socket.on('data', (chunk) => {
      for (const frame of decoder.push(chunk).frames) {
        const decoded = decodeMessage(frame);
        if (decoded.ok && decoded.message.type === 'error') code = decoded.message.error.code;
      }
    });
    socket.once('connect', () => {
      socket.write(bytes);
      if (end) socket.end();
    });
    socket.once('close', () => resolve(code));
    socket.once('error', reject);
    setTimeout(() => socket.destroy(), 10_000).unref();
  });
}

function lengthHeader(length: number): Uint8Array {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length);
  return header;
}

describe('hostile frames on the controller port', () => {
  let controller: Awaited<ReturnType<typeof startControllerProcess>>;
  let agent: Awaited<ReturnType<typeof startAgentProcess>>;
  let port: number;
  let header: TableJson;
  let physical = 0;

  before(async () => {
    controller = await startControllerProcess({ dataDir: tempDir('vdmap-controller-'), leaseMs: 3000, handshakeTimeoutMs: 500 });
    port = Number(controller.tcp.split(':')[1]);
    const device = sparseFile(64 * MiB);
    await admin(controller.socket, 'device.add', { id: 'dev0', size: 64 * MiB, logicalBlockSize: 512, paths: [{ agent: 'host-a', path: device }] });
    await admin(controller.socket, 'disk.create', { name: 'vol', size: 4 * MiB, extentSize: MiB });
    const credential = await enroll(controller.socket, 'host-a');
    await admin(controller.socket, 'disk.attach', { disk: 'vol', agent: 'host-a' });
    agent = await startAgentProcess({ controller: controller.tcp, name: 'host-a', credential });
    await converged(controller.socket, 'vol', 1, ['host-a']);
    header = await admin<TableJson>(controller.socket, 'table.show', { disk: 'vol' });
  });

  after(async () => {
    await stopAll();
    cleanupDevices();
  });

  /** A push the agent must still apply: proof that it kept working through the attack. */
  async function agentStillServed(): Promise<void> {
    physical += 4;
    const { epoch } = await admin<{ epoch: number }>(controller.socket, 'table.push', {
      disk: 'vol', table: { ...header, entries: [{ extent: 0, count: 4, device: 'dev0', physical }] },
    });
    await converged(controller.socket, 'vol', epoch, ['host-a']);
    assert.equal(await agentEpoch(agent.adminSocket, 'vol'), epoch);
    assert.equal(controller.child.exitCode, null, 'the controller is still running');
  }

  const attacks: Array<[string, () => Uint8Array, string, boolean?]> = [
    ['an announced length above the frame limit', () => lengthHeader(0xffff_fff0), 'VDM_WIRE_FRAME_TOO_LARGE'],
    ['an empty frame', () => lengthHeader(0), 'VDM_WIRE_MALFORMED'],
    ['a frame of bytes that are not CBOR', () => encodeFrame(Uint8Array.of(0xff, 0xfe, 0xfd, 0x1c)), 'VDM_WIRE_MALFORMED'],
    ['a message of an unknown type', () => encodeFrame(cbor.encode({ type: 'meltdown', now: true })), 'VDM_WIRE_UNKNOWN_MESSAGE'],
    ['a valid message where hello is due', () => encodeFrame(cbor.encode({ type: 'heartbeat', sentAt: 1 })), 'VDM_WIRE_UNEXPECTED'],
    ['a hello with a wrong shape', () => encodeFrame(cbor.encode({ type: 'hello', protocol: 1, agent: 'host-a' })), 'VDM_WIRE_MALFORMED'],
  ];
  for (const [what, bytes, code] of attacks) {
    it(`refuses ${what} with ${code} and keeps serving the agent`, async () => {
      assert.equal(await attack(port, bytes()), code);
      await controller.waitForLog({ code }); // logged with its code
      await agentStillServed();
    });
  }

  it('refuses a frame cut off by the end of the stream (VDM_WIRE_TRUNCATED)', async () => {
    await attack(port, Buffer.concat([lengthHeader(200), randomBytes(20)]), true);
    await controller.waitForLog({ code: 'VDM_WIRE_TRUNCATED' });
    await agentStillServed();
  });

  it('drops a peer that never sends its hello (VDM_WIRE_TIMEOUT)', async () => {
    assert.equal(await attack(port, new Uint8Array(0)), 'VDM_WIRE_TIMEOUT');
    await agentStillServed();
  });

  it('survives many connections of random bytes at once', async () => {
    const codes = await Promise.all(Array.from({ length: 64 }, () => attack(port, randomBytes(1 + Math.floor(Math.random() * 2000)))));
    assert.ok(codes.every((code) => code === undefined || /^VDM_WIRE_/.test(code)), codes.join(','));
    await agentStillServed();
    assert.equal(controller.logsMatching({ msg: 'agent connected' }).length, 1, 'the agent kept its one session');
  });
});

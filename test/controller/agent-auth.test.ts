/**
 * Proves that only agents holding the credential the controller issued get a session, and that a session's
 * frames cannot be replayed or forged (src/wire/auth.ts A1, handshake.ts HS2), with real controller and agent
 * processes: a wrong credential, an unknown name and a revoked credential are refused; a hello recorded by a
 * relay in the middle and replayed on a new connection is refused; a sealed frame the relay duplicates or
 * alters ends that session (VDM_AUTH_REPLAY, VDM_AUTH_FORGED) and the agent comes back with a fresh one.
 * Oracles: the controller's refusal log lines (code and reason), the error frame a replaying peer receives,
 * the agent's own log, epoch.show (connected or not) and agent.inspect (no table reached a refused agent).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { EpochView } from '../../src/controller/admin-api.js';
import { encodeCredential, issueCredential } from '../../src/wire/auth.js';
import { decodeMessage } from '../../src/wire/codec.js';
import { encodeFrame, FrameDecoder } from '../../src/wire/frame.js';
import { cleanupDevices, sparseFile, tempDir } from '../support/devices.js';
import {
  admin, agentEpoch, converged, enroll, startAgentProcess, startControllerProcess, stopAll,
} from './fixtures/daemons.js';
import { eventually } from '../support/wait.js';

const MiB = 1024 * 1024;

type Tamper = 'none' | 'replay' | 'forge';

/**
 * A TCP relay between agents and the controller that re-frames the agent's stream: it records each
 * connection's hello frame and, on request, duplicates or corrupts the agent's third frame (a sealed one).
 */
class Relay {
  readonly hellos: Uint8Array[] = [];
  tamper: Tamper = 'none';
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  port = 0;

  constructor(private readonly controllerPort: number) {}

  async listen(): Promise<void> {
    this.server = createServer((agent) => this.relay(agent));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.server?.close();
  }

  private relay(agent: Socket): void {
    const upstream = connect({ host: '127.0.0.1', port: this.controllerPort });
    for (const socket of [agent, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => { agent.destroy(); upstream.destroy(); });
    }
    upstream.on('data', (chunk) => agent.write(chunk));
    const decoder = new FrameDecoder();
    const tamper = this.tamper;
    this.tamper = 'none';
    let index = 0;
    agent.on('data', (chunk) => {
      for (const frame of decoder.push(chunk).frames) {
        if (index === 0) this.hellos.push(new Uint8Array(frame));
        let payload = new Uint8Array(frame);
        if (index === 2 && tamper === 'forge') payload[payload.length - 1] ^= 0x01;
        upstream.write(encodeFrame(payload));
        if (index === 2 && tamper === 'replay') upstream.write(encodeFrame(payload));
        index++;
      }
    });
  }
}

describe('agent authentication', () => {
  let controller: Awaited<ReturnType<typeof startControllerProcess>>;
  let relay: Relay;

  before(async () => {
    controller = await startControllerProcess({ dataDir: tempDir('vdmap-controller-'), leaseMs: 3000 });
    const device = sparseFile(16 * MiB);
    await admin(controller.socket, 'device.add', { id: 'dev0', size: 16 * MiB, logicalBlockSize: 512, paths: ['good', 'impostor', 'revoked'].map((agent) => ({ agent, path: device })) });
    await admin(controller.socket, 'disk.create', { name: 'vol', size: 4 * MiB, extentSize: MiB });
    relay = new Relay(Number(controller.tcp.split(':')[1]));
    await relay.listen();
  });

  after(async () => {
    relay.close();
    await stopAll();
    cleanupDevices();
  });

  async function connected(agent: string): Promise<boolean> {
    const view = await admin<EpochView>(controller.socket, 'epoch.show', { disk: 'vol' });
    return view.agents.find((entry) => entry.agent === agent)?.connected ?? false;
  }

  it('refuses an agent whose credential is not the one issued, and sends it no table', async () => {
    await enroll(controller.socket, 'impostor');
    await admin(controller.socket, 'disk.attach', { disk: 'vol', agent: 'impostor' });
    const agent = await startAgentProcess({ controller: controller.tcp, name: 'impostor', credential: encodeCredential(issueCredential()) });
    const refused = await controller.waitForLog({ code: 'VDM_AUTH_DENIED', agent: 'impostor' });
    assert.equal(refused.reason, 'wrong-credential');
    await agent.waitForLog({ code: 'VDM_AUTH_DENIED' });
    assert.equal(await connected('impostor'), false);
    assert.equal(await agentEpoch(agent.adminSocket, 'vol'), undefined);
    await agent.kill();
  });

  it('refuses an agent name that was never enrolled', async () => {
    const agent = await startAgentProcess({ controller: controller.tcp, name: 'stranger', credential: encodeCredential(issueCredential()) });
    const refused = await controller.waitForLog({ code: 'VDM_AUTH_DENIED', agent: 'stranger' });
    assert.equal(refused.reason, 'unknown-agent');
    await agent.kill();
  });

  it('refuses a hello recorded from a real session and replayed on a new connection', async () => {
    const credential = await enroll(controller.socket, 'good');
    await admin(controller.socket, 'disk.attach', { disk: 'vol', agent: 'good' });
    const agent = await startAgentProcess({ controller: `127.0.0.1:${relay.port}`, name: 'good', credential });
    await converged(controller.socket, 'vol', 1, ['good']);
    const recorded = relay.hellos[0];
    const code = await new Promise<string | undefined>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: Number(controller.tcp.split(':')[1]) });
      const decoder = new FrameDecoder();
      let answer: string | undefined;
      socket.on('data', (chunk) => {
        for (const frame of decoder.push(chunk).frames) {
          const message = decodeMessage(frame);
          if (!message.ok) continue;
          if (message.message.type === 'challenge') socket.write(encodeFrame(recorded)); // the old hello, word for word
          if (message.message.type === 'error') answer = message.message.error.code;
        }
      });
      socket.on('close', () => resolve(answer));
    });
    assert.equal(code, 'VDM_AUTH_DENIED');
    assert.equal((await controller.waitForLog({ code: 'VDM_AUTH_DENIED', agent: 'good' })).reason, 'wrong-credential');
    assert.equal(await connected('good'), true, 'the real session is untouched');
    await agent.kill();
  });

  for (const [tamper, code] of [['replay', 'VDM_AUTH_REPLAY'], ['forge', 'VDM_AUTH_FORGED']] as const) {
    it(`ends a session whose sealed frame was ${tamper === 'replay' ? 'replayed' : 'altered'} (${code}); the agent reconnects`, async () => {
      relay.tamper = tamper;
      const credential = await enroll(controller.socket, 'good');
      const agent = await startAgentProcess({ controller: `127.0.0.1:${relay.port}`, name: 'good', credential });
      await controller.waitForLog({ code });
      await eventually('a fresh session of good', async () => ((await connected('good')) ? true : undefined));
      const { epoch } = await admin<{ epoch: number }>(controller.socket, 'table.set-state', { disk: 'vol', firstExtent: 0, count: 1, set: ['NOWRITE'] });
      await converged(controller.socket, 'vol', epoch, ['good']);
      await admin(controller.socket, 'table.set-state', { disk: 'vol', firstExtent: 0, count: 1, clear: ['NOWRITE'] });
      await agent.kill();
    });
  }

  it('disconnects an agent whose credential was revoked by a new enrollment, and refuses it afterwards', async () => {
    const credential = await enroll(controller.socket, 'revoked');
    await admin(controller.socket, 'disk.attach', { disk: 'vol', agent: 'revoked' });
    const agent = await startAgentProcess({ controller: controller.tcp, name: 'revoked', credential });
    await eventually('revoked connected', async () => ((await connected('revoked')) ? true : undefined));
    await enroll(controller.socket, 'revoked');
    await agent.waitForLog({ code: 'VDM_AUTH_DENIED' });
    await controller.waitForLog({ code: 'VDM_AUTH_DENIED', agent: 'revoked' });
    assert.equal(await connected('revoked'), false);
    await agent.kill();
  });
});

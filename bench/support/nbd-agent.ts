/**
 * The vdmap side of the NBD benchmark and soak: an agent serving one device as export `vd0` over a Unix socket,
 * the way the agent runs in production (main thread accepts, I/O workers own the connections and their rings).
 *
 * Owns: the agent started for a benchmark, in a child process of its own, so it is measured like its peers
 * (qemu-nbd, nbdkit are processes too) and so fio, run synchronously by the benchmark, never blocks the agent's
 * accept loop. The child is this same file run with `node nbd-agent.js DEVICE SIZE SOCKET THREADS`; it says
 * `{"ready": ...}` on its IPC channel and stops on SIGTERM.
 * Does not know: fio or the peers (nbd-bench.ts, soak.ts).
 *
 * Invariants:
 *   A1. The table maps the device in shuffled 1 MiB extent order (like bench/datapath-bench.ts): every request
 *       goes through the mapping, none is a pass-through.
 *   A2. stop() resolves only after the child exited; the socket path is removed.
 *   A3. With migrateEveryMs the disk maps half the device (the other half is room to move into) and the child
 *       migrates extents continuously (migrator.ts) until stopped; stop() then returns the migration counts.
 * Thread: the benchmark's main thread (parent); the child runs an agent (main thread + I/O workers).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MigrationCounts } from './migrator.js';

export interface AgentOptions {
  device: string;
  deviceSize: number;
  socketPath: string;
  /** I/O worker threads (default 2). */
  threads?: number;
  /** Extra environment for the child (e.g. tuning knobs under test). */
  env?: Record<string, string>;
  /** A3: migrate an extent every this many milliseconds while serving. */
  migrateEveryMs?: number;
  /** The child script: another build's nbd-agent.js, for an A/B of two builds (default: this file). */
  agentScript?: string;
}

export interface RunningAgent {
  readonly pid: number;
  readonly uri: string;
  /** Bytes of the virtual disk (half the device when migrating, A3). */
  readonly diskSize: number;
  /** A2, A3. */
  stop(): Promise<MigrationCounts | undefined>;
}

const ExtentSize = 1024 * 1024;

interface FromChild {
  ready?: unknown;
  diskSize?: number;
  migrations?: MigrationCounts;
}

/** Starts the agent in a child process and resolves once it listens. */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const migrate = options.migrateEveryMs === undefined ? {} : { VDMAP_MIGRATE_EVERY_MS: String(options.migrateEveryMs) };
  const child = fork(options.agentScript ?? fileURLToPath(import.meta.url), [options.device, String(options.deviceSize), options.socketPath, String(options.threads ?? 2)], {
    env: { ...process.env, ...options.env, ...migrate }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let counts: MigrationCounts | undefined;
  const diskSize = await new Promise<number>((resolve, reject) => {
    child.on('message', (message: FromChild) => {
      if (message.migrations !== undefined) counts = message.migrations;
      if (message.ready !== undefined) resolve(message.diskSize ?? 0);
    });
    child.once('exit', (code) => reject(new Error(`the vdmap agent exited with code ${code} before listening`)));
    child.once('error', reject);
  });
  return {
    pid: child.pid ?? -1,
    uri: `nbd+unix:///vd0?socket=${options.socketPath}`,
    diskSize,
    stop: async () => {
      await stopChild(child, options.socketPath);
      return counts;
    },
  };
}

async function stopChild(child: ChildProcess, socketPath: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(socketPath, { force: true });
}

/** The child: serves `device` until SIGTERM. */
async function serveInChild(device: string, deviceSize: number, socketPath: string, threads: number): Promise<void> {
  const { AgentDisk } = await import('../../src/agent/agent-disk.js');
  const { IoWorkerPool } = await import('../../src/agent/workers/io-worker-pool.js');
  const { NbdListener } = await import('../../src/agent/nbd-listener.js');
  const { emptyDocument } = await import('../../src/table/document.js');
  const { startMigrator } = await import('./migrator.js');
  const migrateEveryMs = process.env.VDMAP_MIGRATE_EVERY_MS === undefined ? undefined : Number(process.env.VDMAP_MIGRATE_EVERY_MS);
  const physicalCount = Math.floor(deviceSize / ExtentSize);
  const extentCount = migrateEveryMs === undefined ? physicalCount : Math.floor(physicalCount / 2);
  const disk = new AgentDisk({ name: 'vd0', size: extentCount * ExtentSize, extentCapacity: extentCount, readerSlots: threads + 1 });
  const { fd } = disk.attachDevice('d0', device);
  const document = emptyDocument('vd0', 1, ExtentSize, extentCount);
  document.devices = ['d0'];
  const order = shuffledExtents(physicalCount);
  for (let i = 0; i < extentCount; i++) {
    document.device[i] = 0;
    document.physicalExtent[i] = order[i];
    document.state[i] = 0;
  }
  await disk.applyDocument(document);
  // While migrating, writes held by NOWRITE fault by design (the migrator is the controller here): not worth a line each.
  const onFault = migrateEveryMs === undefined ? (fault: unknown) => console.error('vdmap agent fault', fault) : () => undefined;
  const pool = new IoWorkerPool({ threads, ...engineKnobs(), onFault });
  await pool.start();
  pool.attach(disk);
  const listener = new NbdListener(pool, { tcp: false, unixPath: socketPath });
  const endpoints = await listener.listen();
  const migrator = migrateEveryMs === undefined ? undefined : startMigrator({
    disk, deviceId: 'd0', deviceFd: fd, extentSize: ExtentSize, epoch: 1, everyMs: migrateEveryMs,
    physical: order.slice(0, extentCount), free: order.slice(extentCount),
  });
  process.once('SIGTERM', () => {
    void (async () => {
      const migrations = await migrator?.stop();
      if (migrations !== undefined) await new Promise((resolve) => process.send?.({ migrations }, undefined, undefined, resolve));
      await listener.close();
      await pool.close();
      disk.close();
      process.exit(0);
    })();
  });
  process.send?.({ ready: endpoints, diskSize: extentCount * ExtentSize });
}

/** IoEngine tuning under test, from the child's environment: VDMAP_POLL_US, VDMAP_WAIT_US (defaults otherwise). */
function engineKnobs(): { pollMicroseconds?: number; waitMicroseconds?: number } {
  const knob = (name: string): number | undefined => (process.env[name] === undefined ? undefined : Number(process.env[name]));
  return { pollMicroseconds: knob('VDMAP_POLL_US'), waitMicroseconds: knob('VDMAP_WAIT_US') };
}

/** A fixed permutation (A1): deterministic, so runs are comparable. */
function shuffledExtents(count: number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [device, size, socketPath, threads] = process.argv.slice(2);
  await serveInChild(device, Number(size), socketPath, Number(threads));
}

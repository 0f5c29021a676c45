/**
 * npm run bench:push [-- --agents 1,64] [--small-rounds N] [--full-rounds N] [--json]
 *
 * Push-to-applied latency: from the moment an admin client sends `table.push` until every attached agent has
 * made the new epoch live in its shared table (its 'applied' event, which fires right after the epoch flip),
 * p50 and p99 over the rounds, for
 *   small-delta   a 64-extent disk whose push changes one extent (one `delta` message of one entry);
 *   full-table    a 1M-extent disk (4 KiB extents) whose push moves every extent (above the delta limit, so a
 *                 full table travels in chunks and every agent validates and stages all of it),
 * with 1 agent and with 64 agents. The controller runs in its own process, as in production; the agents share
 * this process (control-plane-only agents: workers 0, no NBD), so the 64-agent figures include 64 agents taking
 * turns on one event loop. The device is a sparse file; no data I/O happens. A benchmark, not a test: nothing
 * asserts.
 */
import { spawn } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { type AgentHandle, startAgent } from '../src/agent/agent.js';
import { type AdminClient, connectAdmin } from '../src/controller/admin-client.js';
import type { TableJson } from '../src/table/codec.js';
import { machineFacts } from './support/machine.js';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '1,64' },
    'small-rounds': { type: 'string', default: '200' },
    'full-rounds': { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const MiB = 1024 * 1024;
const SMALL = { name: 'small', extentSize: MiB, extents: 64 };
const FULL = { name: 'big', extentSize: 4096, extents: 1 << 20 };
/** Room for the small disk, the big disk at two bases (the full push alternates between them), and a spare. */
const DEVICE_BYTES = SMALL.extents * MiB + 3 * FULL.extents * FULL.extentSize;

interface Result {
  case: string;
  agents: number;
  rounds: number;
  /** Push sent -> the last agent applied it. */
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  /** Push sent -> each agent applied it (every agent of every round). */
  each_p50_ms: number;
  each_p99_ms: number;
}

/** The controller in its own process; resolves with its Unix socket once it listens. */
async function spawnController(dataDir: string): Promise<{ socket: string; stop: () => Promise<void> }> {
  const module = new URL('../src/controller/controller.js', import.meta.url).href;
  const script = `
    import { startController } from ${JSON.stringify(module)};
    import { pino } from 'pino';
    const handle = await startController({ dataDir: ${JSON.stringify(dataDir)}, listen: false, leaseMs: 60000,
      logger: pino({ level: 'warn' }, pino.destination(2)) });
    process.stdout.write(JSON.stringify(handle.addresses) + '\\n');
    process.once('SIGTERM', () => handle.close().then(() => process.exit(0)));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], cwd: new URL('..', import.meta.url).pathname });
  const addresses = await new Promise<{ socketPath: string }>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]) as { socketPath: string });
    });
    child.once('exit', (code) => reject(new Error(`the controller exited with ${code}`)));
  });
  return {
    socket: addresses.socketPath,
    stop: () => new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

function sparseDevice(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** Agents in this process; `applied(disk, epoch)` resolves when all of them made the epoch live. */
class AgentGroup {
  private readonly waiters = new Map<string, { remaining: Set<string>; started: number; each: number[]; resolve: (each: number[]) => void }>();

  constructor(readonly handles: Map<string, AgentHandle>) {
    for (const [name, handle] of handles) {
      handle.events.on('applied', (disk: string, epoch: number) => {
        const waiter = this.waiters.get(`${disk}@${epoch}`);
        if (waiter === undefined || !waiter.remaining.delete(name)) return;
        waiter.each.push(performance.now() - waiter.started);
        if (waiter.remaining.size === 0) {
          this.waiters.delete(`${disk}@${epoch}`);
          waiter.resolve(waiter.each);
        }
      });
    }
  }

  /** Call before the push is sent; `started` is the push's send time. */
  expect(disk: string, epoch: number, started: number): Promise<number[]> {
    return new Promise((resolve) => this.waiters.set(`${disk}@${epoch}`, { remaining: new Set(this.handles.keys()), started, each: [], resolve }));
  }
}

async function measure(admin: AdminClient, group: AgentGroup, label: string, disk: string, rounds: number,
  tableFor: (round: number, header: TableJson) => TableJson): Promise<Result> {
  const header = await admin.call('table.show', { disk });
  let epoch = header.epoch;
  const all: number[] = [];
  const each: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    const applied = group.expect(disk, epoch + 1, started);
    const pushed = await admin.call('table.push', { disk, table: tableFor(round, header) });
    epoch = pushed.epoch;
    const perAgent = await applied;
    all.push(performance.now() - started);
    each.push(...perAgent);
  }
  all.sort((a, b) => a - b);
  each.sort((a, b) => a - b);
  const result: Result = {
    case: label, agents: group.handles.size, rounds, p50_ms: percentile(all, 0.5), p99_ms: percentile(all, 0.99),
    mean_ms: all.reduce((sum, value) => sum + value, 0) / all.length, each_p50_ms: percentile(each, 0.5), each_p99_ms: percentile(each, 0.99),
  };
  if (!values.json) {
    console.log(`${label.padEnd(12)} agents ${String(result.agents).padStart(3)}  rounds ${String(rounds).padStart(4)}  ` +
      `all applied p50 ${result.p50_ms.toFixed(2).padStart(8)} ms p99 ${result.p99_ms.toFixed(2).padStart(8)} ms   ` +
      `each agent p50 ${result.each_p50_ms.toFixed(2).padStart(8)} ms p99 ${result.each_p99_ms.toFixed(2).padStart(8)} ms`);
  }
  return result;
}

async function runWith(agentCount: number): Promise<Result[]> {
  const directory = mkdtempSync(join(tmpdir(), 'vdmap-push-bench-'));
  const device = join(directory, 'device.img');
  sparseDevice(device, DEVICE_BYTES);
  const controller = await spawnController(join(directory, 'controller'));
  const admin = await connectAdmin(controller.socket, { callTimeoutMs: 600_000 });
  const handles = new Map<string, AgentHandle>();
  try {
    const names = Array.from({ length: agentCount }, (_, index) => `bench-${index}`);
    await admin.call('device.add', { id: 'dev0', size: DEVICE_BYTES, logicalBlockSize: 512, paths: names.map((agent) => ({ agent, path: device })) });
    for (const disk of [SMALL, FULL]) {
      await admin.call('disk.create', { name: disk.name, size: disk.extents * disk.extentSize, extentSize: disk.extentSize });
    }
    const logger = pino({ level: 'warn' }, pino.destination(2));
    for (const name of names) {
      const { credential } = await admin.call('agent.enroll', { name });
      for (const disk of [SMALL, FULL]) await admin.call('disk.attach', { disk: disk.name, agent: name });
      const handle = await startAgent({
        controller: controller.socket, name, credential, dataDir: join(directory, name), workers: 0, logger,
      });
      handles.set(name, handle);
    }
    await waitForFirstTables(handles);
    const group = new AgentGroup(handles);
    const bigBase = SMALL.extents * (MiB / FULL.extentSize);
    /** Past both layouts of the big disk: where the small disk's extent 0 moves to and back. */
    const smallSpare = (SMALL.extents * MiB + 2 * FULL.extents * FULL.extentSize) / MiB;
    const results = [
      await measure(admin, group, 'small-delta', SMALL.name, Number(values['small-rounds']), (round, header) => ({
        ...header, entries: [
          { extent: 0, device: 'dev0', physical: round % 2 === 0 ? smallSpare : 0 },
          { extent: 1, count: SMALL.extents - 1, device: 'dev0', physical: 1 },
        ],
      })),
      await measure(admin, group, 'full-table', FULL.name, Number(values['full-rounds']), (round, header) => ({
        ...header, entries: [{ extent: 0, count: FULL.extents, device: 'dev0', physical: bigBase + (round % 2 === 0 ? FULL.extents : 0) }],
      })),
    ];
    return results;
  } finally {
    await Promise.all([...handles.values()].map((handle) => handle.close()));
    await admin.close();
    await controller.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Every agent holds both disks at epoch 1 (their first full tables arrived). */
async function waitForFirstTables(handles: Map<string, AgentHandle>): Promise<void> {
  for (;;) {
    const ready = [...handles.values()].every((handle) => {
      const disks = handle.inspect().disks;
      return disks.length === 2 && disks.every((disk) => disk.epoch === 1);
    });
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main(): Promise<void> {
  const counts = values.agents.split(',').map(Number);
  const results: Result[] = [];
  for (const count of counts) results.push(...(await runWith(count)));
  const machine = machineFacts('sparse file');
  if (values.json) console.log(JSON.stringify({ machine, results }, null, 1));
  else console.log(`\n${JSON.stringify(machine)}\nall applied = push sent -> the last agent's epoch flip; each agent = the same per agent.`);
}

await main();

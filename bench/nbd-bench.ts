/**
 * npm run bench:nbd [-- --device PATH] [--runtime SECONDS (5)] [--rounds N (3)] [--threads N (2)] [--jobs a,b]
 *                   [--baseline DIST] [--pin] [--json]
 *
 * vdmap's NBD export against qemu-nbd and nbdkit serving the same device, with fio's io_uring engine on the
 * device itself as the ceiling, in ONE run, job by job (the four StandardJobs), with ratios.
 *
 *   raw       fio --ioengine=io_uring --direct=1 --filename=DEVICE
 *   qemu-nbd  qemu-nbd -f raw --cache=none --aio=io_uring -e 8 -t DEVICE          (fio --ioengine=nbd)
 *   nbdkit    nbdkit -f -U SOCKET file DEVICE cache=none                             (fio --ioengine=nbd)
 *   vdmap     the agent (bench/support/nbd-agent.ts: main thread + I/O workers, shuffled 1 MiB-extent table)
 *
 * Every server runs for the whole benchmark; each job is run against each system in turn (the order rotates every
 * round, so drift on a shared machine does not always favour the same side). With --rounds N each cell is the round
 * with the median IOPS, and each ratio (vdmap / peer) is the median over rounds of the two systems' ratio in the same
 * round: systems measured seconds apart share the machine's state of that moment, so a burst of load from elsewhere
 * moves both sides of a ratio rather than one side of it. Besides IOPS, MB/s and completion latency percentiles, each
 * server's CPU time (all its threads, from /proc) per I/O is reported: a fairer figure than IOPS when the machine is
 * busy; so is fio's own CPU per I/O (the client's share) and how busy the machine's CPUs were during the cell: when
 * they are near 100%, the sum of server, client and kernel work per I/O is what bounds IOPS.
 * With --baseline DIST (another build's dist/ directory, e.g. from `git worktree add /tmp/base HEAD~1 && cd
 * /tmp/base && npm ci`), that build's agent serves the same device too, as system `baseline`, and the table gains
 * a vdmap / baseline column: an A/B of two builds in one run, which is how a change's gain is measured here.
 * With --pin every server runs on the first half of the CPUs and fio on the rest (bench/support/cpu-pinning.ts):
 * client and server on separate cores, as with two machines, instead of wherever the scheduler puts them.
 * Without --device it makes a 1 GiB tmpfs-backed loop device (root). fio reads/writes the first 512 MiB.
 * A benchmark, not a test: nothing asserts. Needs fio, qemu-nbd, nbdkit (apt-get install -y fio qemu-utils nbdkit).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type JobResult, type JobSpec, requireTool, runFio, StandardJobs } from './support/fio.js';
import { pinProcess, splitCpus } from './support/cpu-pinning.js';
import { machineFacts } from './support/machine.js';
import { startAgent } from './support/nbd-agent.js';
import { processCpuSeconds, startNbdkit, startQemuNbd } from './support/nbd-peers.js';
import { scratchDevice } from './support/scratch-device.js';

const { values } = parseArgs({
  options: {
    device: { type: 'string' },
    runtime: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    jobs: { type: 'string' },
    baseline: { type: 'string' },
    pin: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const runtimeSeconds = Number(values.runtime);
const rounds = Math.max(1, Number(values.rounds));
const region = 512 * 1024 * 1024;
const cpus = values.pin ? splitCpus() : undefined;
if (values.pin && cpus === undefined) throw new Error('--pin needs at least 2 CPUs: one for the servers, one for fio');
let rowsPrinted = 0;

type SystemName = 'vdmap' | 'qemu-nbd' | 'nbdkit' | 'raw' | 'baseline';
type PeerName = Exclude<SystemName, 'vdmap'>;
const Peers: PeerName[] = ['qemu-nbd', 'nbdkit', 'raw', 'baseline'];
/** A job's row: each system's median cell, and vdmap's ratio to each peer (median of per-round ratios). */
type Row = { job: string; ratios: Partial<Record<PeerName, number>> } & Partial<Record<SystemName, Cell>>;
const Systems: SystemName[] = ['raw', 'qemu-nbd', 'nbdkit', 'vdmap', ...(values.baseline ? ['baseline' as const] : [])];

/** One system as fio sees it: the fio target arguments and, for servers, the process whose CPU is counted. */
interface Target {
  fioArguments: string[];
  pid?: number;
}

interface Cell extends JobResult {
  /** Server CPU time (every thread of its process) per I/O, microseconds; absent for raw. */
  cpu_us_per_io?: number;
  /** Share of the machine's CPU time (all CPUs) that was busy during the cell, 0..1. */
  machine_busy: number;
}

function measure(job: JobSpec, target: Target): Cell {
  const cpuBefore = target.pid === undefined ? 0 : processCpuSeconds(target.pid);
  const machineBefore = machineCpuTicks();
  const result = runFio(job, target.fioArguments, runtimeSeconds, region, cpus?.client);
  const machineAfter = machineCpuTicks();
  const cell: Cell = { ...result, machine_busy: 1 - (machineAfter.idle - machineBefore.idle) / Math.max(1, machineAfter.total - machineBefore.total) };
  if (target.pid !== undefined) {
    const ios = result.iops * runtimeSeconds;
    cell.cpu_us_per_io = ios > 0 ? ((processCpuSeconds(target.pid) - cpuBefore) * 1e6) / ios : 0;
  }
  return cell;
}

/** All CPUs' ticks from /proc/stat: total, and idle + iowait. */
function machineCpuTicks(): { total: number; idle: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return { total: fields.reduce((sum, value) => sum + value, 0), idle: fields[3] + fields[4] };
}

function median(cells: Cell[]): Cell {
  const sorted = [...cells].sort((a, b) => a.iops - b.iops);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** vdmap IOPS / peer IOPS round by round (same index, same round); the median of those ratios. */
function pairedRatio(vdmap: Cell[], peer: Cell[]): number {
  const ratios = vdmap.map((cell, round) => cell.iops / Math.max(peer[round].iops, 1e-9)).sort((a, b) => a - b);
  const middle = ratios.length >> 1;
  return ratios.length % 2 === 1 ? ratios[middle] : (ratios[middle - 1] + ratios[middle]) / 2;
}

async function main(): Promise<void> {
  requireTool('fio', 'apt-get install -y fio');
  requireTool('qemu-nbd', 'apt-get install -y qemu-utils');
  requireTool('nbdkit', 'apt-get install -y nbdkit');
  const jobs = values.jobs ? StandardJobs.filter((job) => values.jobs!.split(',').includes(job.name)) : StandardJobs;
  const device = scratchDevice(values.device);
  const directory = mkdtempSync(join(tmpdir(), 'vdmap-nbd-bench-'));
  const stoppers: Array<() => Promise<void>> = [];
  const results: Row[] = [];
  try {
    const qemu = await startQemuNbd(device.path, join(directory, 'qemu-nbd.sock'));
    stoppers.push(() => qemu.stop());
    const nbdkit = await startNbdkit(device.path, join(directory, 'nbdkit.sock'));
    stoppers.push(() => nbdkit.stop());
    const agent = await startAgent({ device: device.path, deviceSize: device.size, socketPath: join(directory, 'vdmap.sock'), threads: Number(values.threads) });
    stoppers.push(async () => { await agent.stop(); });
    const targets: Partial<Record<SystemName, Target>> = {
      raw: { fioArguments: [`--filename=${device.path}`, '--ioengine=io_uring', '--direct=1'] },
      'qemu-nbd': { fioArguments: ['--ioengine=nbd', `--uri=${qemu.uri}`], pid: qemu.pid },
      nbdkit: { fioArguments: ['--ioengine=nbd', `--uri=${nbdkit.uri}`], pid: nbdkit.pid },
      vdmap: { fioArguments: ['--ioengine=nbd', `--uri=${agent.uri}`], pid: agent.pid },
    };
    if (values.baseline) {
      const baseline = await startAgent({
        device: device.path, deviceSize: device.size, socketPath: join(directory, 'baseline.sock'), threads: Number(values.threads),
        agentScript: join(values.baseline, 'bench', 'support', 'nbd-agent.js'),
      });
      stoppers.push(async () => { await baseline.stop(); });
      targets.baseline = { fioArguments: ['--ioengine=nbd', `--uri=${baseline.uri}`], pid: baseline.pid };
    }
    if (cpus !== undefined) {
      for (const target of Object.values(targets)) if (target.pid !== undefined) pinProcess(target.pid, cpus.server);
    }
    for (const job of jobs) {
      const cells = new Map<SystemName, Cell[]>(Systems.map((system) => [system, []]));
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < Systems.length; i++) {
          const system = Systems[(i + round) % Systems.length];
          cells.get(system)!.push(measure(job, targets[system]!));
        }
      }
      const row: Row = { job: job.name, ratios: {} };
      for (const system of Systems) row[system] = median(cells.get(system)!);
      for (const peer of Peers) if (Systems.includes(peer)) row.ratios[peer] = pairedRatio(cells.get('vdmap')!, cells.get(peer)!);
      results.push(row);
      if (!values.json) printRow(row);
    }
  } finally {
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
    rmSync(directory, { recursive: true, force: true });
    device.dispose();
  }
  const machine = { ...machineFacts(device.path), runtimeSeconds, rounds, threads: Number(values.threads), region, ...(cpus ? { serverCpus: cpus.server, clientCpus: cpus.client } : {}) };
  if (values.json) {
    console.log(JSON.stringify({ machine, jobs: results }, null, 1));
    return;
  }
  console.log(`\n${JSON.stringify(machine)}`);
  console.log(`ratios are vdmap IOPS / peer IOPS in the same round, median over rounds; cpu = server CPU time per I/O (all threads); fio = the client's CPU time per I/O;`);
  console.log(`busy = share of all CPUs busy during the cell; ${runtimeSeconds}s per cell, ${rounds} round(s), median shown.`);
  if (cpus) console.log(`--pin: every server on CPU ${cpus.server}, fio on CPU ${cpus.client}.`);
}

function printRow(row: Row): void {
  const cell = (r: Cell) => `${(r.iops / 1000).toFixed(1).padStart(6)}K ${r.mbps.toFixed(0).padStart(5)}MB/s p50 ${r.p50_us.toFixed(0).padStart(5)} p99 ${r.p99_us.toFixed(0).padStart(6)}` +
    (r.cpu_us_per_io === undefined ? ' '.repeat(11) : ` cpu ${r.cpu_us_per_io.toFixed(1).padStart(6)}`) +
    ` fio ${(r.client_cpu_us_per_io ?? 0).toFixed(1).padStart(6)} busy ${(r.machine_busy * 100).toFixed(0).padStart(3)}%`;
  const peers = Systems.filter((system) => system !== 'vdmap');
  if (rowsPrinted++ === 0) {
    const header = Peers.filter((peer) => Systems.includes(peer)).map((peer) => `vs ${peer}`.padStart(12)).join('');
    console.log(`${'job'.padEnd(18)} ${'system'.padEnd(9)} ${'IOPS, MB/s, latency us, server and fio cpu us/IO, machine busy'.padEnd(86)}${header}`);
  }
  const ratios = Peers.filter((peer) => row.ratios[peer] !== undefined).map((peer) => row.ratios[peer]!.toFixed(2).padStart(12)).join('');
  for (const system of ['vdmap', ...peers] as const) {
    console.log(`${(system === 'vdmap' ? row.job : '').padEnd(18)} ${system.padEnd(9)} ${cell(row[system]!)}${system === 'vdmap' ? ratios : ''}`);
  }
}
await main();

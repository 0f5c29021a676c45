/**
 * fio as a peer in benchmarks: runs one job and returns IOPS, bandwidth and latency percentiles.
 * Needs fio (apt-get install -y fio); the nbd engine comes with Debian's fio.
 */
import { execFileSync } from 'node:child_process';

export interface JobSpec {
  /** Name printed and used in --json, e.g. randread-4k-qd32. */
  name: string;
  rw: 'randread' | 'randwrite' | 'read' | 'write';
  blockSize: number;
  queueDepth: number;
}

export interface JobResult {
  iops: number;
  mbps: number;
  p50_us: number;
  p99_us: number;
  /** fio's own CPU time (user + system) per I/O, microseconds: what the client costs. */
  client_cpu_us_per_io?: number;
}

/** The four jobs every vdmap benchmark reports. */
export const StandardJobs: JobSpec[] = [
  { name: 'randread-4k-qd1', rw: 'randread', blockSize: 4096, queueDepth: 1 },
  { name: 'randread-4k-qd32', rw: 'randread', blockSize: 4096, queueDepth: 32 },
  { name: 'randwrite-4k-qd32', rw: 'randwrite', blockSize: 4096, queueDepth: 32 },
  { name: 'read-1m-qd8', rw: 'read', blockSize: 1024 * 1024, queueDepth: 8 },
];

export function requireTool(tool: string, install: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} is missing: ${install}`);
  }
}

/**
 * Runs one fio job; `target` is fio arguments naming the engine and file or URI; `cpus` (a CPU list) keeps fio on
 * those CPUs.
 */
export function runFio(job: JobSpec, target: string[], runtimeSeconds: number, sizeBytes: number, cpus?: string): JobResult {
  requireTool('fio', 'apt-get install -y fio');
  const output = execFileSync('fio', [
    '--name=vdmap-bench', ...target, ...(cpus === undefined ? [] : [`--cpus_allowed=${cpus}`]),
    `--rw=${job.rw}`, `--bs=${job.blockSize}`, `--iodepth=${job.queueDepth}`,
    `--size=${sizeBytes}`, `--runtime=${runtimeSeconds}`, '--time_based', '--group_reporting', '--output-format=json',
  ], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  const json = JSON.parse(output.slice(output.indexOf('{'))) as { jobs: Array<Record<string, FioSide> & FioCpu> };
  const result = json.jobs[0];
  const side = result.read.io_bytes > 0 ? result.read : result.write;
  const clientCpuFraction = (result.usr_cpu + result.sys_cpu) / 100;
  const percentiles = side.clat_ns.percentile ?? {};
  return {
    iops: side.iops, mbps: side.bw_bytes / 1e6,
    p50_us: (percentiles['50.000000'] ?? 0) / 1e3, p99_us: (percentiles['99.000000'] ?? 0) / 1e3,
    client_cpu_us_per_io: side.iops > 0 ? (clientCpuFraction * 1e6) / side.iops : 0,
  };
}

/** Percent of one CPU fio's job used, over its run. */
interface FioCpu {
  usr_cpu: number;
  sys_cpu: number;
}

interface FioSide {
  io_bytes: number;
  iops: number;
  bw_bytes: number;
  clat_ns: { percentile?: Record<string, number> };
}

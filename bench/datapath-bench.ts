/**
 * npm run bench:datapath [-- --device PATH] [--runtime SECONDS] [--json]
 *
 * The VirtualDisk API and fio's io_uring engine on the same device in the same run, job by job, with ratios.
 * vdmap side: a closed loop of `queueDepth` requests on one thread (the way an NBD worker drives its disk),
 * through a 1 MiB-extent table that maps the disk onto the device in shuffled extent order.
 * fio side: --ioengine=io_uring --direct=1 on the raw device, one job, same block size, depth and region.
 * Without --device it makes a 1 GiB tmpfs-backed loop device (root). A benchmark, not a test: nothing asserts.
 */
import { parseArgs } from 'node:util';
import { AgentDisk } from '../src/agent/agent-disk.js';
import { IoEngine } from '../src/agent/io-engine.js';
import { VirtualDisk } from '../src/agent/virtual-disk.js';
import { emptyDocument } from '../src/table/document.js';
import { readFrom, writeTo } from '../src/nbd/export.js';
import { type JobResult, type JobSpec, runFio, StandardJobs } from './support/fio.js';
import { machineFacts } from './support/machine.js';
import { scratchDevice } from './support/scratch-device.js';

const { values } = parseArgs({ options: { device: { type: 'string' }, poll: { type: 'string', default: '0' }, runtime: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } } });
const runtimeSeconds = Number(values.runtime);
const region = 512 * 1024 * 1024;
const extentSize = 1024 * 1024;

async function openDisk(path: string) {
  const extentCount = region / extentSize;
  const agentDisk = new AgentDisk({ name: 'bench', size: region, extentCapacity: extentCount, readerSlots: 2 });
  agentDisk.attachDevice('d0', path);
  const doc = emptyDocument('bench', 1, extentSize, extentCount);
  doc.devices = ['d0'];
  const order = Array.from({ length: extentCount }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) { const j = (i * 7919) % (i + 1); [order[i], order[j]] = [order[j], order[i]]; }
  for (let i = 0; i < extentCount; i++) { doc.device[i] = 0; doc.physicalExtent[i] = order[i]; doc.state[i] = 0; }
  await agentDisk.applyDocument(doc);
  const engine = new IoEngine({ ringEntries: 256, poolBytes: 128 * 1024 * 1024, pollMicroseconds: Number(values.poll) });
  const disk = new VirtualDisk({ ...agentDisk.share(), table: agentDisk.views, readerSlot: 0, engine, locks: agentDisk.locks, faults: () => {} });
  return { agentDisk, engine, disk };
}

async function runVdmap(disk: VirtualDisk, job: JobSpec): Promise<JobResult> {
  const blocks = region / job.blockSize;
  const payload = new Uint8Array(job.blockSize).fill(0xa5);
  const latencies = new Float64Array(20_000_000);
  let count = 0;
  let bytes = 0;
  let sequential = 0;
  const deadline = performance.now() + runtimeSeconds * 1000;
  const nextOffset = () => {
    if (job.rw === 'read' || job.rw === 'write') return ((sequential++) % blocks) * job.blockSize;
    return Math.floor(Math.random() * blocks) * job.blockSize;
  };
  const loop = async () => {
    while (performance.now() < deadline) {
      const offset = nextOffset();
      const started = performance.now();
      if (job.rw.endsWith('read')) (await readFrom(disk, offset, job.blockSize)).release();
      else await writeTo(disk, offset, payload, false);
      if (count < latencies.length) latencies[count] = performance.now() - started;
      count++;
      bytes += job.blockSize;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: job.queueDepth }, loop));
  const seconds = (performance.now() - started) / 1000;
  const sorted = latencies.subarray(0, Math.min(count, latencies.length)).sort();
  const percentile = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] * 1000;
  return { iops: count / seconds, mbps: bytes / seconds / 1e6, p50_us: percentile(0.5), p99_us: percentile(0.99) };
}

async function main(): Promise<void> {
  const device = scratchDevice(values.device);
  const { agentDisk, engine, disk } = await openDisk(device.path);
  const jobs: Array<{ job: string; vdmap: JobResult; fio: JobResult; ratio: number }> = [];
  try {
    for (const job of StandardJobs) {
      const fio = runFio(job, [`--filename=${device.path}`, '--ioengine=io_uring', '--direct=1'], runtimeSeconds, region);
      const vdmap = await runVdmap(disk, job);
      jobs.push({ job: job.name, vdmap, fio, ratio: vdmap.iops / fio.iops });
      if (!values.json) printRow(job.name, vdmap, fio);
    }
  } finally {
    disk.close();
    engine.close();
    agentDisk.close();
    device.dispose();
  }
  const machine = { ...machineFacts(device.path), ring: engine.features };
  if (values.json) console.log(JSON.stringify({ machine, jobs }, null, 1));
  else console.log(`\n${JSON.stringify(machine)}\nratio = vdmap IOPS / fio IOPS; each job ran ${runtimeSeconds}s per side, one after the other.`);
}

function printRow(name: string, vdmap: JobResult, fio: JobResult): void {
  const cell = (r: JobResult) => `${r.iops.toFixed(0).padStart(8)} IOPS ${r.mbps.toFixed(0).padStart(6)} MB/s p50 ${r.p50_us.toFixed(1).padStart(6)}us p99 ${r.p99_us.toFixed(1).padStart(7)}us`;
  if (name === StandardJobs[0].name) console.log(`${'job'.padEnd(20)} ${'vdmap'.padEnd(56)} ${'fio io_uring'.padEnd(56)} ratio`);
  console.log(`${name.padEnd(20)} ${cell(vdmap)}   ${cell(fio)}   ${(vdmap.iops / fio.iops).toFixed(2)}`);
}

await main();

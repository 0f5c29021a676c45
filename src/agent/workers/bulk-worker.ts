/**
 * The bulk worker: piscina tasks that are too big for an event loop that serves I/O. Each task is
 * self-contained and returns a plain result (or throws a VdmapError, which piscina hands back as an Error whose
 * message carries the record: see bulk-pool.ts).
 *
 *   copy-range      copies bytes between two open devices through this thread's own ring, in 1 MiB chunks with
 *                   up to 8 in flight, then fdatasyncs the target (migration and evacuation copy jobs)
 *   validate-table  validates a whole table document against device geometry (src/table/validate.ts)
 *
 * Thread: a piscina worker of the bulk pool; never an I/O worker (which runs one long serve task).
 */
import { toErrorRecord } from '../../errors/error.js';
import { deviceError } from '../../errors/errno.js';
import type { TableDocument } from '../../table/document.js';
import { type DeviceGeometry, type TableProblem, validateDocument } from '../../table/validate.js';
import { IoEngine } from '../io-engine.js';
import type { PoolBlock } from '../buffer-pool.js';

export interface CopyRangeTask {
  kind: 'copy-range';
  sourceFd: number;
  sourceOffset: number;
  targetFd: number;
  targetOffset: number;
  length: number;
}

export interface ValidateTableTask {
  kind: 'validate-table';
  document: TableDocument;
  devices: Array<[string, DeviceGeometry]>;
  diskSize?: number;
}

export type BulkTask = CopyRangeTask | ValidateTableTask;
export type BulkResult = { kind: 'copied'; bytes: number } | { kind: 'validated'; problems: TableProblem[] };

const Chunk = 1024 * 1024;
const Depth = 8;
let engine: IoEngine | undefined;

export default async function run(task: BulkTask): Promise<BulkResult> {
  try {
    if (task.kind === 'copy-range') return { kind: 'copied', bytes: await copyRange(task) };
    return { kind: 'validated', problems: validateDocument(task.document, new Map(task.devices), { diskSize: task.diskSize }) };
  } catch (error) {
    throw new Error(JSON.stringify(toErrorRecord(error)));
  }
}

async function copyRange(task: CopyRangeTask): Promise<number> {
  engine ??= new IoEngine({ ringEntries: 32, poolBytes: Chunk * Depth });
  const io = engine;
  let next = 0;
  const worker = async () => {
    const block = await io.pool.allocate(Chunk);
    try {
      while (next < task.length) {
        const offset = next;
        next += Chunk;
        const length = Math.min(Chunk, task.length - offset);
        await transfer((done) => io.read(task.sourceFd, block, 0, length, task.sourceOffset + offset, done), length, 'copy read');
        await transfer((done) => io.write(task.targetFd, block, 0, length, task.targetOffset + offset, 0, done), length, 'copy write');
      }
    } finally {
      io.pool.release(block as PoolBlock);
    }
  };
  await Promise.all(Array.from({ length: Depth }, worker));
  await transfer((done) => io.fsync(task.targetFd, done), 0, 'copy flush');
  return task.length;
}

function transfer(issue: (done: (result: number) => void) => void, expected: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => issue((result) => {
    if (result === expected) resolve();
    else reject(result < 0 ? deviceError(result, what) : deviceError(-5, `${what} (short: ${result} of ${expected} bytes)`));
  }));
}

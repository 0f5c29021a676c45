/**
 * BulkPool: piscina workers for bulk work that must not run on an I/O thread or the agent's main thread:
 * copy jobs (migration, evacuation) and validating or building big tables. Sized small (bulk work competes
 * with I/O for the same cores) and idle threads exit.
 *
 * Errors: a task's VdmapError comes back with its code (the worker serialises the ErrorRecord into the Error's
 * message, because an Error crossing threads loses its code).
 * Thread: the agent's (or controller's) main thread.
 */
import { Piscina } from 'piscina';
import { isErrorRecord, VdmapError } from '../../errors/error.js';
import type { TableDocument } from '../../table/document.js';
import type { DeviceGeometry, TableProblem } from '../../table/validate.js';
import type { BulkResult, BulkTask, CopyRangeTask } from './bulk-worker.js';

export class BulkPool {
  private readonly piscina: Piscina<BulkTask, BulkResult>;

  constructor(options: { threads?: number } = {}) {
    this.piscina = new Piscina({
      filename: new URL('./bulk-worker.js', import.meta.url).href,
      minThreads: 0, maxThreads: options.threads ?? 1, idleTimeout: 5_000,
    });
  }

  /** Copies `length` bytes between two open devices and makes the copy durable. */
  async copyRange(copy: Omit<CopyRangeTask, 'kind'>): Promise<number> {
    const result = await this.run({ kind: 'copy-range', ...copy });
    return result.kind === 'copied' ? result.bytes : 0;
  }

  /** Every problem of a table (src/table/validate.ts), computed off the calling thread. */
  async validateTable(document: TableDocument, devices: ReadonlyMap<string, DeviceGeometry>, diskSize?: number): Promise<TableProblem[]> {
    const result = await this.run({ kind: 'validate-table', document, devices: [...devices], diskSize });
    return result.kind === 'validated' ? result.problems : [];
  }

  close(): Promise<void> {
    return this.piscina.close();
  }

  private async run(task: BulkTask): Promise<BulkResult> {
    try {
      return await this.piscina.run(task);
    } catch (error) {
      throw recordError(error);
    }
  }
}

function recordError(error: unknown): unknown {
  try {
    const record: unknown = JSON.parse((error as Error).message);
    if (isErrorRecord(record)) return VdmapError.fromRecord(record);
  } catch { /* not a serialised record */ }
  return error;
}

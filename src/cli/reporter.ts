/**
 * Reporter: the one place the CLI writes results and errors, for people (default) and for scripts (--json).
 *
 * Owns: output format and the exit code. A result prints as text or as one JSON document; an error prints as
 * `CODE: message` plus the operator's hint (no stack) or, with --json, as the ErrorRecord. The exit code is the
 * code's catalogue exit status (src/errors/catalogue.ts), so scripts can rely on it. An unexpected error (a bug)
 * keeps its stack, because that is what a bug report needs.
 */
import type { Writable } from 'node:stream';
import { Catalogue, ExitCode } from '../errors/catalogue.js';
import { type ErrorRecord, isErrorRecord, toErrorRecord, VdmapError } from '../errors/error.js';

export class Reporter {
  constructor(private readonly stdout: Writable, private readonly stderr: Writable, readonly json: boolean) {}

  /** Prints a result; `human` renders it for people. Returns ExitCode.Ok. */
  result<T>(value: T, human: (value: T) => string): number {
    if (this.json) this.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
    else {
      const text = human(value);
      if (text.length > 0) this.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
    return ExitCode.Ok;
  }

  /** Prints a failure and returns its exit code. */
  failure(error: unknown): number {
    const record = toErrorRecord(error);
    if (this.json) {
      this.stdout.write(`${JSON.stringify({ error: record }, jsonReplacer, 2)}\n`);
    } else {
      this.stderr.write(`${record.code}: ${record.message}\n`);
      this.writeProblems(record);
      this.stderr.write(`hint: ${Catalogue[record.code].hint}\n`);
      if (record.code === 'VDM_INTERNAL' && typeof record.details?.stack === 'string') this.stderr.write(`${record.details.stack}\n`);
    }
    return exitCodeOf(record);
  }

  /**
   * The first PRINTED_PROBLEMS of details.problems, then how many more there are in all: details.problemCount
   * is the true total, details.problems only the first ones the sender listed (validate.ts tableProblemsError).
   */
  private writeProblems(record: ErrorRecord): void {
    const listedProblems = record.details?.problems;
    if (!Array.isArray(listedProblems)) return;
    const problems = listedProblems as Array<{ extent?: number | null; code?: string; message?: string }>;
    const count = record.details?.problemCount;
    const total = typeof count === 'number' && Number.isSafeInteger(count) && count >= problems.length ? count : problems.length;
    const printed = problems.slice(0, PRINTED_PROBLEMS);
    for (const problem of printed) this.stderr.write(`  extent ${problem.extent ?? '-'}: ${problem.code ?? ''} ${problem.message ?? ''}\n`);
    const more = total - printed.length;
    if (more <= 0) return;
    const json = problems.length >= total ? '--json lists them all' : `--json lists the first ${problems.length} of ${total}`;
    this.stderr.write(`  ... and ${more} more (${total} in all; ${json})\n`);
  }
}

/** How many problems the human output prints before summarising the rest. */
export const PRINTED_PROBLEMS = 20;

export function exitCodeOf(error: unknown): number {
  if (error instanceof VdmapError) return Catalogue[error.code].exit;
  if (isErrorRecord(error)) return Catalogue[(error as ErrorRecord).code].exit;
  return ExitCode.Internal;
}

/** JSON for typed arrays and bigints, which JSON.stringify would mangle. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number>);
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** Aligned text columns for human output. */
export function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  return cells.map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd()).join('\n');
}

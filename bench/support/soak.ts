/**
 * A soak run: fio writes and verifies (crc32c) through vdmap's NBD export, over two connections, while the agent
 * migrates extents underneath (migrator.ts): sustained load on the data path, the epoch flips, the holds and the
 * copy path at once, checked by a client nobody here wrote.
 *
 * Owns: one run's agent child and fio process, and the summary. Does not know: how the agent serves or migrates.
 *
 * Invariants:
 *   K1. Each fio job writes and verifies its own half of the disk (offset_increment), so a verify failure can only
 *       mean the disk returned other bytes than the job last wrote there.
 *   K2. verify_backlog makes fio read back and check what it wrote while the run goes on, not only at its end.
 *   K3. The agent child is stopped (and its migration counts collected) whatever the run's outcome.
 * Needs: fio (apt-get install -y fio).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './fio.js';
import type { MigrationCounts } from './migrator.js';
import { startAgent } from './nbd-agent.js';

export interface SoakOptions {
  device: string;
  deviceSize: number;
  seconds: number;
  /** Pause between migrations (ms). */
  migrateEveryMs: number;
  /** I/O worker threads of the agent. */
  threads?: number;
}

export interface SoakResult {
  seconds: number;
  /** fio's exit code: 0 when every verify matched. */
  fioExitCode: number;
  verifyErrors: number;
  writeIops: number;
  writeP99Us: number;
  migrations: MigrationCounts;
  /** The end of fio's error output when it failed. */
  fioErrors: string;
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  requireTool('fio', 'apt-get install -y fio');
  const directory = mkdtempSync(join(tmpdir(), 'vdmap-soak-'));
  const agent = await startAgent({
    device: options.device, deviceSize: options.deviceSize, socketPath: join(directory, 'vdmap.sock'),
    threads: options.threads ?? 2, migrateEveryMs: options.migrateEveryMs,
  });
  let fio: { code: number; stdout: string; stderr: string } | undefined;
  let migrations: MigrationCounts | undefined;
  try {
    const half = Math.floor(agent.diskSize / 2 / (1024 * 1024)) * 1024 * 1024;
    fio = await run('fio', [
      '--name=soak', '--ioengine=nbd', `--uri=${agent.uri}`, '--numjobs=2', `--size=${half}`, `--offset_increment=${half}`,
      '--rw=randwrite', '--bsrange=4k-128k', '--iodepth=16', '--verify=crc32c', '--verify_backlog=512', '--verify_fatal=1',
      '--do_verify=1', `--runtime=${options.seconds}`, '--time_based', '--group_reporting', '--output-format=json',
      '--verify_state_save=0', // a failed verify would otherwise leave its state file in the caller's directory
    ]);
  } finally {
    migrations = await agent.stop(); // K3
    rmSync(directory, { recursive: true, force: true });
  }
  return summarize(options.seconds, fio, migrations ?? { migrations: 0, failures: ['the agent reported no migrations'] });
}

function summarize(seconds: number, fio: { code: number; stdout: string; stderr: string }, migrations: MigrationCounts): SoakResult {
  const start = fio.stdout.indexOf('{');
  const job = start < 0 ? undefined : (JSON.parse(fio.stdout.slice(start)) as { jobs: FioJob[] }).jobs[0];
  return {
    seconds,
    fioExitCode: fio.code,
    verifyErrors: job?.verify_errors ?? (fio.code === 0 ? 0 : 1),
    writeIops: job?.write.iops ?? 0,
    writeP99Us: (job?.write.clat_ns.percentile?.['99.000000'] ?? 0) / 1000,
    migrations,
    fioErrors: fio.code === 0 ? '' : fio.stderr.split('\n').slice(-12).join('\n'),
  };
}

interface FioJob {
  verify_errors?: number;
  write: { iops: number; clat_ns: { percentile?: Record<string, number> } };
}

function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

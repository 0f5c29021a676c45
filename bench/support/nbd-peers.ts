/**
 * The peers of the NBD benchmark: qemu-nbd and nbdkit's file plugin serving the same device over Unix sockets,
 * with the options a careful operator would choose for raw block devices (direct I/O, io_uring for qemu-nbd,
 * several connections allowed), and the CPU time a server process used.
 *
 * Owns: starting, waiting for and stopping peer servers; reading a process's CPU time from /proc.
 * Does not know: fio or what is measured (nbd-bench.ts).
 * Needs: qemu-nbd (apt-get install -y qemu-utils) and nbdkit (apt-get install -y nbdkit); a missing one fails with
 * its install line.
 * Thread: the benchmark's main thread.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { requireTool } from './fio.js';

export interface PeerServer {
  readonly name: 'qemu-nbd' | 'nbdkit';
  readonly pid: number;
  readonly uri: string;
  stop(): Promise<void>;
}

/** qemu-nbd -f raw --cache=none --aio=io_uring -e 8 -t DEVICE on `socketPath`. */
export function startQemuNbd(device: string, socketPath: string): Promise<PeerServer> {
  requireTool('qemu-nbd', 'apt-get install -y qemu-utils');
  const child = spawn('qemu-nbd', ['-f', 'raw', '--cache=none', '--aio=io_uring', '-e', '8', '-t', '-k', socketPath, device], { stdio: ['ignore', 'ignore', 'inherit'] });
  return whenListening('qemu-nbd', child, socketPath);
}

/** nbdkit -f -U SOCKET file DEVICE cache=none. */
export function startNbdkit(device: string, socketPath: string): Promise<PeerServer> {
  requireTool('nbdkit', 'apt-get install -y nbdkit');
  const child = spawn('nbdkit', ['-f', '-U', socketPath, 'file', device, 'cache=none'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return whenListening('nbdkit', child, socketPath);
}

async function whenListening(name: PeerServer['name'], child: ChildProcess, socketPath: string): Promise<PeerServer> {
  const deadline = Date.now() + 10_000;
  while (!existsSync(socketPath)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not listen on ${socketPath} (exit code ${child.exitCode})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    name, pid: child.pid ?? -1, uri: `nbd+unix:///?socket=${socketPath}`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(socketPath, { force: true });
    },
  };
}

let ticksPerSecond: number | undefined;

/** User + system CPU seconds used so far by every thread of process `pid` (from /proc/PID/stat). */
export function processCpuSeconds(pid: number): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ", field 3 (state) is index 0, so utime (14) and stime (15) are indices 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

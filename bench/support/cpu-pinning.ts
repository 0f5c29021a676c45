/**
 * CPU placement for benchmarks (--pin): every server on the same CPUs, the client on the others, so each system is
 * measured as it would be with client and server on separate cores, and not by where the scheduler happened to
 * put them. On a 2-CPU machine the scheduler often runs the client and the server on one CPU (a reply's wake-up
 * pulls the client next to its waker) while the other runs the device's kernel worker or idles; how long that
 * lasts differs from run to run and system to system, which is most of the noise of the shared figures.
 *
 * Owns: the split of the machine's CPUs and pinning a running process. Does not know: what runs there.
 * Needs: taskset (util-linux). Kernel work (the loop device's workers, softirqs) still runs on any CPU.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

export interface CpuSplit {
  /** CPUs the servers run on (taskset list form, e.g. "0"). */
  server: string;
  /** CPUs fio runs on (fio --cpus_allowed form, e.g. "1"). */
  client: string;
}

/** The first half of the CPUs (at least one) for servers, the rest for the client; undefined on a single CPU. */
export function splitCpus(): CpuSplit | undefined {
  const cpus = availableParallelism();
  if (cpus < 2) return undefined;
  const serverCount = Math.floor(cpus / 2);
  return { server: range(0, serverCount - 1), client: range(serverCount, cpus - 1) };
}

/**
 * Pins every thread of process `pid` to `cpus`; threads it starts later inherit the placement from the thread that
 * starts them, which is pinned too.
 */
export function pinProcess(pid: number, cpus: string): void {
  execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', cpus, String(pid)], { stdio: 'ignore' });
}

function range(first: number, last: number): string {
  return first === last ? String(first) : `${first}-${last}`;
}

/** Facts about the machine a benchmark ran on, printed with every result. */
import { cpus, release, totalmem } from 'node:os';

export function machineFacts(device: string): Record<string, unknown> {
  return {
    cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release(),
    node: process.version, device, date: new Date().toISOString(),
  };
}

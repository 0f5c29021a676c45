/**
 * The device a benchmark runs on: --device PATH, or a 1 GiB tmpfs-backed loop device made for the run
 * (root; detached and removed afterwards).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, rmSync, writeSync } from 'node:fs';

export interface ScratchDevice {
  path: string;
  size: number;
  dispose(): void;
}

export function scratchDevice(path: string | undefined, sizeBytes = 1024 ** 3): ScratchDevice {
  if (path) return { path, size: sizeBytes, dispose: () => {} };
  if (process.getuid?.() !== 0) throw new Error('without --device PATH the benchmark makes a loop device, which needs root');
  const backing = `/dev/shm/vdmap-bench-${process.pid}.img`;
  const fd = openSync(backing, 'w');
  ftruncateSync(fd, sizeBytes);
  const chunk = Buffer.alloc(1024 * 1024, 0x5a);
  for (let offset = 0; offset < sizeBytes; offset += chunk.length) writeSync(fd, chunk, 0, chunk.length, offset);
  closeSync(fd);
  const loop = execFileSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' }).trim();
  return {
    path: loop, size: sizeBytes,
    dispose: () => {
      try { execFileSync('losetup', ['-d', loop]); } finally { rmSync(backing, { force: true }); }
    },
  };
}

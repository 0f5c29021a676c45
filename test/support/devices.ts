/**
 * Test devices: sparse files on a real filesystem, tmpfs-backed loop devices, and small full tmpfs mounts.
 * Every helper registers its own cleanup; call cleanupDevices() in after().
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, ftruncateSync, closeSync, mkdirSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cleanups: Array<() => void> = [];

export function tempDir(prefix = 'vdmap-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A sparse regular file of `bytes` bytes (on /tmp: ext4 here, O_DIRECT capable). */
export function sparseFile(bytes: number, dir = tempDir()): string {
  const path = join(dir, `device-${cleanups.length}.img`);
  const fd = openSync(path, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
  return path;
}

/** `length` bytes of the device or file at `path` from `offset`, read with plain fs calls (the tests' oracle). */
export function deviceBytes(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const bytes = new Uint8Array(length);
    readSync(fd, bytes, 0, length, offset);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** A loop device over a sparse file in /dev/shm (tmpfs); detached at cleanup. Needs root. */
export function loopDevice(bytes: number, options: { readOnly?: boolean } = {}): string {
  const backing = sparseFile(bytes, tempDirIn('/dev/shm'));
  const device = execFileSync('losetup', ['-f', '--show', ...(options.readOnly ? ['-r'] : []), backing], { encoding: 'utf8' }).trim();
  cleanups.push(() => { try { execFileSync('losetup', ['-d', device]); } catch { /* already gone */ } });
  return device;
}

/** A tmpfs mount of `bytes` bytes (root), for filling a filesystem up. */
export function smallTmpfs(bytes: number): string {
  const dir = tempDir('vdmap-tmpfs-');
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  cleanups.push(() => { try { execFileSync('umount', ['-l', dir]); } catch { /* not mounted */ } });
  return dir;
}

function tempDirIn(parent: string): string {
  const dir = mkdtempSync(join(parent, 'vdmap-test-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function cleanupDevices(): void {
  // In reverse order of registration: loop devices and mounts before the directories they live in.
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
}

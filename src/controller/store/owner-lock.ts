/**
 * OwnerLock: one process at a time owns a data directory. LMDB lets several processes open the same environment,
 * so without this a second controller on the same --data would share the store, rebind the sockets and delete
 * the first one's on exit. Node has no flock(2), so the lock is a file created exclusively.
 *
 * Owns: the file DIR/owner.lock, whose content (JSON) names the owner: pid, the kernel's start time of that pid
 * (/proc/PID/stat field 22, so a recycled pid is not mistaken for the owner), hostname, command line, and when.
 *
 * Invariants:
 *   L1. Owned means: DIR/owner.lock is the inode this process created. It appears whole, never half-written:
 *       the content is written to a private temporary file first and linked into place (link(2) fails with
 *       EEXIST if a lock exists, the O_EXCL of links).
 *   L2. A lock is stale only when its owner is provably gone on this host: the pid does not exist (ESRCH), is a
 *       zombie, or now belongs to a process with another start time. A lock from another host is never stale
 *       (a directory on shared storage: that host's owner cannot be checked from here).
 *   L3. DIR/owner.lock changes only (a) from absent to a new lock (link, exclusive), (b) from a stale inode I to
 *       a new lock by whoever first creates the guard DIR/owner.lock.takeover-I (link, exclusive), after checking
 *       that the lock still is I, or (c) by its live owner removing its own inode on release. So two starters
 *       racing on one stale lock cannot both win: only one creates the guard for I, and the other then finds a
 *       live lock. A SIGKILL leaves a stale lock (L2) that the next starter takes over.
 *   L4. Residual risk, documented: a guard is left behind only by a crash between creating it and finishing the
 *       takeover (microseconds); the next starter removes a guard whose creator is gone (L2) and retries, and
 *       only two starters racing at that very moment could both pass. Nothing else is ever removed blindly.
 *
 * Thread: any; every call is synchronous (it runs before anything in the directory is touched).
 * Errors leaving: VDM_STORE_LOCKED (owned by a live process), VDM_STORE_OPEN (the lock file cannot be made).
 */
import {
  closeSync, fstatSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { VdmapError } from '../../errors/error.js';

export const OWNER_LOCK_FILE = 'owner.lock';
const MAX_ROUNDS = 50;

interface Owner {
  pid: number;
  /** Clock ticks since boot when the process started (/proc/PID/stat field 22), null when unknown. */
  startTime: string | null;
  hostname: string;
  command: string;
  since: string;
}

export class OwnerLock {
  private released = false;

  private constructor(readonly directory: string, private readonly path: string, private readonly inode: number) {}

  /** Takes the lock on `directory` (which must exist), or throws VDM_STORE_LOCKED naming the live owner. */
  static acquire(directory: string): OwnerLock {
    const path = join(directory, OWNER_LOCK_FILE);
    const mine = writeCandidate(directory);
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (tryLink(mine, path)) return new OwnerLock(directory, path, statSync(path).ino);
        const held = readLock(path);
        if (held === undefined) continue; // released meanwhile: try again
        if (!isStale(held.owner)) throw lockedError(directory, path, held.owner);
        if (takeOver(mine, path, held.inode)) return new OwnerLock(directory, path, statSync(path).ino);
        sleep(5 + round); // someone else is taking it over: look again
      }
      throw new VdmapError('VDM_STORE_OPEN', `cannot take the lock ${path}: it kept changing under ${MAX_ROUNDS} attempts`, { path });
    } finally {
      removeQuietly(mine);
    }
  }

  /** Removes the lock if it still is the one this process made (L3 c); idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      if (statSync(this.path).ino === this.inode) unlinkSync(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** L3 (b): replaces the stale inode `stale` with `mine`, if this process is the first to claim it. */
function takeOver(mine: string, path: string, stale: number): boolean {
  const guard = `${path}.takeover-${stale}`;
  if (!tryLink(mine, guard)) {
    const other = readLock(guard);
    if (other !== undefined && isStale(other.owner)) removeQuietly(guard); // L4
    return false;
  }
  try {
    const current = readLock(path);
    if (current === undefined || current.inode !== stale) return false;
    renameSync(mine, path); // atomic replace; `mine` stays linked as the guard until the finally below
    return true;
  } finally {
    removeQuietly(guard);
  }
}

function writeCandidate(directory: string): string {
  const candidate = join(directory, `${OWNER_LOCK_FILE}.${process.pid}.${Date.now()}.tmp`);
  const owner: Owner = {
    pid: process.pid, startTime: startTimeOf(process.pid), hostname: hostname(),
    command: process.argv.slice(1).join(' ').slice(0, 512), since: new Date().toISOString(),
  };
  let fd: number;
  try {
    fd = openSync(candidate, 'wx', 0o600);
  } catch (error) {
    throw new VdmapError('VDM_STORE_OPEN', `cannot create a lock file in ${directory}: ${(error as Error).message}`,
      { path: directory, cause: (error as Error).message });
  }
  try {
    writeSync(fd, `${JSON.stringify(owner)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return candidate;
}

function tryLink(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new VdmapError('VDM_STORE_OPEN', `cannot create the lock ${to}: ${(error as Error).message}`, { path: to, cause: (error as Error).message });
  }
}

/** The lock's inode and owner, or undefined when there is no lock. An unreadable owner counts as live (L2). */
function readLock(path: string): { inode: number; owner: Owner | undefined } | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const inode = fstatSync(fd).ino; // the inode whose content is read, whatever `path` names by now
    const text = readFileSync(fd, 'utf8');
    try {
      const owner = JSON.parse(text) as Owner;
      return { inode, owner: Number.isSafeInteger(owner.pid) && owner.pid > 0 ? owner : undefined };
    } catch {
      return { inode, owner: undefined };
    }
  } finally {
    closeSync(fd);
  }
}

/** L2. */
function isStale(owner: Owner | undefined): boolean {
  if (owner === undefined || owner.hostname !== hostname()) return false;
  if (owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
  }
  const now = startTimeOf(owner.pid);
  if (now === 'zombie') return true;
  return owner.startTime !== null && now !== null && now !== owner.startTime;
}

/** Field 22 of /proc/PID/stat, 'zombie' for a zombie, null when unknown. */
function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    if (fields[0] === 'Z' || fields[0] === 'X') return 'zombie';
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function lockedError(directory: string, path: string, owner: Owner | undefined): VdmapError {
  const who = owner === undefined
    ? 'another process (its lock file cannot be read)'
    : `process ${owner.pid}${owner.hostname === hostname() ? '' : ` on host ${owner.hostname}`} (${owner.command || 'vdmap'}, since ${owner.since})`;
  return new VdmapError('VDM_STORE_LOCKED', `data directory ${directory} is in use by ${who}`,
    { directory, lockFile: path, pid: owner?.pid ?? null, hostname: owner?.hostname ?? null });
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch { /* already gone */ }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

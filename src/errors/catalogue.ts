/**
 * The error-code catalogue: every code vdmap can report, in one place.
 *
 * Owns: the stable codes (`VDM_<AREA>_<WHAT>`), their errno class (what a block client such as NBD is told),
 * the CLI exit code, and the operator's next step. Knows nothing about where an error is raised.
 *
 * Invariants:
 *   C1. Codes are permanent: never renamed, never reused. Add new ones at the end of their area.
 *   C2. Every code has an errno class and a hint that tells an operator what to do next.
 *   C3. Exit codes are stable and documented in README.md ("Exit codes").
 */

/** POSIX errno classes a code folds into; the NBD layer maps these to NBD_E* values. */
export type ErrnoClass = 'EPERM' | 'EIO' | 'ENOMEM' | 'EINVAL' | 'ENOSPC' | 'EOVERFLOW' | 'ENOTSUP' | 'ESHUTDOWN';

/** CLI exit codes, stable for scripts. */
export const ExitCode = {
  Ok: 0,
  Internal: 1,
  Usage: 2,
  NotFound: 3,
  Conflict: 4,
  InvalidInput: 5,
  Unavailable: 6,
  Io: 7,
  Denied: 8,
  Timeout: 9,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface CatalogueEntry {
  errno: ErrnoClass;
  exit: ExitCode;
  /** What the operator should do next. */
  hint: string;
}

export const Catalogue = {
  // Internal
  VDM_INTERNAL: { errno: 'EIO', exit: ExitCode.Internal, hint: 'This is a bug in vdmap: report it with the log lines around it.' },

  // Native addon and devices
  VDM_NATIVE_MISSING: { errno: 'ENOTSUP', exit: ExitCode.Unavailable, hint: 'Build the addon: apt-get install -y liburing-dev build-essential python3 && npm install' },
  VDM_DEVICE_OPEN: { errno: 'EIO', exit: ExitCode.Io, hint: 'Check that the path exists, is a block device or regular file, and that this user may open it with O_DIRECT.' },
  VDM_DEVICE_UNSUPPORTED: { errno: 'ENOTSUP', exit: ExitCode.InvalidInput, hint: 'Use a block device or a regular file on a filesystem that supports O_DIRECT (ext4, xfs; not tmpfs).' },
  VDM_RING_SETUP: { errno: 'ENOMEM', exit: ExitCode.Unavailable, hint: 'io_uring setup failed: check the kernel has io_uring enabled (sysctl kernel.io_uring_disabled=0) and RLIMIT_MEMLOCK.' },
  VDM_RING_SUBMIT: { errno: 'EIO', exit: ExitCode.Io, hint: 'io_uring_submit failed: see the errno in the details; the I/O was not issued.' },

  // I/O on a virtual disk
  VDM_IO_DEVICE: { errno: 'EIO', exit: ExitCode.Io, hint: 'The device returned an I/O error: check dmesg and the device health; the controller was told.' },
  VDM_IO_NOSPACE: { errno: 'ENOSPC', exit: ExitCode.Io, hint: 'The backing device or filesystem is full: free space or evacuate extents to another device.' },
  VDM_IO_OUT_OF_RANGE: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The request reaches past the end of the virtual disk: check the offset and length against the disk size.' },
  VDM_IO_TOO_LARGE: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The request is larger than the I/O buffer pool: split it, or start the agent with a larger pool.' },
  VDM_IO_CLOSED: { errno: 'ESHUTDOWN', exit: ExitCode.Unavailable, hint: 'The virtual disk was closed while the request was pending: reconnect once the agent is back.' },
  VDM_IO_READ_ONLY: { errno: 'EPERM', exit: ExitCode.Denied, hint: 'The device or disk is read-only: attach it read-write to write to it.' },

  // Entry states
  VDM_STATE_INVALID_TIMEOUT: { errno: 'EIO', exit: ExitCode.Timeout, hint: 'The extent has no valid mapping and the controller did not fix it in time: check `vdmap epoch DISK` and the controller log.' },
  VDM_STATE_NOWRITE_TIMEOUT: { errno: 'EIO', exit: ExitCode.Timeout, hint: 'The extent stayed write-protected (NOWRITE) past the hold timeout: check for a stuck migration or snapshot with `vdmap epoch DISK`.' },

  // Mapping tables
  VDM_TABLE_DRAIN_TIMEOUT: { errno: 'EIO', exit: ExitCode.Timeout, hint: 'In-flight I/O did not drain before the flip timeout; the table was not changed. Check device latency, then push again.' },
  VDM_TABLE_INVALID: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The table was refused and nothing changed: fix every entry listed in the details and push again.' },
  VDM_TABLE_OVERLAP: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'Two virtual extents map the same physical extent and not all are NOWRITE: map each to its own extent, or mark every sharer NOWRITE.' },
  VDM_TABLE_OUT_OF_BOUNDS: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'An entry points past the end of its device or past the end of the table: check device sizes with `vdmap device ls`.' },
  VDM_TABLE_MISALIGNED: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'An entry or size is not aligned to the extent size or the device block size.' },
  VDM_TABLE_UNKNOWN_DEVICE: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'An entry names a device that is not registered: add it with `vdmap device add` first.' },
  VDM_TABLE_EPOCH_STALE: { errno: 'EINVAL', exit: ExitCode.Conflict, hint: 'The change was built against an older epoch: fetch the current table and rebuild the change.' },
  VDM_TABLE_TOO_LARGE: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The table has more entries than the agent supports: use a larger extent size.' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof Catalogue;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(Catalogue, code);
}

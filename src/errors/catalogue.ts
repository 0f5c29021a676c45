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
  VDM_RING_ARGUMENT: { errno: 'EINVAL', exit: ExitCode.Internal, hint: 'A bad descriptor, buffer or option reached the ring and nothing was queued: this is a bug in the caller; report it with the details.' },
  VDM_RING_BUFFER: { errno: 'ENOMEM', exit: ExitCode.Unavailable, hint: 'Registering an I/O buffer with io_uring failed: check RLIMIT_MEMLOCK (ulimit -l) and free memory; if every slot is used, create the ring with a larger maxBuffers.' },
  VDM_RING_CLOSED: { errno: 'ESHUTDOWN', exit: ExitCode.Unavailable, hint: 'A ring was used after close(): this is a bug in the caller (a worker kept using a ring it had closed).' },
  VDM_DEVICE_NOT_FOUND: { errno: 'EINVAL', exit: ExitCode.NotFound, hint: 'Nothing exists at the device path (in the details) on this host: check it with `ls -l`. To register a device that only another agent\'s host sees, give `vdmap device add` --size and --block-size, so that nothing is read here.' },

  // I/O on a virtual disk
  VDM_IO_DEVICE: { errno: 'EIO', exit: ExitCode.Io, hint: 'The device returned an I/O error: check dmesg and the device health; the controller was told.' },
  VDM_IO_NOSPACE: { errno: 'ENOSPC', exit: ExitCode.Io, hint: 'The backing device or filesystem is full: free space or evacuate extents to another device.' },
  VDM_IO_OUT_OF_RANGE: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The request reaches past the end of the virtual disk: check the offset and length against the disk size.' },
  VDM_IO_TOO_LARGE: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The request is larger than the I/O buffer pool: split it, or start the agent with a larger pool.' },
  VDM_IO_CLOSED: { errno: 'ESHUTDOWN', exit: ExitCode.Unavailable, hint: 'The virtual disk was closed while the request was pending: reconnect once the agent is back.' },
  VDM_IO_READ_ONLY: { errno: 'EPERM', exit: ExitCode.Denied, hint: 'The device or disk is read-only: attach it read-write to write to it.' },
  VDM_IO_FAST_ZERO_UNSUPPORTED: { errno: 'ENOTSUP', exit: ExitCode.Io, hint: 'The device cannot zero a range quickly; retry without the fast-zero flag (the client falls back to writing zeroes).' },

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

  // Agent <-> controller wire (src/wire)
  VDM_WIRE_FRAME_TOO_LARGE: { errno: 'EIO', exit: ExitCode.Io, hint: 'A message was above the frame size limit (in the details). Announced by a peer: it was disconnected; check that both ends run the same vdmap version. Refused by the sender (details side=sender): admin requests and answers travel in one frame, so a table with this many distinct entries (above about 70,000 runs) cannot pass through the CLI in this version; between agent and controller it is a bug: report it with the log.' },
  VDM_WIRE_MALFORMED: { errno: 'EIO', exit: ExitCode.Io, hint: 'The peer sent bytes that are not a valid vdmap message (reason in the details) and was disconnected: check that it is a vdmap agent or controller of the same version.' },
  VDM_WIRE_TRUNCATED: { errno: 'EIO', exit: ExitCode.Io, hint: 'The connection closed in the middle of a frame: check the network and the peer log for a crash or restart.' },
  VDM_WIRE_VERSION: { errno: 'ENOTSUP', exit: ExitCode.Unavailable, hint: 'The peer speaks another protocol version: upgrade the agent or controller so both speak the version in the details.' },
  VDM_WIRE_UNKNOWN_MESSAGE: { errno: 'EIO', exit: ExitCode.Io, hint: 'The peer sent a message type this version does not know: check that both ends run the same vdmap version.' },
  VDM_WIRE_UNEXPECTED: { errno: 'EIO', exit: ExitCode.Io, hint: 'The peer sent a valid message where the protocol does not allow it (details say which and why): report it with both logs.' },
  VDM_WIRE_TIMEOUT: { errno: 'EIO', exit: ExitCode.Timeout, hint: 'The peer did not send the expected message in time (the handshake, for example) and was disconnected: check that it is a vdmap peer and that it is not overloaded.' },
  VDM_WIRE_CLOSED: { errno: 'ESHUTDOWN', exit: ExitCode.Unavailable, hint: 'The connection closed before the exchange finished: check that the peer is running, then retry.' },

  // Authentication and leases (src/wire/auth.ts)
  VDM_AUTH_DENIED: { errno: 'EPERM', exit: ExitCode.Denied, hint: 'The agent name or credential was refused: enroll the agent again with `vdmap agent enroll` and install the new credential on that host.' },
  VDM_AUTH_REPLAY: { errno: 'EPERM', exit: ExitCode.Denied, hint: 'A frame arrived out of sequence (replayed, reordered or dropped) and the session was closed: look for a middlebox or an attacker between agent and controller.' },
  VDM_AUTH_FORGED: { errno: 'EPERM', exit: ExitCode.Denied, hint: 'A frame failed its authentication check and the session was closed: look for corruption or tampering between agent and controller.' },
  VDM_AUTH_CREDENTIAL_FORMAT: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The credential text is not one `vdmap agent enroll` printed: copy it again, whole, without extra characters.' },
  VDM_LEASE_EXPIRED: { errno: 'EIO', exit: ExitCode.Unavailable, hint: 'The agent lost its lease (no renewal from the controller in time) and stopped serving: check the controller and the network, then let the agent reconnect.' },

  // Controller store (src/controller/store)
  VDM_STORE_OPEN: { errno: 'EIO', exit: ExitCode.Unavailable, hint: 'The controller store could not be opened: check the path, its permissions and free space; the cause is in the details.' },
  VDM_STORE_CLOSED: { errno: 'ESHUTDOWN', exit: ExitCode.Unavailable, hint: 'The controller store was closed while the request was pending: retry once the controller is back.' },
  VDM_STORE_CORRUPT: { errno: 'EIO', exit: ExitCode.Io, hint: 'A stored record could not be decoded: restore the store from a backup and report it with the key in the details.' },
  VDM_STORE_NOT_FOUND: { errno: 'EINVAL', exit: ExitCode.NotFound, hint: 'The named device, disk, agent or table version does not exist: list them with `vdmap device ls`, `vdmap disk ls` or `vdmap agent ls`. For a table version, the message names the epochs the disk keeps (the controller keeps each disk\'s last 16).' },
  VDM_STORE_IN_USE: { errno: 'EINVAL', exit: ExitCode.Conflict, hint: 'The record is still referenced (a device by a table, for example): remove the references first; the details name them.' },
  VDM_STORE_CONFLICT: { errno: 'EIO', exit: ExitCode.Conflict, hint: 'The change kept colliding with concurrent changes and was not applied: retry it.' },
  VDM_STORE_INVALID_RECORD: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The record was refused and nothing changed: fix the field named in the details (names are 1-128 characters of A-Z a-z 0-9 . _ : @ -).' },
  VDM_STORE_LOCKED: { errno: 'EIO', exit: ExitCode.Conflict, hint: 'Another running vdmap (named in the message) owns this data directory: stop that process, or use another --data. If no such process runs, remove the lock file named in the details.' },

  // NBD protocol (src/nbd)
  VDM_NBD_INVALID_REQUEST: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The NBD client sent a request the protocol forbids (flag not valid for the command or not negotiated, zero length, nonzero offset on flush): check the client and its version.' },
  VDM_NBD_UNKNOWN_COMMAND: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The NBD client sent a command this export does not support or did not advertise: check the transmission flags with `nbdinfo`.' },
  VDM_NBD_MISALIGNED: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The request is not aligned to the export\'s minimum block size: align offset and length (see block_size_minimum in `nbdinfo`).' },
  VDM_NBD_TOO_LARGE: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The request is longer than the export\'s maximum block size: split it (see block_size_maximum in `nbdinfo`).' },
  VDM_NBD_WRITE_PAST_END: { errno: 'ENOSPC', exit: ExitCode.InvalidInput, hint: 'The write reaches past the end of the export: check offset and length against the export size.' },
  VDM_NBD_SHUTDOWN: { errno: 'ESHUTDOWN', exit: ExitCode.Unavailable, hint: 'The NBD server is shutting down: reconnect once it is back.' },
  VDM_NBD_PROTOCOL_VIOLATION: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'An NBD client broke the protocol (see details) and was disconnected: check that client and its version.' },
  VDM_NBD_HANDSHAKE_TIMEOUT: { errno: 'EIO', exit: ExitCode.Timeout, hint: 'An NBD client did not finish the handshake in time and was disconnected: check the client, or raise the handshake timeout for slow links.' },
  VDM_NBD_CONNECTION_LIMIT: { errno: 'EIO', exit: ExitCode.Unavailable, hint: 'The NBD server refused a connection at its connection or handshake limit: find the client that floods it, or raise the limit.' },

  // Command line
  VDM_CLI_USAGE: { errno: 'EINVAL', exit: ExitCode.Usage, hint: 'Check the command with `vdmap help COMMAND`; every command has examples.' },
  VDM_CLI_UNREACHABLE: { errno: 'ESHUTDOWN', exit: ExitCode.Unavailable, hint: 'Start the controller (`vdmap up` or `vdmap controller --data DIR`), or point --controller / $VDMAP_CONTROLLER at it.' },
  VDM_CLI_INPUT: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'The input file could not be read or parsed: check its path and format (JSON as `vdmap table show --json` prints, or CBOR).' },
  VDM_CLI_AGENT_UNREACHABLE: { errno: 'ESHUTDOWN', exit: ExitCode.Unavailable, hint: 'Start the agent (`vdmap up` or `vdmap agent`), or point --socket at its admin socket (agent.sock in the agent\'s --data directory).' },

  // Controller and agent daemons (src/controller, src/agent)
  VDM_STATE_INVALID_HELD: { errno: 'EIO', exit: ExitCode.Io, hint: 'A request hit an extent with no valid mapping and is held while the controller is told: check `vdmap epoch DISK` and the controller log for the fault.' },
  VDM_STATE_NOWRITE_HELD: { errno: 'EIO', exit: ExitCode.Io, hint: 'A write hit a NOWRITE extent and is held until the migration or snapshot clears it: check `vdmap epoch DISK`.' },
  VDM_STATE_UNALLOCATED_HELD: { errno: 'ENOSPC', exit: ExitCode.Io, hint: 'A write hit an unallocated extent of a thin disk and is held while the controller allocates it: if it times out, add space with `vdmap device add`.' },
  VDM_DISK_NO_SPACE: { errno: 'ENOSPC', exit: ExitCode.Conflict, hint: 'The devices the disk may use have no free extent left: add a device with `vdmap device add`, or create the disk thin or smaller.' },
  VDM_ADMIN_UNKNOWN_METHOD: { errno: 'ENOTSUP', exit: ExitCode.Usage, hint: 'The controller or agent does not know this admin method: check that the CLI and the daemon run the same vdmap version.' },
  VDM_ADMIN_INVALID_PARAMS: { errno: 'EINVAL', exit: ExitCode.InvalidInput, hint: 'A parameter of the admin request is missing or wrong (the details name it): check the command line.' },
  VDM_ADMIN_EXISTS: { errno: 'EINVAL', exit: ExitCode.Conflict, hint: 'A disk of that name already exists: pick another name, or remove the old disk first with `vdmap disk rm`.' },
  VDM_ADMIN_DENIED: { errno: 'EPERM', exit: ExitCode.Denied, hint: 'Admin requests are served on the controller\'s Unix socket and on loopback TCP only: run the CLI on the controller host.' },
  VDM_AGENT_NOT_CONNECTED: { errno: 'ESHUTDOWN', exit: ExitCode.Unavailable, hint: 'The agent is not connected to the controller: start it, or check its log and the network, then retry.' },
  VDM_AGENT_APPLY: { errno: 'EIO', exit: ExitCode.Io, hint: 'The agent could not apply a table the controller sent (the cause is in the details); the controller resends the full table: check the agent log and its devices.' },
  VDM_ADMIN_DEVICE_EXISTS: { errno: 'EINVAL', exit: ExitCode.Conflict, hint: 'A device with that id is already registered and was left as it was: pick another id, or remove the old device first with `vdmap device rm` (`device add` never re-points a device).' },
  VDM_ADMIN_DEVICE_PATH_TAKEN: { errno: 'EINVAL', exit: ExitCode.Conflict, hint: 'That agent already sees a registered device at this path (or at another name of the same file or block device, named in the details): a device may be registered once, or disks on both would overwrite each other. See `vdmap device ls`.' },
  VDM_LISTEN_IN_USE: { errno: 'EIO', exit: ExitCode.Conflict, hint: 'Another process already listens on the address in the details (`ss -ltnp` or `ss -lxp` shows which): stop it, or choose another address with the flag the message names (0 as the port lets the system pick one).' },
  VDM_LISTEN_FAILED: { errno: 'EIO', exit: ExitCode.Unavailable, hint: 'The address in the details cannot be listened on (the cause is in the details: EACCES for a port below 1024 without privilege, EADDRNOTAVAIL for an address that is not on this host): choose another with the flag the message names.' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof Catalogue;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(Catalogue, code);
}

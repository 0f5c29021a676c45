/**
 * The submission descriptor and completion layout shared with the addon: field indices, strides, opcodes, flags.
 *
 * Owns: the numbers. native-bindings/src/submission.h mirrors them and the addon exports its copy as `layout`;
 * test/native/submission.test.ts fails when the two drift.
 * Does not know: rings, buffers or devices (src/native/ring.ts), nor what the I/O is for.
 *
 * Submissions: a Float64Array, SUBMISSION_STRIDE doubles per descriptor, every field an exact integer.
 *
 *   descriptor i starts at submissions[i * 8]
 *   ┌──────────┬──────┬──────────────┬───────────────┬──────────┬──────────────┬────────────┬─────────┐
 *   │ [0]      │ [1]  │ [2]          │ [3]           │ [4]      │ [5]          │ [6]        │ [7]     │
 *   │ opcode   │ fd   │ bufferIndex  │ bufferOffset  │ length   │ fileOffset   │ userData   │ flags   │
 *   │ Opcode.* │ >= 0 │ registered   │ bytes into    │ bytes    │ bytes into   │ uint32,    │ per     │
 *   │          │      │ buffer index │ that buffer   │          │ the file     │ echoed     │ opcode  │
 *   └──────────┴──────┴──────────────┴───────────────┴──────────┴──────────────┴────────────┴─────────┘
 *   READ / WRITE   use every field; [3] + [4] must lie inside the registered buffer [2].
 *   FSYNC          uses fd, userData, flags (FsyncFlag); other fields are ignored.
 *   FALLOCATE      uses fd, fileOffset, length (the range, may exceed 32 bits), userData, flags (FallocateMode).
 *   NOP            uses userData only.
 *   RECV           recv(2) on a socket fd (field [1]) into the region [2] [3] [4]; flags must be 0. The result is
 *                  the bytes received, 0 when the peer has closed its side, or -errno. Waits (without blocking the
 *                  thread) until the socket has data, so one ring carries a connection's requests and its disk I/O.
 *   SEND           reserved for sends on the same ring; refused with EINVAL until implemented.
 *   POLL           a one-shot poll(2) of fd [1] for the events in flags (PollEvent); the result is the events that
 *                  happened (> 0) or -errno. Lets a thread wait for a socket to take more bytes on its own ring.
 *
 * Completions: an Int32Array, COMPLETION_STRIDE int32 per completion.
 *
 *   completion j: completions[j * 2] = userData (read it with `>>> 0`: the uint32 is stored in an int32)
 *                 completions[j * 2 + 1] = result: bytes transferred (>= 0) or -errno (-22 is EINVAL)
 *
 * Invariants:
 *   L1. These numbers equal native-bindings/src/submission.h (tested against the addon's `layout`).
 *   L2. Opcode numbers are permanent: a number is never reused for another operation.
 *
 * Thread: any; constants only.
 */

export const SUBMISSION_STRIDE = 8;
export const COMPLETION_STRIDE = 2;

/** Index of each field inside a descriptor. */
export const Field = {
  opcode: 0,
  fd: 1,
  bufferIndex: 2,
  bufferOffset: 3,
  length: 4,
  fileOffset: 5,
  userData: 6,
  flags: 7,
} as const;

export const Opcode = {
  NOP: 0,
  READ: 1,
  WRITE: 2,
  FSYNC: 3,
  FALLOCATE: 4,
  RECV: 5,
  SEND: 6,
  POLL: 7,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** FSYNC flags. */
export const FsyncFlag = { DATASYNC: 1 } as const;

/** WRITE flags: DATASYNC makes the write durable when it completes (RWF_DSYNC; FUA on devices that have it). */
export const WriteFlag = { DATASYNC: 1 } as const;

/** FALLOCATE modes: the Linux FALLOC_FL_* values. PUNCH_HOLE needs KEEP_SIZE; both work on block devices. */
export const FallocateMode = { KEEP_SIZE: 0x01, PUNCH_HOLE: 0x02, ZERO_RANGE: 0x10 } as const;

/** POLL events: the poll(2) values; a POLL descriptor's flags hold at least one of them. */
export const PollEvent = { IN: 0x001, PRIORITY: 0x002, OUT: 0x004 } as const;

/** Writes descriptor `slot` in place (no allocation: the data path calls this per I/O). */
export function setDescriptor(
  submissions: Float64Array,
  slot: number,
  opcode: Opcode,
  fd: number,
  bufferIndex: number,
  bufferOffset: number,
  length: number,
  fileOffset: number,
  userData: number,
  flags: number,
): void {
  const base = slot * SUBMISSION_STRIDE;
  submissions[base + Field.opcode] = opcode;
  submissions[base + Field.fd] = fd;
  submissions[base + Field.bufferIndex] = bufferIndex;
  submissions[base + Field.bufferOffset] = bufferOffset;
  submissions[base + Field.length] = length;
  submissions[base + Field.fileOffset] = fileOffset;
  submissions[base + Field.userData] = userData;
  submissions[base + Field.flags] = flags;
}

/** The user data of completion `index`, as the uint32 that was submitted. */
export function completionUserData(completions: Int32Array, index: number): number {
  return completions[index * COMPLETION_STRIDE] >>> 0;
}

/** The result of completion `index`: bytes (>= 0) or a negative errno. */
export function completionResult(completions: Int32Array, index: number): number {
  return completions[index * COMPLETION_STRIDE + 1];
}

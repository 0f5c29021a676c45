/*
 * submission: the byte layout JavaScript and the addon share for submission descriptors and completions.
 *
 * MIRROR of src/native/submission.ts, which is the source of truth and carries the diagram. Change both together;
 * test/native/submission.test.ts compares the `layout` object the addon exports (addon.c) with the TypeScript
 * constants, so a drift fails a test.
 *
 * Submissions: Float64Array, SUBMISSION_STRIDE doubles per descriptor, every field an exact integer.
 * Completions: Int32Array, COMPLETION_STRIDE int32 per completion: [user data (uint32 bits), result (>= 0 or -errno)].
 */
#ifndef VDMAP_SUBMISSION_H
#define VDMAP_SUBMISSION_H

enum submission_layout {
  SUBMISSION_STRIDE = 8,
  COMPLETION_STRIDE = 2,
};

enum submission_field {
  FIELD_OPCODE = 0,
  FIELD_FD = 1,
  FIELD_BUFFER_INDEX = 2,
  FIELD_BUFFER_OFFSET = 3,
  FIELD_LENGTH = 4,
  FIELD_FILE_OFFSET = 5,
  FIELD_USER_DATA = 6,
  FIELD_FLAGS = 7,
};

enum submission_opcode {
  OPCODE_NOP = 0,
  OPCODE_READ = 1,
  OPCODE_WRITE = 2,
  OPCODE_FSYNC = 3,
  OPCODE_FALLOCATE = 4,
  OPCODE_RECV = 5, /* recv(2) from a socket fd into a registered buffer region; result: bytes, 0 at end, -errno */
  OPCODE_SEND = 6, /* reserved for sends on the same ring; refused with EINVAL until implemented */
  OPCODE_POLL = 7, /* one-shot poll(2) of an fd for the events in flags; result: the events that happened, or -errno */
};

enum submission_flag {
  FSYNC_FLAG_DATASYNC = 1,       /* FSYNC: fdatasync semantics (IORING_FSYNC_DATASYNC) */
  WRITE_FLAG_DATASYNC = 1,       /* WRITE: the write is durable when it completes (RWF_DSYNC, FUA on devices) */
  FALLOCATE_KEEP_SIZE = 0x01,    /* FALLOCATE modes: the Linux FALLOC_FL_* values, passed through */
  FALLOCATE_PUNCH_HOLE = 0x02,
  FALLOCATE_ZERO_RANGE = 0x10,
  POLL_EVENT_IN = 0x001,         /* POLL events: the poll(2) values, passed through */
  POLL_EVENT_PRIORITY = 0x002,
  POLL_EVENT_OUT = 0x004,
};

#endif

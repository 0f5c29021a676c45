/*
 * ring submit: submit(count[, first[, waitMicroseconds[, waitCount]]]) -> accepted. See ring.h (R3, R4) and
 * submission.h for the layout.
 *
 * Steps, in order:
 *   S1. Check count/first/waitMicroseconds; refresh detachable buffers.
 *   S2. Copy every descriptor of the batch out of the shared Float64Array and validate the copy (a
 *       SharedArrayBuffer can be written by another thread: validating the copy closes that window). The first bad
 *       descriptor rejects the whole call with EINVAL; nothing has been queued (R4).
 *   S3. accepted = min(count, free SQEs); prepare that many SQEs from the copies, in order.
 *   S4. One io_uring_enter for the batch. Its failure throws the errno name with `queued` = accepted: those SQEs
 *       stay in the ring, are counted in flight, and go to the kernel with the next submit (submit(0) flushes).
 *   S5. With waitMicroseconds > 0, the same io_uring_enter also waits, up to that long, until at least waitCount
 *       (default 1) completions are ready (with DEFER_TASKRUN the thread's task work runs inside the wait, so socket
 *       receives and device completions are posted by it). Running out of time, or a signal, simply ends the wait:
 *       the caller reaps whatever is there. submit(0, 0, us) only waits.
 * Returns accepted; descriptors [first + accepted, first + count) were not taken: JavaScript queues them.
 */
#include <errno.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "ring.h"
#include "submission.h"

enum { REASON_CAPACITY = 160 };

/* The longest wait submit() accepts (one second): a wait is a short doze between bursts, never a sleep. */
#define MAX_WAIT_MICROSECONDS 1000000.0

#define MAX_EXACT_DOUBLE 9007199254740992.0 /* 2^53: larger offsets cannot be told apart in a double */

static const char *opcode_name(uint32_t opcode) {
  switch (opcode) {
    case OPCODE_NOP: return "NOP";
    case OPCODE_READ: return "READ";
    case OPCODE_WRITE: return "WRITE";
    case OPCODE_FSYNC: return "FSYNC";
    case OPCODE_FALLOCATE: return "FALLOCATE";
    case OPCODE_RECV: return "RECV";
    case OPCODE_SEND: return "SEND";
    case OPCODE_POLL: return "POLL";
  }
  return "unknown";
}

/* Reads field `index` as an integer in [min, max] or writes why not. */
static bool field(const double *fields, int index, const char *name, double min, double max, double *out,
                  char *reason) {
  double value = fields[index];
  if (!is_integer_in_range(value, min, max)) {
    snprintf(reason, REASON_CAPACITY, "field [%d] %s must be an integer in [%.0f, %.0f], got %g", index, name, min,
             max, value);
    return false;
  }
  *out = value;
  return true;
}

static bool flags_within(uint32_t flags, uint32_t allowed, const char *opcode, char *reason) {
  if ((flags & ~allowed) == 0) return true;
  snprintf(reason, REASON_CAPACITY, "flags 0x%x are not valid for %s (allowed: 0x%x)", flags, opcode, allowed);
  return false;
}

/* READ/WRITE: the buffer region must lie inside a registered, attached buffer. */
static bool parse_buffer_region(const struct ring *ring, const double *fields, struct descriptor *out, char *reason) {
  double index, offset, length;
  if (!field(fields, FIELD_BUFFER_INDEX, "buffer index", 0, UINT32_MAX, &index, reason) ||
      !field(fields, FIELD_BUFFER_OFFSET, "buffer offset", 0, MAX_EXACT_DOUBLE, &offset, reason) ||
      !field(fields, FIELD_LENGTH, "length", 0, UINT32_MAX, &length, reason)) {
    return false;
  }
  if (index >= ring->buffer_count) {
    snprintf(reason, REASON_CAPACITY, "buffer index %.0f is not registered (%u registered)", index, ring->buffer_count);
    return false;
  }
  const struct registered_buffer *buffer = &ring->buffers[(uint32_t)index];
  if (buffer->detached) {
    snprintf(reason, REASON_CAPACITY, "buffer %.0f was detached (its ArrayBuffer was transferred)", index);
    return false;
  }
  if (offset + length > (double)buffer->length) {
    snprintf(reason, REASON_CAPACITY, "bytes [%.0f, %.0f) reach past buffer %.0f (%llu bytes)", offset,
             offset + length, index, (unsigned long long)buffer->length);
    return false;
  }
  out->buffer_index = (uint32_t)index;
  out->buffer_offset = (uint64_t)offset;
  out->length = (uint32_t)length;
  return true;
}

/* Copies and validates one descriptor (S2). */
static bool parse_descriptor(const struct ring *ring, const double *source, struct descriptor *out, char *reason) {
  double fields[SUBMISSION_STRIDE];
  memcpy(fields, source, sizeof fields);
  double opcode, fd = 0, user_data, flags, file_offset = 0, range_length = 0;
  if (!field(fields, FIELD_OPCODE, "opcode", 0, UINT32_MAX, &opcode, reason) ||
      !field(fields, FIELD_USER_DATA, "user data", 0, UINT32_MAX, &user_data, reason) ||
      !field(fields, FIELD_FLAGS, "flags", 0, UINT32_MAX, &flags, reason)) {
    return false;
  }
  memset(out, 0, sizeof *out);
  out->opcode = (uint32_t)opcode;
  out->user_data = (uint32_t)user_data;
  out->flags = (uint32_t)flags;
  const char *name = opcode_name(out->opcode);
  switch (out->opcode) {
    case OPCODE_NOP:
      return flags_within(out->flags, 0, name, reason);
    case OPCODE_READ:
    case OPCODE_WRITE:
      if (!field(fields, FIELD_FD, "fd", 0, INT32_MAX, &fd, reason) ||
          !field(fields, FIELD_FILE_OFFSET, "file offset", 0, MAX_EXACT_DOUBLE, &file_offset, reason) ||
          !flags_within(out->flags, out->opcode == OPCODE_WRITE ? WRITE_FLAG_DATASYNC : 0, name, reason) ||
          !parse_buffer_region(ring, fields, out, reason)) {
        return false;
      }
      break;
    case OPCODE_FSYNC:
      if (!field(fields, FIELD_FD, "fd", 0, INT32_MAX, &fd, reason) ||
          !flags_within(out->flags, FSYNC_FLAG_DATASYNC, name, reason)) {
        return false;
      }
      break;
    case OPCODE_FALLOCATE:
      if (!field(fields, FIELD_FD, "fd", 0, INT32_MAX, &fd, reason) ||
          !field(fields, FIELD_FILE_OFFSET, "file offset", 0, MAX_EXACT_DOUBLE, &file_offset, reason) ||
          !field(fields, FIELD_LENGTH, "length", 1, MAX_EXACT_DOUBLE, &range_length, reason) ||
          !flags_within(out->flags, FALLOCATE_KEEP_SIZE | FALLOCATE_PUNCH_HOLE | FALLOCATE_ZERO_RANGE, name,
                        reason)) {
        return false;
      }
      break;
    case OPCODE_RECV:
      if (!field(fields, FIELD_FD, "fd", 0, INT32_MAX, &fd, reason) || !flags_within(out->flags, 0, name, reason) ||
          !parse_buffer_region(ring, fields, out, reason)) {
        return false;
      }
      break;
    case OPCODE_POLL:
      if (!field(fields, FIELD_FD, "fd", 0, INT32_MAX, &fd, reason) ||
          !flags_within(out->flags, POLL_EVENT_IN | POLL_EVENT_PRIORITY | POLL_EVENT_OUT, name, reason)) {
        return false;
      }
      if (out->flags == 0) {
        snprintf(reason, REASON_CAPACITY, "POLL needs at least one event in flags (0x%x)",
                 POLL_EVENT_IN | POLL_EVENT_PRIORITY | POLL_EVENT_OUT);
        return false;
      }
      break;
    case OPCODE_SEND:
      snprintf(reason, REASON_CAPACITY, "opcode %u (%s) is reserved for sockets and not implemented yet",
               out->opcode, name);
      return false;
    default:
      snprintf(reason, REASON_CAPACITY, "opcode %u is unknown", out->opcode);
      return false;
  }
  out->fd = (int32_t)fd;
  out->file_offset = (uint64_t)file_offset;
  out->range_length = (uint64_t)range_length;
  return true;
}

/* S3: one validated descriptor into one SQE. */
static void *region_address(const struct ring *ring, const struct descriptor *descriptor) {
  return ring->buffers[descriptor->buffer_index].base + descriptor->buffer_offset;
}

static void prepare(const struct ring *ring, const struct descriptor *descriptor, struct io_uring_sqe *sqe) {
  void *address;
  switch (descriptor->opcode) {
    case OPCODE_READ:
      address = region_address(ring, descriptor);
      if (ring->fixed_buffers) {
        io_uring_prep_read_fixed(sqe, descriptor->fd, address, descriptor->length, descriptor->file_offset,
                                 (int)descriptor->buffer_index);
      } else {
        io_uring_prep_read(sqe, descriptor->fd, address, descriptor->length, descriptor->file_offset);
      }
      break;
    case OPCODE_WRITE:
      address = region_address(ring, descriptor);
      if (ring->fixed_buffers) {
        io_uring_prep_write_fixed(sqe, descriptor->fd, address, descriptor->length, descriptor->file_offset,
                                  (int)descriptor->buffer_index);
      } else {
        io_uring_prep_write(sqe, descriptor->fd, address, descriptor->length, descriptor->file_offset);
      }
      if (descriptor->flags & WRITE_FLAG_DATASYNC) sqe->rw_flags = RWF_DSYNC;
      break;
    case OPCODE_FSYNC:
      io_uring_prep_fsync(sqe, descriptor->fd, (descriptor->flags & FSYNC_FLAG_DATASYNC) ? IORING_FSYNC_DATASYNC : 0);
      break;
    case OPCODE_FALLOCATE:
      io_uring_prep_fallocate(sqe, descriptor->fd, (int)descriptor->flags, (off_t)descriptor->file_offset,
                              (off_t)descriptor->range_length);
      break;
    case OPCODE_RECV:
      io_uring_prep_recv(sqe, descriptor->fd, region_address(ring, descriptor), descriptor->length, 0);
      break;
    case OPCODE_POLL:
      io_uring_prep_poll_add(sqe, descriptor->fd, descriptor->flags);
      break;
    default:
      io_uring_prep_nop(sqe);
      break;
  }
  io_uring_sqe_set_data64(sqe, descriptor->user_data);
}

/* S4 + S5: one io_uring_enter; returns 0 or -errno of a failed submission (a wait that ends early is not one). */
static int enter(struct ring *ring, double wait_microseconds, double wait_count) {
  if (wait_microseconds <= 0) {
    int result;
    do {
      result = io_uring_submit(&ring->uring);
    } while (result == -EINTR);
    return result < 0 ? result : 0;
  }
  struct __kernel_timespec timeout = {
    .tv_sec = (long long)(wait_microseconds / 1e6),
    .tv_nsec = (long long)((uint64_t)wait_microseconds % 1000000) * 1000,
  };
  struct io_uring_cqe *ignored = NULL;
  int result = io_uring_submit_and_wait_timeout(&ring->uring, &ignored, (unsigned)wait_count, &timeout, NULL);
  /* -ETIME: no completion in time; -EINTR: a signal ended the wait (any submission happened before the wait). */
  if (result == -ETIME || result == -EINTR) return 0;
  return result < 0 ? result : 0;
}

/* submit(count: number, first = 0, waitMicroseconds = 0, waitCount = 1) -> number of descriptors accepted */
napi_value ring_submit(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], this_value;
  const char *usage = "submit(count[, first[, waitMicroseconds[, waitCount]]]) needs a count";
  if (!read_call(env, info, 1, &argc, argv, &this_value, usage)) return NULL;
  struct ring *ring = ring_from_this(env, this_value, "submit");
  if (ring == NULL) return NULL;
  double count, first = 0, wait_microseconds = 0, wait_count = 1;
  if (!read_integer_argument(env, argv[0], "submit: count", 0, ring->submission_capacity, &count)) return NULL;
  if (argc >= 2 && !read_integer_argument(env, argv[1], "submit: first", 0, ring->submission_capacity, &first)) {
    return NULL;
  }
  if (argc >= 3 &&
      !read_integer_argument(env, argv[2], "submit: waitMicroseconds", 0, MAX_WAIT_MICROSECONDS, &wait_microseconds)) {
    return NULL;
  }
  if (argc >= 4 && !read_integer_argument(env, argv[3], "submit: waitCount", 1, ring->completion_capacity, &wait_count)) {
    return NULL;
  }
  if (first + count > ring->submission_capacity) {
    return throw_invalid(env, "submit: descriptors [%.0f, %.0f) reach past the %u descriptor slots", first,
                         first + count, ring->submission_capacity);
  }
  ring_refresh_detached_buffers(ring); /* S1 */
  char reason[REASON_CAPACITY];
  for (uint32_t i = 0; i < (uint32_t)count; i++) { /* S2 */
    uint32_t slot = (uint32_t)first + i;
    if (!parse_descriptor(ring, ring->submissions + (size_t)slot * SUBMISSION_STRIDE, &ring->parsed[i], reason)) {
      return throw_invalid(env, "submit: descriptor %u: %s; nothing was submitted", slot, reason);
    }
  }
  uint32_t space = io_uring_sq_space_left(&ring->uring); /* S3 */
  uint32_t accepted = (uint32_t)count < space ? (uint32_t)count : space;
  for (uint32_t i = 0; i < accepted; i++) {
    prepare(ring, &ring->parsed[i], io_uring_get_sqe(&ring->uring));
  }
  ring->in_flight += accepted;
  int result = enter(ring, wait_microseconds, wait_count); /* S4, S5 */
  if (result < 0) {
    return throw_errno_with_count(env, -result, "queued", accepted,
                                  "submit: io_uring_enter: %s; %u descriptors stay queued for the next submit",
                                  strerror(-result), accepted);
  }
  napi_value value;
  NAPI_CALL(env, napi_create_uint32(env, accepted, &value));
  return value;
}

/*
 * ring: one io_uring owned by one JavaScript thread, exposed as the class `Ring`.
 *
 * Table of contents (one file per concern):
 *   ring.c          lifecycle: constructor (setup with fallbacks), close, env teardown, finalizer, features
 *   ring_buffers.c  registerBuffer: views held alive and registered with the kernel as fixed buffers
 *   ring_submit.c   submit(count[, first[, waitMicroseconds[, waitCount]]]): validate the whole batch, prepare the
 *                   SQEs (device and socket opcodes alike) and enter the kernel once, optionally waiting there
 *   ring_reap.c     reap(): copy completions into the shared Int32Array
 *   ring_wake.c     onCompletion/ref/unref/setWake: eventfd + uv_poll on the caller's loop, napi_make_callback
 *
 * Does not know: tables, devices (an fd is a number), or any policy; the facade src/native/ring.ts does.
 *
 * Invariants:
 *   R1. A ring is used only by the thread that created it (SINGLE_ISSUER when the kernel takes it); nothing global
 *       and mutable exists in the addon, so every worker has its own rings.
 *   R2. Every registered view is held by a napi reference until the ring is closed and no I/O is in flight:
 *       the kernel never writes into memory JavaScript has freed.
 *   R3. in_flight counts descriptors accepted by submit() whose completion has not been reaped; close() waits
 *       (after cancelling what can be cancelled) until it is zero before releasing buffers.
 *   R4. The data path never throws: a failed I/O is only its -errno in the completion. submit() throws only for
 *       bad arguments (EINVAL, nothing queued) or a failed io_uring_enter (errno name).
 *   R5. After close() (or env teardown) every method throws EBADF except close(), which is idempotent.
 *   R6. The waker (uv_poll) is heap-allocated apart from the ring and freed in its uv_close callback, so the loop
 *       never touches freed memory whichever of close/teardown/finalizer runs first.
 *   R7. Like a Node handle, a ring whose completion watch is active and referenced keeps its JS object alive (a
 *       strong self reference); unref()'d, never watched, or closed, the object can be collected and the finalizer
 *       closes the ring.
 *
 * Thread: the JavaScript thread that created the ring (main or a worker); the kernel completes I/O concurrently.
 */
#ifndef VDMAP_RING_H
#define VDMAP_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <node_api.h>
#include <uv.h>

/* user_data of requests the addon issues for itself (cancel on close); JavaScript user data is a uint32. */
#define INTERNAL_USER_DATA (UINT64_C(1) << 32)

struct registered_buffer {
  napi_ref view;   /* R2 */
  uint8_t *base;
  uint64_t length;
  bool detachable; /* over a plain ArrayBuffer, which postMessage can transfer away: checked on each submit */
  bool detached;
};

/* One submission descriptor, copied out of the shared Float64Array and validated (see submission.h). */
struct descriptor {
  uint32_t opcode;
  int32_t fd;
  uint32_t buffer_index;
  uint32_t length;      /* READ/WRITE: bytes */
  uint64_t buffer_offset;
  uint64_t file_offset;
  uint64_t range_length; /* FALLOCATE: bytes (field [4] may exceed 32 bits there) */
  uint32_t user_data;
  uint32_t flags;
};

struct ring_waker {
  uv_poll_t poll;                                  /* watches the eventfd; must stay first-class heap memory (R6) */
  struct ring *ring;                               /* NULL once the ring stopped listening */
  napi_async_cleanup_hook_handle hook_to_remove;   /* set when closing from env teardown: removed when closed */
};

struct ring {
  napi_env env;
  struct io_uring uring;
  bool open;
  uint32_t entries;
  uint32_t setup_flags;
  bool fixed_buffers;

  double *submissions; /* SharedArrayBuffer-backed: cannot be detached, but another thread could write it */
  uint32_t submission_capacity;
  struct descriptor *parsed; /* submission_capacity entries: a batch is copied here, validated, then prepared */
  napi_ref submissions_view;
  int32_t *completions;
  uint32_t completion_capacity;
  napi_ref completions_view;

  struct registered_buffer *buffers;
  uint32_t buffer_capacity;
  uint32_t buffer_count;
  uint32_t detachable_count;

  uint64_t in_flight; /* R3 */
  bool drain_failed;  /* close could not prove I/O finished: buffers are deliberately kept (R2) */

  int eventfd;
  struct ring_waker *waker;
  bool referenced;
  napi_ref self;     /* the JS object: strong while the watch is active and referenced (R7), weak otherwise */
  bool self_held;
  napi_ref callback;
  napi_async_context async_context;

  napi_async_cleanup_hook_handle cleanup_hook;
};

/* Defines the Ring class on `exports`. */
napi_value ring_define_class(napi_env env, napi_value exports);

/* Unwraps `this` of a method call into an open ring; throws EINVAL/EBADF and returns NULL otherwise. */
struct ring *ring_from_this(napi_env env, napi_value this_value, const char *method);

/* Methods, one file each (see the table of contents). */
napi_value ring_register_buffer(napi_env env, napi_callback_info info);
napi_value ring_submit(napi_env env, napi_callback_info info);
napi_value ring_reap(napi_env env, napi_callback_info info);
napi_value ring_on_completion(napi_env env, napi_callback_info info);
napi_value ring_ref(napi_env env, napi_callback_info info);
napi_value ring_unref(napi_env env, napi_callback_info info);
napi_value ring_set_wake(napi_env env, napi_callback_info info);

/* Used by close: buffers and waker release their own resources. */
void ring_release_buffers(struct ring *ring);
void ring_stop_waker(struct ring *ring, napi_async_cleanup_hook_handle hook_to_remove);
/* Makes the self reference strong or weak to match R7. */
void ring_update_self_hold(struct ring *ring);
/* Marks detachable buffers whose ArrayBuffer was detached (transferred); cheap when there are none. */
void ring_refresh_detached_buffers(struct ring *ring);
/* Reaps every available completion into `sink` (or discards it when sink is NULL), up to `capacity`. */
uint32_t ring_collect_completions(struct ring *ring, int32_t *sink, uint32_t capacity);

#endif

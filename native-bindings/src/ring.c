/*
 * ring lifecycle: constructor (setup with fallbacks), close, env teardown, finalizer, features.
 * See ring.h for the table of contents and invariants R1..R6.
 *
 * Close, in order (whoever calls it: close(), env teardown, or the finalizer):
 *   1. Cancel what can be cancelled (IORING_ASYNC_CANCEL_ANY), then wait until in_flight is 0 (R3). Disk I/O cannot
 *      be cancelled once issued but completes; waiting here is what lets step 4 release buffers safely.
 *   2. Stop the waker: uv_poll_stop + uv_close; its memory is freed in the close callback (R6).
 *   3. io_uring_queue_exit: unregisters buffers and the eventfd, unmaps the rings.
 *   4. Release the references: registered views (unless step 1 failed: then they are kept, R2), the shared arrays,
 *      the callback, the async context.
 * Error path: if waiting fails (io_uring_enter keeps failing) the buffers stay referenced until the env dies: a
 * leak, never a use-after-free.
 */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "submission.h"

enum {
  MAX_ENTRIES = 32768,
  DEFAULT_MAX_BUFFERS = 64,
  MAX_BUFFERS = 16384,
  MAX_SQPOLL_IDLE_MILLISECONDS = 600000,
  DRAIN_RETRY_LIMIT = 10000,
};

struct ring_options {
  uint32_t entries;
  bool sqpoll;
  uint32_t sqpoll_idle_milliseconds;
  uint32_t max_buffers;
  bool fixed_buffers; /* try kernel-registered buffers (default); false forces plain READ/WRITE, for comparison */
};

/* Setup flags tried in order; the first the kernel accepts wins (EINVAL means "not supported here": try the next). */
static const uint32_t interrupt_driven_candidates[] = {
  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
    IORING_SETUP_SUBMIT_ALL,
  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
  IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
  IORING_SETUP_SUBMIT_ALL,
  0,
};
/* SQPOLL refuses the task-run flags (they are about interrupting the submitter, which SQPOLL never does). */
static const uint32_t sqpoll_candidates[] = {
  IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_SUBMIT_ALL,
  IORING_SETUP_SQPOLL | IORING_SETUP_SUBMIT_ALL,
  IORING_SETUP_SQPOLL,
};

/* ---- options ---- */

/* Reads object[name] when present and not undefined. */
static bool optional_property(napi_env env, napi_value object, const char *name, napi_value *value, bool *present) {
  NAPI_CALL_BOOL(env, napi_get_named_property(env, object, name, value));
  napi_valuetype type;
  NAPI_CALL_BOOL(env, napi_typeof(env, *value, &type));
  *present = type != napi_undefined;
  return true;
}

static bool read_options(napi_env env, napi_value options, struct ring_options *out) {
  napi_valuetype type;
  NAPI_CALL_BOOL(env, napi_typeof(env, options, &type));
  if (type != napi_object) {
    throw_invalid(env, "new Ring(options): options must be an object {entries, sqpollIdleMilliseconds?, maxBuffers?, fixedBuffers?}");
    return false;
  }
  napi_value value;
  bool present;
  double number;
  if (!optional_property(env, options, "entries", &value, &present)) return false;
  if (!present) {
    throw_invalid(env, "new Ring: options.entries is required (a power of two, e.g. 256)");
    return false;
  }
  if (!read_integer_argument(env, value, "new Ring: options.entries", 1, MAX_ENTRIES, &number)) return false;
  out->entries = (uint32_t)number;
  if ((out->entries & (out->entries - 1)) != 0) {
    throw_invalid(env, "new Ring: options.entries must be a power of two, got %u", out->entries);
    return false;
  }
  if (!optional_property(env, options, "sqpollIdleMilliseconds", &value, &present)) return false;
  out->sqpoll = present;
  out->sqpoll_idle_milliseconds = 0;
  if (present) {
    if (!read_integer_argument(env, value, "new Ring: options.sqpollIdleMilliseconds", 0,
                               MAX_SQPOLL_IDLE_MILLISECONDS, &number)) return false;
    out->sqpoll_idle_milliseconds = (uint32_t)number;
  }
  if (!optional_property(env, options, "maxBuffers", &value, &present)) return false;
  out->max_buffers = DEFAULT_MAX_BUFFERS;
  if (present) {
    if (!read_integer_argument(env, value, "new Ring: options.maxBuffers", 1, MAX_BUFFERS, &number)) return false;
    out->max_buffers = (uint32_t)number;
  }
  if (!optional_property(env, options, "fixedBuffers", &value, &present)) return false;
  out->fixed_buffers = true;
  if (present && !read_boolean_argument(env, value, "new Ring: options.fixedBuffers", &out->fixed_buffers)) return false;
  return true;
}

/* ---- setup ---- */

/* Returns 0, or the -errno of the first refusal that is not EINVAL (or -EINVAL if every candidate was refused). */
static int setup_uring(struct ring *ring, const struct ring_options *options) {
  const uint32_t *candidates = options->sqpoll ? sqpoll_candidates : interrupt_driven_candidates;
  size_t count = options->sqpoll ? sizeof sqpoll_candidates / sizeof sqpoll_candidates[0]
                                 : sizeof interrupt_driven_candidates / sizeof interrupt_driven_candidates[0];
  int result = -EINVAL;
  for (size_t i = 0; i < count; i++) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    params.flags = candidates[i];
    params.sq_thread_idle = options->sqpoll_idle_milliseconds;
    result = io_uring_queue_init_params(options->entries, &ring->uring, &params);
    if (result == 0) {
      ring->setup_flags = candidates[i];
      return 0;
    }
    if (result != -EINVAL) return result;
  }
  return result;
}

/* Creates `new <constructor_name>(new SharedArrayBuffer(length * element_size))` and returns its memory. */
static napi_value create_shared_view(napi_env env, const char *constructor_name, size_t length, size_t element_size,
                                     void **data) {
  napi_value global, buffer_constructor, view_constructor, byte_length, buffer, view;
  NAPI_CALL(env, napi_get_global(env, &global));
  NAPI_CALL(env, napi_get_named_property(env, global, "SharedArrayBuffer", &buffer_constructor));
  NAPI_CALL(env, napi_get_named_property(env, global, constructor_name, &view_constructor));
  NAPI_CALL(env, napi_create_double(env, (double)(length * element_size), &byte_length));
  NAPI_CALL(env, napi_new_instance(env, buffer_constructor, 1, &byte_length, &buffer));
  NAPI_CALL(env, napi_new_instance(env, view_constructor, 1, &buffer, &view));
  size_t actual_length = 0;
  NAPI_CALL(env, napi_get_typedarray_info(env, view, NULL, &actual_length, data, NULL, NULL));
  if (actual_length != length || *data == NULL) return throw_invalid(env, "could not allocate the %s", constructor_name);
  return view;
}

static bool define_value(napi_env env, napi_value object, const char *name, napi_value value) {
  napi_property_descriptor descriptor = {name, NULL, NULL, NULL, NULL, value, napi_enumerable, NULL};
  NAPI_CALL_BOOL(env, napi_define_properties(env, object, 1, &descriptor));
  return true;
}

static bool set_flag(napi_env env, napi_value object, const char *name, bool flag) {
  napi_value value;
  NAPI_CALL_BOOL(env, napi_get_boolean(env, flag, &value));
  NAPI_CALL_BOOL(env, napi_set_named_property(env, object, name, value));
  return true;
}

static bool set_count(napi_env env, napi_value object, const char *name, uint32_t count) {
  napi_value value;
  NAPI_CALL_BOOL(env, napi_create_uint32(env, count, &value));
  NAPI_CALL_BOOL(env, napi_set_named_property(env, object, name, value));
  return true;
}

/* features: which setup flags took effect and whether fixed buffers are in use (frozen). */
static napi_value create_features(napi_env env, const struct ring *ring) {
  napi_value features;
  NAPI_CALL(env, napi_create_object(env, &features));
  uint32_t flags = ring->setup_flags;
  if (!set_flag(env, features, "singleIssuer", flags & IORING_SETUP_SINGLE_ISSUER) ||
      !set_flag(env, features, "deferTaskrun", flags & IORING_SETUP_DEFER_TASKRUN) ||
      !set_flag(env, features, "coopTaskrun", flags & IORING_SETUP_COOP_TASKRUN) ||
      !set_flag(env, features, "taskrunFlag", flags & IORING_SETUP_TASKRUN_FLAG) ||
      !set_flag(env, features, "submitAll", flags & IORING_SETUP_SUBMIT_ALL) ||
      !set_flag(env, features, "sqpoll", flags & IORING_SETUP_SQPOLL) ||
      !set_flag(env, features, "fixedBuffers", ring->fixed_buffers) ||
      !set_count(env, features, "setupFlags", flags) || !set_count(env, features, "entries", ring->entries) ||
      !set_count(env, features, "maxBuffers", ring->buffer_capacity)) {
    return NULL;
  }
  NAPI_CALL(env, napi_object_freeze(env, features));
  return features;
}

/* ---- close ---- */

/* Step 1: cancel what can be cancelled, then wait until every accepted descriptor has completed (R3). */
static void drain_in_flight(struct ring *ring) {
  if (ring->in_flight == 0) return;
  struct io_uring_sqe *cancel = io_uring_get_sqe(&ring->uring);
  if (cancel == NULL) {
    io_uring_submit(&ring->uring);
    cancel = io_uring_get_sqe(&ring->uring);
  }
  if (cancel != NULL) {
    io_uring_prep_cancel64(cancel, 0, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(cancel, INTERNAL_USER_DATA);
  }
  unsigned failures = 0;
  while (ring->in_flight > 0) {
    int result = io_uring_submit_and_wait(&ring->uring, 1);
    uint32_t reaped = ring_collect_completions(ring, NULL, UINT32_MAX);
    if (result >= 0 || reaped > 0) {
      failures = 0;
      continue;
    }
    bool transient = result == -EINTR || result == -EAGAIN || result == -EBUSY;
    if (!transient || ++failures > DRAIN_RETRY_LIMIT) {
      ring->drain_failed = true;
      return;
    }
  }
}

static void release_reference(napi_env env, napi_ref *reference) {
  if (*reference != NULL) napi_delete_reference(env, *reference);
  *reference = NULL;
}

/* Closes the ring once (R5). `from_hook` is the env-teardown hook handle when called from it, else NULL. */
static void ring_close(struct ring *ring, napi_async_cleanup_hook_handle from_hook) {
  if (!ring->open) {
    if (from_hook != NULL) napi_remove_async_cleanup_hook(from_hook);
    return;
  }
  drain_in_flight(ring);                                  /* step 1 */
  napi_async_cleanup_hook_handle own_hook = ring->cleanup_hook;
  ring->cleanup_hook = NULL;
  ring_stop_waker(ring, from_hook);                       /* step 2: removes from_hook once the poll is closed */
  ring->open = false;
  ring_update_self_hold(ring);                            /* R7: no longer held */
  if (from_hook == NULL && own_hook != NULL) napi_remove_async_cleanup_hook(own_hook);
  io_uring_queue_exit(&ring->uring);                      /* step 3 */
  if (ring->eventfd >= 0) close(ring->eventfd);
  ring->eventfd = -1;
  if (!ring->drain_failed) ring_release_buffers(ring);    /* step 4 */
  release_reference(ring->env, &ring->submissions_view);
  release_reference(ring->env, &ring->completions_view);
  release_reference(ring->env, &ring->callback);
  if (ring->async_context != NULL) napi_async_destroy(ring->env, ring->async_context);
  ring->async_context = NULL;
}

static void ring_free(struct ring *ring) {
  if (ring->self != NULL) napi_delete_reference(ring->env, ring->self);
  free(ring->buffers);
  free(ring->parsed);
  free(ring);
}

/* The env is going away (a worker terminated, or the process exits): close before Node checks for open handles. */
static void ring_on_env_teardown(napi_async_cleanup_hook_handle handle, void *data) {
  ring_close((struct ring *)data, handle);
}

/* The JS object was collected (or the env is being deleted after teardown closed the ring). */
static void ring_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct ring *ring = data;
  ring_close(ring, NULL);
  ring_free(ring);
}

/* ---- constructor and methods ---- */

/* Releases what the constructor built when it fails before the object owns the ring. */
static napi_value abandon_construction(struct ring *ring) {
  ring_close(ring, NULL);
  ring_free(ring);
  return NULL;
}

static napi_value ring_construct(napi_env env, napi_callback_info info) {
  napi_value new_target, this_value, argv[1];
  size_t argc = 1;
  NAPI_CALL(env, napi_get_new_target(env, info, &new_target));
  if (new_target == NULL) return throw_invalid(env, "Ring is a class: call it with new");
  if (!read_call(env, info, 1, &argc, argv, &this_value, "new Ring(options) needs options {entries}")) return NULL;
  struct ring_options options;
  if (!read_options(env, argv[0], &options)) return NULL;

  struct ring *ring = calloc(1, sizeof *ring);
  struct registered_buffer *buffers = calloc(options.max_buffers, sizeof *buffers);
  struct descriptor *parsed = calloc(options.entries, sizeof *parsed);
  if (ring == NULL || buffers == NULL || parsed == NULL) {
    free(ring);
    free(buffers);
    free(parsed);
    return throw_errno(env, ENOMEM, "new Ring: out of memory");
  }
  ring->parsed = parsed;
  ring->env = env;
  ring->eventfd = -1;
  ring->referenced = true;
  ring->entries = options.entries;
  ring->buffers = buffers;
  ring->buffer_capacity = options.max_buffers;
  int setup = setup_uring(ring, &options);
  if (setup != 0) {
    ring_free(ring);
    return throw_errno(env, -setup, "io_uring_queue_init(%u entries): %s", options.entries, strerror(-setup));
  }
  ring->open = true;
  ring->fixed_buffers =
    options.fixed_buffers && io_uring_register_buffers_sparse(&ring->uring, options.max_buffers) == 0;

  ring->submission_capacity = options.entries;
  ring->completion_capacity = options.entries * 2;
  void *submissions = NULL, *completions = NULL;
  napi_value submissions_view = create_shared_view(env, "Float64Array", (size_t)ring->submission_capacity *
                                                   SUBMISSION_STRIDE, sizeof(double), &submissions);
  if (submissions_view == NULL) return abandon_construction(ring);
  napi_value completions_view = create_shared_view(env, "Int32Array", (size_t)ring->completion_capacity *
                                                   COMPLETION_STRIDE, sizeof(int32_t), &completions);
  if (completions_view == NULL) return abandon_construction(ring);
  ring->submissions = submissions;
  ring->completions = completions;
  napi_value features = create_features(env, ring);
  if (features == NULL ||
      napi_create_reference(env, submissions_view, 1, &ring->submissions_view) != napi_ok ||
      napi_create_reference(env, completions_view, 1, &ring->completions_view) != napi_ok ||
      !define_value(env, this_value, "submissions", submissions_view) ||
      !define_value(env, this_value, "completions", completions_view) ||
      !define_value(env, this_value, "features", features)) {
    throw_napi_failure(env, "new Ring: building the object");
    return abandon_construction(ring);
  }
  if (napi_add_async_cleanup_hook(env, ring_on_env_teardown, ring, &ring->cleanup_hook) != napi_ok) {
    ring->cleanup_hook = NULL;
    throw_napi_failure(env, "new Ring: napi_add_async_cleanup_hook");
    return abandon_construction(ring);
  }
  if (napi_wrap(env, this_value, ring, ring_finalize, NULL, NULL) != napi_ok) {
    throw_napi_failure(env, "new Ring: napi_wrap");
    return abandon_construction(ring);
  }
  if (napi_create_reference(env, this_value, 0, &ring->self) != napi_ok) ring->self = NULL; /* R7 degrades to weak */
  return this_value;
}

static struct ring *unwrap_ring(napi_env env, napi_value this_value, const char *method) {
  struct ring *ring = NULL;
  if (napi_unwrap(env, this_value, (void **)&ring) != napi_ok || ring == NULL) {
    throw_invalid(env, "Ring.%s called on something that is not a Ring", method);
    return NULL;
  }
  return ring;
}

struct ring *ring_from_this(napi_env env, napi_value this_value, const char *method) {
  struct ring *ring = unwrap_ring(env, this_value, method);
  if (ring == NULL) return NULL;
  if (!ring->open) {
    throw_errno(env, EBADF, "Ring.%s: the ring is closed", method); /* R5 */
    return NULL;
  }
  return ring;
}

/* close() -> undefined; idempotent (R5). Waits for I/O in flight (R3). */
static napi_value ring_close_method(napi_env env, napi_callback_info info) {
  napi_value this_value;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &this_value, NULL));
  struct ring *ring = unwrap_ring(env, this_value, "close");
  if (ring != NULL) ring_close(ring, NULL);
  return NULL;
}

/* get inFlight -> number of accepted descriptors whose completion has not been reaped (R3). */
static napi_value ring_in_flight_getter(napi_env env, napi_callback_info info) {
  napi_value this_value, result;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &this_value, NULL));
  struct ring *ring = unwrap_ring(env, this_value, "inFlight");
  if (ring == NULL) return NULL;
  NAPI_CALL(env, napi_create_double(env, (double)ring->in_flight, &result));
  return result;
}

/* get closed -> boolean */
static napi_value ring_closed_getter(napi_env env, napi_callback_info info) {
  napi_value this_value, result;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &this_value, NULL));
  struct ring *ring = unwrap_ring(env, this_value, "closed");
  if (ring == NULL) return NULL;
  NAPI_CALL(env, napi_get_boolean(env, !ring->open, &result));
  return result;
}

napi_value ring_define_class(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
    {"registerBuffer", NULL, ring_register_buffer, NULL, NULL, NULL, napi_default_method, NULL},
    {"submit", NULL, ring_submit, NULL, NULL, NULL, napi_default_method, NULL},
    {"reap", NULL, ring_reap, NULL, NULL, NULL, napi_default_method, NULL},
    {"onCompletion", NULL, ring_on_completion, NULL, NULL, NULL, napi_default_method, NULL},
    {"ref", NULL, ring_ref, NULL, NULL, NULL, napi_default_method, NULL},
    {"unref", NULL, ring_unref, NULL, NULL, NULL, napi_default_method, NULL},
    {"setWake", NULL, ring_set_wake, NULL, NULL, NULL, napi_default_method, NULL},
    {"close", NULL, ring_close_method, NULL, NULL, NULL, napi_default_method, NULL},
    {"inFlight", NULL, NULL, ring_in_flight_getter, NULL, NULL, napi_configurable, NULL},
    {"closed", NULL, NULL, ring_closed_getter, NULL, NULL, napi_configurable, NULL},
  };
  napi_value constructor;
  NAPI_CALL(env, napi_define_class(env, "Ring", NAPI_AUTO_LENGTH, ring_construct, NULL,
                                   sizeof methods / sizeof methods[0], methods, &constructor));
  NAPI_CALL(env, napi_set_named_property(env, exports, "Ring", constructor));
  return exports;
}

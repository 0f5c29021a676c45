/*
 * ring wake: onCompletion(callback), ref(), unref(), setWake(enabled). See ring.h (R6).
 *
 * How a worker sleeps until I/O completes, without spinning and without blocking its event loop:
 *   W1. onCompletion creates an eventfd (non-blocking, close-on-exec) and registers it with the ring; the kernel
 *       signals it when a completion is posted, and with DEFER_TASKRUN when task work is queued for this thread
 *       (test/native/ring.test.ts checks that it fires).
 *   W2. A uv_poll on the calling thread's own libuv loop (napi_get_uv_event_loop) watches it for readability.
 *   W3. When readable: read the eventfd to clear it, then call the callback through napi_make_callback, so promise
 *       microtasks queued by the callback run right after it. The callback is expected to reap() until it returns
 *       0; a spurious wake-up (nothing to reap) is harmless.
 *   W4. ref()/unref() mark the poll handle as keeping the loop alive or not, so an idle worker can exit; while it
 *       is referenced the ring's JS object is held too (R7), as Node holds an active handle's object.
 *   W5. setWake(false) asks the kernel not to signal the eventfd (IORING_CQ_EVENTFD_DISABLED), for a caller that
 *       reaps and waits by itself for a while; setWake(true) turns it back on and then issues a full barrier, so
 *       the caller's next reap() sees whatever was posted, or queued as task work, while it was off (the kernel
 *       sets IORING_SQ_TASKRUN before it reads the flag, with a locked instruction). Without kernel support it is
 *       a no-op: the eventfd simply keeps firing.
 * An exception thrown by the callback is re-raised as an uncaught exception on this thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "errors.h"
#include "ring.h"

static void on_waker_closed(uv_handle_t *handle) {
  struct ring_waker *waker = (struct ring_waker *)handle; /* poll is the first member */
  if (waker->hook_to_remove != NULL) napi_remove_async_cleanup_hook(waker->hook_to_remove);
  free(waker);
}

static void call_back(struct ring *ring) {
  napi_env env = ring->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, receiver, result;
  if (napi_get_reference_value(env, ring->callback, &callback) == napi_ok && callback != NULL &&
      napi_get_global(env, &receiver) == napi_ok) {
    napi_status status = napi_make_callback(env, ring->async_context, receiver, callback, 0, NULL, &result);
    bool pending = false;
    if (status != napi_ok && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value error;
      if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* W3 */
static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  struct ring_waker *waker = (struct ring_waker *)poll;
  struct ring *ring = waker->ring;
  if (ring == NULL || !ring->open) return;
  uint64_t signals;
  ssize_t ignored = read(ring->eventfd, &signals, sizeof signals); /* EAGAIN when already cleared: fine */
  (void)ignored;
  call_back(ring); /* the ring may be closed inside; nothing after this touches it */
}

/* W1 + W2; returns false with an exception pending on failure. */
static bool start_waker(napi_env env, struct ring *ring) {
  uv_loop_t *loop = NULL;
  NAPI_CALL_BOOL(env, napi_get_uv_event_loop(env, &loop));
  int eventfd_number = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (eventfd_number < 0) {
    int failure = errno;
    throw_errno(env, failure, "onCompletion: eventfd: %s", strerror(failure));
    return false;
  }
  int registered = io_uring_register_eventfd(&ring->uring, eventfd_number);
  struct ring_waker *waker = registered == 0 ? calloc(1, sizeof *waker) : NULL;
  int polled = waker != NULL ? uv_poll_init(loop, &waker->poll, eventfd_number) : 0;
  if (registered != 0 || waker == NULL || polled != 0) {
    if (registered == 0) io_uring_unregister_eventfd(&ring->uring);
    close(eventfd_number);
    free(waker);
    if (registered != 0) throw_errno(env, -registered, "onCompletion: io_uring_register_eventfd: %s", strerror(-registered));
    else if (waker == NULL) throw_errno(env, ENOMEM, "onCompletion: out of memory");
    else throw_errno(env, EINVAL, "onCompletion: uv_poll_init: %s", uv_strerror(polled));
    return false;
  }
  waker->ring = ring;
  ring->eventfd = eventfd_number;
  ring->waker = waker;
  uv_poll_start(&waker->poll, UV_READABLE, on_readable);
  if (!ring->referenced) uv_unref((uv_handle_t *)&waker->poll);
  return true;
}

void ring_update_self_hold(struct ring *ring) {
  bool wanted = ring->open && ring->waker != NULL && ring->referenced;
  if (ring->self == NULL || wanted == ring->self_held) return;
  uint32_t count = 0;
  if (wanted) napi_reference_ref(ring->env, ring->self, &count);
  else napi_reference_unref(ring->env, ring->self, &count);
  ring->self_held = wanted;
}

void ring_stop_waker(struct ring *ring, napi_async_cleanup_hook_handle hook_to_remove) {
  struct ring_waker *waker = ring->waker;
  if (waker == NULL) {
    if (hook_to_remove != NULL) napi_remove_async_cleanup_hook(hook_to_remove);
    return;
  }
  ring->waker = NULL;
  waker->ring = NULL;
  waker->hook_to_remove = hook_to_remove;
  uv_poll_stop(&waker->poll);
  uv_close((uv_handle_t *)&waker->poll, on_waker_closed); /* R6: freed in the close callback */
}

/* onCompletion(callback: () => void) -> undefined; a second call replaces the callback. */
napi_value ring_on_completion(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], this_value;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &this_value, NULL));
  struct ring *ring = ring_from_this(env, this_value, "onCompletion");
  if (ring == NULL) return NULL;
  napi_valuetype type = napi_undefined;
  if (argc >= 1) NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_function) return throw_invalid(env, "onCompletion(callback): callback must be a function");
  if (ring->async_context == NULL) {
    napi_value resource_name;
    NAPI_CALL(env, napi_create_string_utf8(env, "vdmap.ring.completion", NAPI_AUTO_LENGTH, &resource_name));
    /* a fresh resource, not `this`: the async context holds its resource strongly, which would pin the ring (R7) */
    NAPI_CALL(env, napi_async_init(env, NULL, resource_name, &ring->async_context));
  }
  napi_ref callback;
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &callback));
  if (ring->callback != NULL) napi_delete_reference(env, ring->callback);
  ring->callback = callback;
  if (ring->waker == NULL && !start_waker(env, ring)) return NULL;
  ring_update_self_hold(ring);
  return NULL;
}

static napi_value set_referenced(napi_env env, napi_callback_info info, bool referenced, const char *method) {
  napi_value this_value;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &this_value, NULL));
  struct ring *ring = ring_from_this(env, this_value, method);
  if (ring == NULL) return NULL;
  ring->referenced = referenced;
  if (ring->waker != NULL) {
    if (referenced) uv_ref((uv_handle_t *)&ring->waker->poll);
    else uv_unref((uv_handle_t *)&ring->waker->poll);
  }
  ring_update_self_hold(ring);
  return NULL;
}

/* setWake(enabled: boolean) -> undefined (W5) */
napi_value ring_set_wake(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], this_value;
  if (!read_call(env, info, 1, &argc, argv, &this_value, "setWake(enabled) needs a boolean")) return NULL;
  struct ring *ring = ring_from_this(env, this_value, "setWake");
  if (ring == NULL) return NULL;
  bool enabled;
  if (!read_boolean_argument(env, argv[0], "setWake: enabled", &enabled)) return NULL;
  io_uring_cq_eventfd_toggle(&ring->uring, enabled); /* -EOPNOTSUPP on kernels without cq flags: nothing to do */
  if (enabled) __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return NULL;
}

/* ref(): the completion watch keeps the event loop alive (the default). */
napi_value ring_ref(napi_env env, napi_callback_info info) {
  return set_referenced(env, info, true, "ref");
}

/* unref(): the completion watch no longer keeps the event loop alive. */
napi_value ring_unref(napi_env env, napi_callback_info info) {
  return set_referenced(env, info, false, "unref");
}

/*
 * ring buffers: registerBuffer(view) -> index. See ring.h (R2).
 *
 * Each registered view is a page-aligned Uint8Array. The ring keeps a napi reference to it for its whole life (R2:
 * measured without it, the GC freed the memory mid-I/O: every completion EFAULT, then a segfault) and, when the
 * kernel accepted sparse registration at setup, installs it as fixed buffer `index` so READ/WRITE use the
 * *_FIXED opcodes (no page pinning per I/O).
 *
 * A view over a plain ArrayBuffer can be detached (transferred to another thread, which may free it); such views
 * are checked before each submit and a descriptor naming a detached one is refused (EINVAL, nothing queued).
 * Views over a SharedArrayBuffer cannot be detached and cost nothing per submit.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "errors.h"
#include "memory.h"
#include "ring.h"

enum { MAX_FIXED_BUFFER_BYTES = 1 << 30 }; /* the kernel's limit for one fixed buffer */

/* True when the view's buffer is a plain (detachable) ArrayBuffer, false for a SharedArrayBuffer. */
static bool is_over_plain_array_buffer(napi_env env, napi_value view, bool *plain) {
  napi_value array_buffer;
  NAPI_CALL_BOOL(env, napi_get_typedarray_info(env, view, NULL, NULL, NULL, &array_buffer, NULL));
  NAPI_CALL_BOOL(env, napi_is_arraybuffer(env, array_buffer, plain));
  return true;
}

static bool validate_view(napi_env env, napi_value view, uint8_t **data, size_t *byte_length) {
  bool is_typed_array = false;
  NAPI_CALL_BOOL(env, napi_is_typedarray(env, view, &is_typed_array));
  napi_typedarray_type type = napi_int8_array;
  if (is_typed_array) NAPI_CALL_BOOL(env, napi_get_typedarray_info(env, view, &type, NULL, NULL, NULL, NULL));
  if (!is_typed_array || type != napi_uint8_array) {
    throw_invalid(env, "registerBuffer: view must be a Uint8Array");
    return false;
  }
  if (!typed_array_bytes(env, view, "registerBuffer: view", data, byte_length)) return false;
  if (*byte_length == 0 || *byte_length % PAGE_ALIGNMENT != 0 || *byte_length > MAX_FIXED_BUFFER_BYTES) {
    throw_invalid(env, "registerBuffer: length %zu must be a non-zero multiple of 4096 up to 1 GiB", *byte_length);
    return false;
  }
  if ((uintptr_t)*data % PAGE_ALIGNMENT != 0) {
    throw_invalid(env, "registerBuffer: the view starts %zu bytes past a 4096-byte boundary (use allocateAligned)",
                  (size_t)((uintptr_t)*data % PAGE_ALIGNMENT));
    return false;
  }
  return true;
}

/* registerBuffer(view: Uint8Array) -> index */
napi_value ring_register_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], this_value;
  if (!read_call(env, info, 1, &argc, argv, &this_value, "registerBuffer(view) takes one argument")) return NULL;
  struct ring *ring = ring_from_this(env, this_value, "registerBuffer");
  if (ring == NULL) return NULL;
  uint8_t *data;
  size_t byte_length;
  if (!validate_view(env, argv[0], &data, &byte_length)) return NULL;
  bool plain;
  if (!is_over_plain_array_buffer(env, argv[0], &plain)) return NULL;
  if (ring->buffer_count == ring->buffer_capacity) {
    return throw_errno(env, ENOSPC, "registerBuffer: all %u buffer slots are used (raise maxBuffers)",
                       ring->buffer_capacity);
  }
  uint32_t index = ring->buffer_count;
  if (ring->fixed_buffers) {
    struct iovec region = {.iov_base = data, .iov_len = byte_length};
    __u64 tag = 0;
    int result = io_uring_register_buffers_update_tag(&ring->uring, index, &region, &tag, 1);
    if (result < 0) {
      return throw_errno(env, -result, "registerBuffer: io_uring_register_buffers_update_tag: %s", strerror(-result));
    }
  }
  struct registered_buffer *buffer = &ring->buffers[index];
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &buffer->view)); /* R2 */
  buffer->base = data;
  buffer->length = byte_length;
  buffer->detachable = plain;
  buffer->detached = false;
  ring->buffer_count++;
  if (plain) ring->detachable_count++;
  napi_value result;
  NAPI_CALL(env, napi_create_uint32(env, index, &result));
  return result;
}

void ring_refresh_detached_buffers(struct ring *ring) {
  if (ring->detachable_count == 0) return;
  for (uint32_t i = 0; i < ring->buffer_count; i++) {
    struct registered_buffer *buffer = &ring->buffers[i];
    if (!buffer->detachable || buffer->detached) continue;
    napi_value view, array_buffer;
    bool detached = true; /* unknown is treated as detached: refusing is safe */
    if (napi_get_reference_value(ring->env, buffer->view, &view) == napi_ok && view != NULL &&
        napi_get_typedarray_info(ring->env, view, NULL, NULL, NULL, &array_buffer, NULL) == napi_ok) {
      napi_is_detached_arraybuffer(ring->env, array_buffer, &detached);
    }
    buffer->detached = detached;
  }
}

void ring_release_buffers(struct ring *ring) {
  for (uint32_t i = 0; i < ring->buffer_count; i++) {
    if (ring->buffers[i].view != NULL) napi_delete_reference(ring->env, ring->buffers[i].view);
    ring->buffers[i].view = NULL;
  }
  ring->buffer_count = 0;
  ring->detachable_count = 0;
}

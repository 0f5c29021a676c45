/*
 * memory: see memory.h for what this file owns and its invariant (M1).
 */
#include "memory.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "errors.h"

static size_t element_size(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: return 8;
  }
  return 1;
}

bool typed_array_bytes(napi_env env, napi_value value, const char *what, uint8_t **data, size_t *byte_length) {
  bool is_typed_array = false;
  NAPI_CALL_BOOL(env, napi_is_typedarray(env, value, &is_typed_array));
  if (!is_typed_array) {
    throw_invalid(env, "%s must be a typed array (for example a Uint8Array)", what);
    return false;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void *bytes = NULL;
  NAPI_CALL_BOOL(env, napi_get_typedarray_info(env, value, &type, &length, &bytes, NULL, NULL));
  *data = bytes;
  *byte_length = length * element_size(type);
  return true;
}

/* alignmentOf(view: TypedArray, modulus = 4096) -> the first byte's address modulo `modulus` (a power of two) */
napi_value memory_alignment_of(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (!read_call(env, info, 1, &argc, argv, NULL, "alignmentOf(view[, modulus]) takes a view")) return NULL;
  uint8_t *data;
  size_t byte_length;
  if (!typed_array_bytes(env, argv[0], "alignmentOf: view", &data, &byte_length)) return NULL;
  double modulus = PAGE_ALIGNMENT;
  if (argc >= 2 && !read_integer_argument(env, argv[1], "alignmentOf: modulus", 1, MAX_ALIGNMENT_MODULUS, &modulus)) {
    return NULL;
  }
  uint64_t power = (uint64_t)modulus;
  if ((power & (power - 1)) != 0) return throw_invalid(env, "alignmentOf: modulus %.0f is not a power of two", modulus);
  napi_value result;
  NAPI_CALL(env, napi_create_double(env, (double)((uintptr_t)data & (power - 1)), &result));
  return result;
}

/*
 * adviseHugePages(view: TypedArray) -> 0 or -errno: madvise(MADV_HUGEPAGE) over the view's pages (M2). Meant for
 * memory not touched yet: its page faults may then map 2 MiB pages wherever the view covers a whole aligned 2 MiB.
 */
napi_value memory_advise_huge_pages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (!read_call(env, info, 1, &argc, argv, NULL, "adviseHugePages(view) takes one argument")) return NULL;
  uint8_t *data;
  size_t byte_length;
  if (!typed_array_bytes(env, argv[0], "adviseHugePages: view", &data, &byte_length)) return NULL;
  uintptr_t first = ((uintptr_t)data + PAGE_ALIGNMENT - 1) & ~(uintptr_t)(PAGE_ALIGNMENT - 1);
  uintptr_t end = ((uintptr_t)data + byte_length) & ~(uintptr_t)(PAGE_ALIGNMENT - 1);
  int outcome = end > first && madvise((void *)first, end - first, MADV_HUGEPAGE) != 0 ? -errno : 0;
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, outcome, &result));
  return result;
}

/* Reads a byte range [offset, offset + length) of a view of `byte_length` bytes; throws EINVAL outside it (M3). */
static bool read_range(napi_env env, napi_value offset_value, double length, size_t byte_length, const char *what, double *offset) {
  if (!read_integer_argument(env, offset_value, what, 0, (double)byte_length, offset)) return false;
  if (*offset + length > (double)byte_length) {
    throw_invalid(env, "copyBytes: %s %.0f + length %.0f is past the view's %zu bytes", what, *offset, length, byte_length);
    return false;
  }
  return true;
}

/* copyBytes(target, targetOffset, source, sourceOffset, length) -> length: memmove between two views (M3). */
napi_value memory_copy_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  const char *usage = "copyBytes(target, targetOffset, source, sourceOffset, length) takes five arguments";
  if (!read_call(env, info, 5, &argc, argv, NULL, usage)) return NULL;
  uint8_t *target, *source;
  size_t target_length, source_length;
  double length, target_offset, source_offset;
  if (!typed_array_bytes(env, argv[0], "copyBytes: target", &target, &target_length)) return NULL;
  if (!typed_array_bytes(env, argv[2], "copyBytes: source", &source, &source_length)) return NULL;
  if (!read_integer_argument(env, argv[4], "copyBytes: length", 0, (double)SIZE_MAX, &length)) return NULL;
  if (!read_range(env, argv[1], length, target_length, "targetOffset", &target_offset)) return NULL;
  if (!read_range(env, argv[3], length, source_length, "sourceOffset", &source_offset)) return NULL;
  memmove(target + (size_t)target_offset, source + (size_t)source_offset, (size_t)length);
  return argv[4];
}

/*
 * memory: where a typed array's bytes live, so JavaScript can carve page-aligned views for O_DIRECT.
 *
 * Owns: alignmentOf(view) -> the address of the view's first byte modulo 4096.
 * Does not know: allocation policy; src/native/aligned.ts over-allocates and offsets using this number.
 *
 * Invariants:
 *   M1. Works for views over ArrayBuffer and SharedArrayBuffer (Node-API describes a SharedArrayBuffer only through a
 *       view over it, so the argument is a view, never a buffer).
 *
 * Thread: any JavaScript thread; no state.
 */
#ifndef VDMAP_MEMORY_H
#define VDMAP_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

enum { PAGE_ALIGNMENT = 4096 };

/* The bytes a typed array covers; throws EINVAL and returns false when `value` is not a typed array. */
bool typed_array_bytes(napi_env env, napi_value value, const char *what, uint8_t **data, size_t *byte_length);

napi_value memory_alignment_of(napi_env env, napi_callback_info info);

#endif

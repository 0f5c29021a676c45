/*
 * memory: where a typed array's bytes live, so JavaScript can carve page-aligned views for O_DIRECT.
 *
 * Owns: alignmentOf(view[, modulus]) -> the address of the view's first byte modulo 4096 (or a power of two up to
 * 1 GiB), and adviseHugePages(view): madvise(MADV_HUGEPAGE), so I/O memory can sit on 2 MiB pages (fewer TLB
 * misses for every copy the kernel makes into or out of it: costly under nested paging).
 * And copyBytes(target, targetOffset, source, sourceOffset, length): memmove between two views, because V8 copies
 * shared memory (which I/O memory is) byte by byte at unequal alignments (src/native/copy.ts has the figures).
 * Does not know: allocation policy; src/native/aligned.ts over-allocates and offsets using this number.
 *
 * Invariants:
 *   M1. Works for views over ArrayBuffer and SharedArrayBuffer (Node-API describes a SharedArrayBuffer only through a
 *       view over it, so the argument is a view, never a buffer).
 *   M2. adviseHugePages only advises: it never moves, frees or zeroes memory, and reports a refusal as -errno.
 *   M3. copyBytes touches no byte outside [targetOffset, targetOffset + length) of the target view: a range outside
 *       either view throws EINVAL and copies nothing.
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
#define MAX_ALIGNMENT_MODULUS 1073741824.0

/* The bytes a typed array covers; throws EINVAL and returns false when `value` is not a typed array. */
bool typed_array_bytes(napi_env env, napi_value value, const char *what, uint8_t **data, size_t *byte_length);

napi_value memory_alignment_of(napi_env env, napi_callback_info info);
napi_value memory_advise_huge_pages(napi_env env, napi_callback_info info);
napi_value memory_copy_bytes(napi_env env, napi_callback_info info);

#endif

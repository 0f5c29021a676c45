/*
 * errors: how the addon reports a failure to JavaScript, and how it reads plain arguments.
 *
 * Owns: building a JS Error whose `code` is an errno name (ENOENT, EINVAL...) and whose message says what failed;
 * reading a call's arguments (how many, and numbers, booleans and descriptors with range checks).
 * Does not know: the catalogue codes (VDM_*): the TypeScript facade (src/native/) turns these errors into VdmapError.
 *
 * Invariants:
 *   X1. A helper never throws over an exception that is already pending: the first failure is the one reported.
 *   X2. Every error thrown by the addon has a `code` string; bad arguments always have code EINVAL.
 *   X3. Every helper that throws returns NULL / false, so callers write `if (!ok) return NULL;`.
 *
 * Thread: whichever JavaScript thread called into the addon (main or a worker); no state of its own.
 */
#ifndef VDMAP_ERRORS_H
#define VDMAP_ERRORS_H

#include <stdbool.h>
#include <stdint.h>
#include <node_api.h>

/* The symbolic name of a positive errno ("ENOENT"), or "EUNKNOWN". */
const char *errno_name(int errnum);

/* Throws Error{code: errno_name(errnum)}; the message is formatted and should say what failed. Returns NULL. */
napi_value throw_errno(napi_env env, int errnum, const char *format, ...) __attribute__((format(printf, 3, 4)));

/* Throws Error{code: errno_name(errnum), [count_name]: count}; for failures that leave work behind. Returns NULL. */
napi_value throw_errno_with_count(napi_env env, int errnum, const char *count_name, double count, const char *format,
                                  ...) __attribute__((format(printf, 5, 6)));

/* Throws Error{code, path} with a formatted message. Returns NULL. */
napi_value throw_code_for_path(napi_env env, const char *code, const char *path, const char *format, ...)
  __attribute__((format(printf, 4, 5)));

/* Throws Error{code: 'EINVAL'}: the arguments were wrong and nothing was done. Returns NULL. */
napi_value throw_invalid(napi_env env, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Throws EINVAL describing the last Node-API failure of `what`, unless an exception is already pending. */
napi_value throw_napi_failure(napi_env env, const char *what);

/* Runs a Node-API call; on failure throws (X1) and returns NULL from the calling function. */
#define NAPI_CALL(env, call)                                                                                        \
  do {                                                                                                              \
    if ((call) != napi_ok) return throw_napi_failure((env), #call);                                                 \
  } while (0)

/* Like NAPI_CALL for functions returning bool. */
#define NAPI_CALL_BOOL(env, call)                                                                                   \
  do {                                                                                                              \
    if ((call) != napi_ok) {                                                                                        \
      throw_napi_failure((env), #call);                                                                             \
      return false;                                                                                                 \
    }                                                                                                               \
  } while (0)

/*
 * Reads a call's arguments into argv (at most *argc of them; *argc becomes how many were given, argv slots past them
 * hold undefined) and, when this_value is not NULL, its receiver. Throws EINVAL with `usage` when fewer than
 * `required` were given.
 */
bool read_call(napi_env env, napi_callback_info info, size_t required, size_t *argc, napi_value *argv,
               napi_value *this_value, const char *usage);

/* Reads a file descriptor number in [0, INT32_MAX]; throws EINVAL naming `what` otherwise. */
bool read_descriptor_argument(napi_env env, napi_value value, const char *what, int *fd);

/* Reads an integral number in [min, max]; throws EINVAL naming `what` otherwise. */
bool read_integer_argument(napi_env env, napi_value value, const char *what, double min, double max, double *out);

/* Reads a boolean; throws EINVAL naming `what` otherwise. */
bool read_boolean_argument(napi_env env, napi_value value, const char *what, bool *out);

/* True when `value` is exactly an integer in [min, max] (false for NaN and infinities). */
static inline bool is_integer_in_range(double value, double min, double max) {
  return value >= min && value <= max && value == (double)(int64_t)value;
}

#endif

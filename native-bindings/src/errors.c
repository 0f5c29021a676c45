/*
 * errors: see errors.h for what this file owns and its invariants (X1..X3).
 */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { MESSAGE_CAPACITY = 512 };

const char *errno_name(int errnum) {
  const char *name = strerrorname_np(errnum);
  return name != NULL ? name : "EUNKNOWN";
}

static bool exception_pending(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok) return true; /* be conservative: do not throw twice */
  return pending;
}

/* An optional extra property of a thrown error. */
struct extra_property {
  const char *name; /* NULL: none */
  const char *text; /* a string value, or NULL for the number */
  double number;
};

/* Builds and throws Error{code[, extra]} with `message`. Falls back to a plain throw if building fails. */
static void throw_with(napi_env env, const char *code, struct extra_property extra, const char *message) {
  if (exception_pending(env)) return; /* X1 */
  napi_value code_value, message_value, error, extra_value;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value) != napi_ok ||
      napi_create_error(env, code_value, message_value, &error) != napi_ok) {
    napi_throw_error(env, code, message);
    return;
  }
  napi_status created = napi_generic_failure;
  if (extra.name != NULL && extra.text != NULL) {
    created = napi_create_string_utf8(env, extra.text, NAPI_AUTO_LENGTH, &extra_value);
  } else if (extra.name != NULL) {
    created = napi_create_double(env, extra.number, &extra_value);
  }
  if (created == napi_ok) napi_set_named_property(env, error, extra.name, extra_value);
  napi_throw(env, error);
}

napi_value throw_errno(napi_env env, int errnum, const char *format, ...) {
  char message[MESSAGE_CAPACITY];
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(message, sizeof message, format, arguments);
  va_end(arguments);
  throw_with(env, errno_name(errnum), (struct extra_property){NULL, NULL, 0}, message);
  return NULL;
}

napi_value throw_errno_with_count(napi_env env, int errnum, const char *count_name, double count, const char *format,
                                  ...) {
  char message[MESSAGE_CAPACITY];
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(message, sizeof message, format, arguments);
  va_end(arguments);
  throw_with(env, errno_name(errnum), (struct extra_property){count_name, NULL, count}, message);
  return NULL;
}

napi_value throw_code_for_path(napi_env env, const char *code, const char *path, const char *format, ...) {
  char message[MESSAGE_CAPACITY];
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(message, sizeof message, format, arguments);
  va_end(arguments);
  throw_with(env, code, (struct extra_property){path != NULL ? "path" : NULL, path, 0}, message);
  return NULL;
}

napi_value throw_invalid(napi_env env, const char *format, ...) {
  char message[MESSAGE_CAPACITY];
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(message, sizeof message, format, arguments);
  va_end(arguments);
  throw_with(env, "EINVAL", (struct extra_property){NULL, NULL, 0}, message);
  return NULL;
}

napi_value throw_napi_failure(napi_env env, const char *what) {
  const napi_extended_error_info *info = NULL;
  const char *reason = "unknown Node-API failure";
  if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL && info->error_message != NULL) {
    reason = info->error_message;
  }
  return throw_invalid(env, "%s: %s", what, reason);
}

bool read_call(napi_env env, napi_callback_info info, size_t required, size_t *argc, napi_value *argv,
               napi_value *this_value, const char *usage) {
  NAPI_CALL_BOOL(env, napi_get_cb_info(env, info, argc, argv, this_value, NULL));
  if (*argc < required) {
    throw_invalid(env, "%s", usage);
    return false;
  }
  return true;
}

bool read_descriptor_argument(napi_env env, napi_value value, const char *what, int *fd) {
  double number;
  if (!read_integer_argument(env, value, what, 0, INT32_MAX, &number)) return false;
  *fd = (int)number;
  return true;
}

bool read_integer_argument(napi_env env, napi_value value, const char *what, double min, double max, double *out) {
  napi_valuetype type;
  NAPI_CALL_BOOL(env, napi_typeof(env, value, &type));
  if (type != napi_number) {
    throw_invalid(env, "%s must be a number", what);
    return false;
  }
  double number;
  NAPI_CALL_BOOL(env, napi_get_value_double(env, value, &number));
  if (!is_integer_in_range(number, min, max)) {
    throw_invalid(env, "%s must be an integer in [%.0f, %.0f], got %g", what, min, max, number);
    return false;
  }
  *out = number;
  return true;
}

bool read_boolean_argument(napi_env env, napi_value value, const char *what, bool *out) {
  napi_valuetype type;
  NAPI_CALL_BOOL(env, napi_typeof(env, value, &type));
  if (type != napi_boolean) {
    throw_invalid(env, "%s must be a boolean", what);
    return false;
  }
  NAPI_CALL_BOOL(env, napi_get_value_bool(env, value, out));
  return true;
}

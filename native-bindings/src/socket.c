/*
 * socket: see socket.h for what this file owns and its invariants (K1..K3).
 */
#include "socket.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "errors.h"
#include "memory.h"

/* At most this many views go into one sendmsg: the kernel's own limit (UIO_MAXIOV); the caller sends the rest. */
enum { MAX_VECTOR = 1024 };

static napi_value number_result(napi_env env, double value) {
  napi_value result;
  NAPI_CALL(env, napi_create_double(env, value, &result));
  return result;
}

/*
 * sendVector(fd: number, views: Uint8Array[]) -> bytes sent (>= 0) or -errno.
 * One sendmsg over up to MAX_VECTOR views, in order (K2). Empty views are allowed and skipped by the kernel.
 */
napi_value socket_send_vector(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (!read_call(env, info, 2, &argc, argv, NULL, "sendVector(fd, views) takes two arguments")) return NULL;
  int fd;
  if (!read_descriptor_argument(env, argv[0], "sendVector: fd", &fd)) return NULL;
  bool is_array = false;
  NAPI_CALL(env, napi_is_array(env, argv[1], &is_array));
  if (!is_array) return throw_invalid(env, "sendVector: views must be an array of Uint8Array");
  uint32_t count = 0;
  NAPI_CALL(env, napi_get_array_length(env, argv[1], &count));
  if (count > MAX_VECTOR) count = MAX_VECTOR;
  struct iovec vector[MAX_VECTOR];
  for (uint32_t i = 0; i < count; i++) {
    napi_value view;
    NAPI_CALL(env, napi_get_element(env, argv[1], i, &view));
    uint8_t *bytes = NULL;
    size_t length = 0;
    if (!typed_array_bytes(env, view, "sendVector: each view", &bytes, &length)) return NULL;
    vector[i].iov_base = bytes;
    vector[i].iov_len = length;
  }
  struct msghdr message = {.msg_iov = vector, .msg_iovlen = count};
  ssize_t sent;
  do {
    sent = sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  return number_result(env, sent < 0 ? -(double)errno : (double)sent);
}

/* shutdownSocket(fd: number, how: 0 (SHUT_RD) | 1 (SHUT_WR) | 2 (SHUT_RDWR)) -> 0 or -errno */
napi_value socket_shutdown(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (!read_call(env, info, 2, &argc, argv, NULL, "shutdownSocket(fd, how) takes two arguments")) return NULL;
  int fd;
  double how;
  if (!read_descriptor_argument(env, argv[0], "shutdownSocket: fd", &fd)) return NULL;
  if (!read_integer_argument(env, argv[1], "shutdownSocket: how", SHUT_RD, SHUT_RDWR, &how)) return NULL;
  return number_result(env, shutdown(fd, (int)how) < 0 ? -(double)errno : 0);
}

/*
 * setSendBufferSize(fd: number, bytes: number) -> the size the kernel now reports (SO_SNDBUF), or -errno.
 * The kernel caps the request at net.core.wmem_max and doubles it for its bookkeeping; the value read back says
 * what took effect.
 */
napi_value socket_set_send_buffer_size(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (!read_call(env, info, 2, &argc, argv, NULL, "setSendBufferSize(fd, bytes) takes two arguments")) return NULL;
  int fd;
  double bytes;
  if (!read_descriptor_argument(env, argv[0], "setSendBufferSize: fd", &fd)) return NULL;
  if (!read_integer_argument(env, argv[1], "setSendBufferSize: bytes", 1, INT32_MAX, &bytes)) return NULL;
  int requested = (int)bytes, effective = 0;
  socklen_t length = sizeof effective;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &requested, sizeof requested) < 0 ||
      getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &effective, &length) < 0) {
    return number_result(env, -(double)errno);
  }
  return number_result(env, effective);
}

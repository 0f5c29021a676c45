/*
 * socket: the few socket calls a thread needs to serve a connection from its own ring without going through the
 * event loop's stream machinery: a non-blocking gather write, a shutdown, and the send buffer size.
 *
 * Owns: sendVector(fd, views), shutdownSocket(fd, how), setSendBufferSize(fd, bytes).
 * Does not know: protocols, queues or retries: a short or refused write is returned as a number and the caller
 * decides (src/agent/workers/ring-transport.ts queues the rest behind the event loop's own writer).
 *
 * Invariants:
 *   K1. I/O outcomes are results, never throws: bytes written (>= 0) or -errno. Only bad arguments throw (EINVAL).
 *   K2. sendVector never blocks and never raises SIGPIPE (MSG_DONTWAIT | MSG_NOSIGNAL): a full socket is -EAGAIN,
 *       a peer that left is -EPIPE.
 *   K3. sendVector reads the views during the call only; nothing is retained after it returns.
 *
 * Thread: any JavaScript thread; no state.
 */
#ifndef VDMAP_SOCKET_H
#define VDMAP_SOCKET_H

#include <node_api.h>

napi_value socket_send_vector(napi_env env, napi_callback_info info);
napi_value socket_shutdown(napi_env env, napi_callback_info info);
napi_value socket_set_send_buffer_size(napi_env env, napi_callback_info info);

#endif

/**
 * Socket calls for a thread that serves a connection from its own ring: a non-blocking gather send, a shutdown, and
 * the send buffer size (native-bindings/src/socket.c).
 *
 * Owns: the typed surface of those three calls. Does not know: protocols, queues or retries; a short or refused send
 * comes back as a number and the caller decides what to do with the rest.
 *
 * Invariants:
 *   K1. I/O outcomes are results, never throws: bytes (>= 0) or -errno. Only bad arguments throw, as
 *       VDM_RING_ARGUMENT (details.errno 'EINVAL').
 *   K2. sendVector never blocks and never raises SIGPIPE: a full socket is -EAGAIN, a peer that left is -EPIPE.
 *   K3. sendVector reads the views during the call only: they may be reused as soon as it returns.
 *
 * Thread: any. Errors leaving: VDM_RING_ARGUMENT.
 */
import { VdmapError } from '../errors/error.js';
import { loadAddon, nativeErrno } from './addon.js';

/** Most views one sendVector call takes (the kernel's UIO_MAXIOV); later views are left for the next call. */
export const MAX_SEND_VECTOR = 1024;

export const Shutdown = { READ: 0, WRITE: 1, BOTH: 2 } as const;
export type Shutdown = (typeof Shutdown)[keyof typeof Shutdown];

function argumentError(error: unknown, operation: string): VdmapError {
  const message = error instanceof Error ? error.message : String(error);
  return new VdmapError('VDM_RING_ARGUMENT', message, { operation, errno: nativeErrno(error) });
}

/** One sendmsg(MSG_DONTWAIT | MSG_NOSIGNAL) of `views` in order: the bytes the kernel took, or -errno (K1, K2). */
export function sendVector(fd: number, views: readonly Uint8Array[]): number {
  try {
    return loadAddon().sendVector(fd, views);
  } catch (error) {
    throw argumentError(error, 'sendVector');
  }
}

/** shutdown(2): 0 or -errno. Shutting the read side ends a receive waiting on the socket (it completes with 0). */
export function shutdownSocket(fd: number, how: Shutdown): number {
  try {
    return loadAddon().shutdownSocket(fd, how);
  } catch (error) {
    throw argumentError(error, 'shutdownSocket');
  }
}

/** Asks for an SO_SNDBUF of `bytes`; returns the size the kernel reports afterwards (capped by net.core.wmem_max), or -errno. */
export function setSendBufferSize(fd: number, bytes: number): number {
  try {
    return loadAddon().setSendBufferSize(fd, bytes);
  } catch (error) {
    throw argumentError(error, 'setSendBufferSize');
  }
}

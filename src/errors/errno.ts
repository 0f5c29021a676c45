/**
 * errno <-> code: how a device's -errno becomes a catalogue code, and how a code folds into an errno class.
 *
 * Owns: the one mapping from kernel errno numbers (as io_uring completions carry them, negated) to codes.
 * The NBD layer maps errno classes to NBD error values (src/nbd); nothing else invents errno numbers.
 */
import { constants } from 'node:os';
import { Catalogue, type ErrnoClass, type ErrorCode } from './catalogue.js';
import { VdmapError } from './error.js';

const errnoNames: Map<number, string> = new Map(
  Object.entries(constants.errno).map(([name, value]) => [value as number, name]),
);

/** The symbolic name of a positive errno (5 -> 'EIO'). */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `errno ${Math.abs(errno)}`;
}

/** The code a failed device I/O reports, from its completion result (a negative errno). */
export function codeForDeviceErrno(result: number): ErrorCode {
  const errno = Math.abs(result);
  if (errno === constants.errno.ENOSPC || errno === constants.errno.EDQUOT) return 'VDM_IO_NOSPACE';
  if (errno === constants.errno.EROFS || errno === constants.errno.EPERM || errno === constants.errno.EACCES) return 'VDM_IO_READ_ONLY';
  return 'VDM_IO_DEVICE';
}

/** A VdmapError for a failed device I/O, keeping the errno name for the operator. */
export function deviceError(result: number, what: string): VdmapError {
  const name = errnoName(result);
  return new VdmapError(codeForDeviceErrno(result), `${what} failed: ${name}`, { errno: name });
}

export function errnoClassOf(code: ErrorCode): ErrnoClass {
  return Catalogue[code].errno;
}

/**
 * Where a server listens: TCP {host, port} as host:port (an IPv6 host in brackets: the inverse of the CLI's
 * parseHostPort), or a Unix socket path, as an operator writes it.
 */
export function formatListenAddress(where: { host: string; port: number } | string): string {
  if (typeof where === 'string') return where;
  return where.host.includes(':') ? `[${where.host}]:${where.port}` : `${where.host}:${where.port}`;
}

/**
 * A VdmapError for a server that could not listen, classified where the address is known: EADDRINUSE is
 * VDM_LISTEN_IN_USE, anything else VDM_LISTEN_FAILED; both carry details.address (as formatListenAddress writes
 * it) and details.cause (the errno name), so a caller that knows which flag chose the address can name it.
 */
export function listenError(error: unknown, where: { host: string; port: number } | string, what: string): VdmapError {
  const address = formatListenAddress(where);
  const cause = (error as NodeJS.ErrnoException | undefined)?.code ?? 'unknown';
  if (cause === 'EADDRINUSE') return new VdmapError('VDM_LISTEN_IN_USE', `${what}: ${address} is already in use`, { address, cause });
  const reason = error instanceof Error ? error.message : String(error);
  return new VdmapError('VDM_LISTEN_FAILED', `${what}: cannot listen on ${address} (${reason})`, { address, cause });
}

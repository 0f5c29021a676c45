/**
 * File descriptors beyond devices: duplicating an accepted socket so another thread's event loop can own it.
 * Thread: any. Errors leaving: VDM_INTERNAL (the fd is not open).
 */
import { VdmapError } from '../errors/error.js';
import { loadAddon, nativeErrno } from './addon.js';

/** A new close-on-exec fd for the same open file (fcntl F_DUPFD_CLOEXEC); the caller owns it. */
export function duplicateDescriptor(fd: number): number {
  try {
    return loadAddon().duplicateDescriptor(fd);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new VdmapError('VDM_INTERNAL', message, { fd, errno: nativeErrno(error) });
  }
}

/**
 * File descriptors beyond devices: duplicating an accepted socket so another thread's event loop can own it, and
 * closing such a descriptor.
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

/**
 * close(2) of a descriptor the caller owns and that Node's own fd bookkeeping never saw (a socket handed over by
 * duplicateDescriptor, served without a net.Socket): fs.closeSync would warn about it. The addon's close is plain.
 */
export function closeDescriptor(fd: number): void {
  try {
    loadAddon().closeDevice(fd);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new VdmapError('VDM_INTERNAL', message, { fd, errno: nativeErrno(error) });
  }
}

/**
 * Devices for direct I/O: open a block device or regular file with O_DIRECT and learn its size and alignments.
 *
 * Owns: DeviceInfo and the mapping of the addon's errno names to device error codes.
 * Does not know: rings or tables; a DeviceInfo's fd is what ring descriptors name.
 *
 * Invariants:
 *   V1. Every fd comes from open(O_DIRECT | O_CLOEXEC); I/O through it must respect offsetAlignment (file offsets
 *       and lengths) and memoryAlignment (buffer addresses). allocateAligned's 4096 satisfies every device here.
 *   V2. A path that cannot do direct I/O (filesystem refuses O_DIRECT, a directory, a character device) is
 *       VDM_DEVICE_UNSUPPORTED; every other failure to open is VDM_DEVICE_OPEN. Both carry details.errno and path.
 *
 * Thread: any; open/ioctl/statx block the calling thread briefly (call at setup, not on the data path). An fd
 * belongs to the process, not to the thread that opened it: unlike node:fs fds, Node does not close it when a worker
 * exits, so whoever opens a device closes it (and may hand the fd number to other threads meanwhile).
 * Errors leaving: VDM_DEVICE_OPEN, VDM_DEVICE_UNSUPPORTED, VDM_INTERNAL (close of an fd that is not open),
 * VDM_NATIVE_MISSING.
 */
import { VdmapError } from '../errors/error.js';
import { loadAddon, nativeErrno } from './addon.js';

export interface DeviceInfo {
  path: string;
  fd: number;
  /** Bytes. */
  size: number;
  logicalBlockSize: number;
  /** File offsets and lengths of direct I/O must be multiples of this. */
  offsetAlignment: number;
  /** Buffer addresses of direct I/O must be multiples of this. */
  memoryAlignment: number;
  isBlockDevice: boolean;
  readOnly: boolean;
}

export interface OpenDeviceOptions {
  readOnly: boolean;
}

/** errno names meaning "this path cannot do direct I/O" rather than "could not open it" (V2). */
const unsupportedErrnos = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR']);

export function openDevice(path: string, options: OpenDeviceOptions): DeviceInfo {
  const addon = loadAddon();
  try {
    return { path, ...addon.openDevice(path, options.readOnly) };
  } catch (error) {
    const errno = nativeErrno(error);
    const message = error instanceof Error ? error.message : String(error);
    const code = unsupportedErrnos.has(errno) ? 'VDM_DEVICE_UNSUPPORTED' : 'VDM_DEVICE_OPEN';
    throw new VdmapError(code, message, { path, errno });
  }
}

export function closeDevice(fd: number): void {
  const addon = loadAddon();
  try {
    addon.closeDevice(fd);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new VdmapError('VDM_INTERNAL', message, { fd, errno: nativeErrno(error) });
  }
}

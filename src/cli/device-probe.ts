/**
 * Reading a device's facts (size, logical block size) on this host, for `vdmap device add` and `vdmap up --device`.
 * A path with nothing at it is the operator's mistake, not a bug: VDM_DEVICE_NOT_FOUND naming the flag and the
 * path (exit 3); a path that exists but cannot be opened keeps openDevice's VDM_DEVICE_OPEN / VDM_DEVICE_UNSUPPORTED.
 */
import { statSync } from 'node:fs';
import { closeDevice, openDevice } from '../native/index.js';
import { VdmapError } from '../errors/error.js';

/** Throws VDM_DEVICE_NOT_FOUND unless something exists at `path`; `what` names the flag that gave it. */
export function requireDevicePath(path: string, what: string): void {
  try {
    statSync(path);
  } catch (error) {
    const cause = (error as NodeJS.ErrnoException).code;
    if (cause === 'ENOENT' || cause === 'ENOTDIR') throw new VdmapError('VDM_DEVICE_NOT_FOUND', `${what} ${path}: no such file or device`, { path, cause });
    throw new VdmapError('VDM_DEVICE_OPEN', `${what} ${path}: ${(error as Error).message}`, { path, cause });
  }
}

/** The size and logical block size of the device or file at `path`, read by opening it (read-only, O_DIRECT). */
export function probeDevice(path: string, what: string, options: { readOnly: boolean } = { readOnly: true }): { size: number; logicalBlockSize: number } {
  requireDevicePath(path, what);
  const info = openDevice(path, options);
  closeDevice(info.fd);
  return { size: info.size, logicalBlockSize: info.logicalBlockSize };
}

/*
 * device: opening a block device or regular file for direct I/O, and describing it.
 *
 * Owns: openDevice(path, readOnly) and closeDevice(fd).
 * Does not know: rings, tables, or what a device is used for; the facade (src/native/device.ts) owns DeviceInfo and
 * maps the errno names thrown here to VDM_DEVICE_OPEN / VDM_DEVICE_UNSUPPORTED.
 *
 * Invariants:
 *   D1. Every fd returned was opened with O_DIRECT | O_CLOEXEC; on any failure after open() the fd is closed.
 *   D2. offsetAlignment and memoryAlignment are powers of two >= 512.
 *   D3. Errors carry code = errno name and `path`; a filesystem refusing O_DIRECT is code EINVAL and says so;
 *       something that is neither a block device nor a regular file is code ENOTSUP.
 *
 * Thread: any JavaScript thread; blocking syscalls (open, ioctl, statx) run on the caller's thread.
 */
#ifndef VDMAP_DEVICE_H
#define VDMAP_DEVICE_H

#include <node_api.h>

napi_value device_open(napi_env env, napi_callback_info info);
napi_value device_close(napi_env env, napi_callback_info info);
napi_value descriptor_duplicate(napi_env env, napi_callback_info info);

#endif

/**
 * copyBytes: memmove between two views, for copies into or out of I/O memory on the data path.
 *
 * Why not Uint8Array.prototype.set or Buffer.copy: I/O memory is a SharedArrayBuffer (aligned.ts G2), and V8 copies
 * shared memory with relaxed atomic loads and stores, one byte at a time when source and target are not equally
 * aligned. An NBD WRITE payload starts 28 bytes into its request, so copying it into an aligned block took 1.5 us
 * per 4 KiB (Node 20, measured here) against 0.22 us for this call, Node-API included.
 *
 * Invariant: C1. Nothing outside [targetOffset, targetOffset + length) of `target` is written; a range past
 * either view throws VDM_RING_ARGUMENT and copies nothing (M3 of native-bindings/src/memory.h).
 * Thread: any; the caller owns both ranges for the duration of the call.
 */
import { VdmapError } from '../errors/error.js';
import { loadAddon, nativeErrno } from './addon.js';

/** Copies `length` bytes of `source` from `sourceOffset` to `target` at `targetOffset`; returns `length`. */
export function copyBytes(target: Uint8Array, targetOffset: number, source: Uint8Array, sourceOffset: number, length: number): number {
  try {
    return loadAddon().copyBytes(target, targetOffset, source, sourceOffset, length);
  } catch (error) {
    throw new VdmapError('VDM_RING_ARGUMENT', `copyBytes: ${(error as Error).message}`, { errno: nativeErrno(error) });
  }
}

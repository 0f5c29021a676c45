/**
 * Page-aligned I/O memory: views whose first byte sits on a 4096-byte boundary, as O_DIRECT and registered
 * io_uring buffers require.
 *
 * Owns: allocateAligned. Node gives no alignment guarantee (measured: Node 20 SharedArrayBuffers of >= 1 MiB start
 * 16 bytes past a page), so this over-allocates by one page and returns the aligned window.
 * Does not know: rings or devices.
 *
 * Invariants:
 *   G1. The returned view is exactly `bytes` long and alignmentOf(view) === 0.
 *   G2. With {shared: true} (the default) the memory is a SharedArrayBuffer: it can be handed to workers and can
 *       never be detached, so a ring may hold it for its whole life.
 *
 * Thread: any.
 * Errors leaving: VDM_RING_ARGUMENT (bytes not a positive multiple of 4096), VDM_NATIVE_MISSING.
 */
import { VdmapError } from '../errors/error.js';
import { loadAddon } from './addon.js';

export const PAGE_SIZE = 4096;

export interface AllocateOptions {
  /** SharedArrayBuffer (default) or ArrayBuffer. */
  shared?: boolean;
}

/** The address of the view's first byte modulo 4096. */
export function alignmentOf(view: ArrayBufferView): number {
  return loadAddon().alignmentOf(view);
}

export function allocateAligned(bytes: number, options: AllocateOptions = {}): Uint8Array {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % PAGE_SIZE !== 0) {
    throw new VdmapError('VDM_RING_ARGUMENT', `allocateAligned: ${bytes} is not a positive multiple of ${PAGE_SIZE}`, {
      bytes,
    });
  }
  const memory = options.shared === false ? new ArrayBuffer(bytes + PAGE_SIZE) : new SharedArrayBuffer(bytes + PAGE_SIZE);
  const misalignment = alignmentOf(new Uint8Array(memory, 0, 1));
  const start = misalignment === 0 ? 0 : PAGE_SIZE - misalignment;
  return new Uint8Array(memory, start, bytes);
}

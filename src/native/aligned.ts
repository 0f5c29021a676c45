/**
 * Page-aligned I/O memory: views whose first byte sits on a 4096-byte boundary, as O_DIRECT and registered
 * io_uring buffers require.
 *
 * Owns: allocateAligned. Node gives no alignment guarantee (measured: Node 20 SharedArrayBuffers of >= 1 MiB start
 * 16 bytes past a page), so this over-allocates by one page and returns the aligned window. With {hugePages: true}
 * it over-allocates by 2 MiB, aligns the window to 2 MiB and advises huge pages for it before anything touches it,
 * so the kernel may back it with 2 MiB pages (a copy into or out of it then misses the TLB 512 times less).
 * Does not know: rings or devices.
 *
 * Invariants:
 *   G1. The returned view is exactly `bytes` long and alignmentOf(view) === 0.
 *   G2. With {shared: true} (the default) the memory is a SharedArrayBuffer: it can be handed to workers and can
 *       never be detached, so a ring may hold it for its whole life.
 *   G3. hugePages is advice: where the kernel has no huge page (or THP is off) the memory is ordinary pages.
 *
 * Thread: any.
 * Errors leaving: VDM_RING_ARGUMENT (bytes not a positive multiple of 4096), VDM_NATIVE_MISSING.
 */
import { VdmapError } from '../errors/error.js';
import { loadAddon } from './addon.js';

export const PAGE_SIZE = 4096;
export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;

export interface AllocateOptions {
  /** SharedArrayBuffer (default) or ArrayBuffer. */
  shared?: boolean;
  /** Align to 2 MiB and advise huge pages (G3); default false. */
  hugePages?: boolean;
}

/** The address of the view's first byte modulo `modulus` (a power of two, default 4096). */
export function alignmentOf(view: ArrayBufferView, modulus = PAGE_SIZE): number {
  return loadAddon().alignmentOf(view, modulus);
}

export function allocateAligned(bytes: number, options: AllocateOptions = {}): Uint8Array {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % PAGE_SIZE !== 0) {
    throw new VdmapError('VDM_RING_ARGUMENT', `allocateAligned: ${bytes} is not a positive multiple of ${PAGE_SIZE}`, {
      bytes,
    });
  }
  const alignment = options.hugePages === true ? HUGE_PAGE_SIZE : PAGE_SIZE;
  const memory = options.shared === false ? new ArrayBuffer(bytes + alignment) : new SharedArrayBuffer(bytes + alignment);
  const misalignment = alignmentOf(new Uint8Array(memory, 0, 1), alignment);
  const start = misalignment === 0 ? 0 : alignment - misalignment;
  const view = new Uint8Array(memory, start, bytes);
  if (options.hugePages === true) loadAddon().adviseHugePages(view); // G3: a refusal leaves ordinary pages
  return view;
}

/**
 * The one importer of the native addon (native-bindings/build/Release/vdmap_native.node) and its typed surface.
 *
 * Owns: locating and loading the .node file once per thread, and the TypeScript types of what it exports.
 * Does not know: policy or error codes beyond VDM_NATIVE_MISSING; device.ts, ring.ts and aligned.ts wrap the raw
 * functions and turn their `code` (an errno name) into VdmapError.
 *
 * Invariants:
 *   N1. Nothing outside src/native/ (and its tests) imports this module or the .node file.
 *   N2. The addon is loaded lazily, on first use, so importing src/native never throws; a missing or unloadable
 *       build throws VDM_NATIVE_MISSING whose hint says how to build it.
 *
 * Thread: any. Each thread (main, every worker) loads its own instance: the addon is context-aware.
 * Errors leaving: VDM_NATIVE_MISSING.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { VdmapError } from '../errors/error.js';

/** From this module's compiled location dist/src/native/ to the repository root. */
const addonUrl = new URL('../../../native-bindings/build/Release/vdmap_native.node', import.meta.url);

export interface NativeDeviceInfo {
  fd: number;
  size: number;
  logicalBlockSize: number;
  offsetAlignment: number;
  memoryAlignment: number;
  isBlockDevice: boolean;
  readOnly: boolean;
}

export interface NativeRingFeatures {
  readonly singleIssuer: boolean;
  readonly deferTaskrun: boolean;
  readonly coopTaskrun: boolean;
  readonly taskrunFlag: boolean;
  readonly submitAll: boolean;
  readonly sqpoll: boolean;
  readonly fixedBuffers: boolean;
  /** The IORING_SETUP_* bits the kernel accepted. */
  readonly setupFlags: number;
  readonly entries: number;
  readonly maxBuffers: number;
}

export interface NativeRingOptions {
  entries: number;
  sqpollIdleMilliseconds?: number;
  maxBuffers?: number;
  fixedBuffers?: boolean;
}

export interface NativeRing {
  readonly submissions: Float64Array;
  readonly completions: Int32Array;
  readonly features: NativeRingFeatures;
  readonly inFlight: number;
  readonly closed: boolean;
  registerBuffer(view: Uint8Array): number;
  submit(count: number, first?: number, waitMicroseconds?: number, waitCount?: number): number;
  reap(): number;
  onCompletion(callback: () => void): void;
  ref(): void;
  unref(): void;
  setWake(enabled: boolean): void;
  close(): void;
}

export interface NativeLayout {
  stride: number;
  completionStride: number;
  fields: Record<string, number>;
  opcodes: Record<string, number>;
  flags: Record<string, number>;
}

export interface NativeAddon {
  openDevice(path: string, readOnly: boolean): NativeDeviceInfo;
  closeDevice(fd: number): void;
  duplicateDescriptor(fd: number): number;
  alignmentOf(view: ArrayBufferView, modulus?: number): number;
  adviseHugePages(view: ArrayBufferView): number;
  copyBytes(target: ArrayBufferView, targetOffset: number, source: ArrayBufferView, sourceOffset: number, length: number): number;
  sendVector(fd: number, views: readonly Uint8Array[]): number;
  shutdownSocket(fd: number, how: number): number;
  setSendBufferSize(fd: number, bytes: number): number;
  Ring: new (options: NativeRingOptions) => NativeRing;
  layout: NativeLayout;
}

/** What the addon attaches to the errors it throws. */
export interface NativeError extends Error {
  code?: string;
  path?: string;
  queued?: number;
}

/** The errno name a native error carries ('EUNKNOWN' if it carries none). */
export function nativeErrno(error: unknown): string {
  const code = (error as NativeError | undefined)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

let loaded: NativeAddon | undefined;

/** The addon for this thread (N2). */
export function loadAddon(): NativeAddon {
  if (loaded !== undefined) return loaded;
  const path = fileURLToPath(addonUrl);
  if (!existsSync(path)) {
    throw new VdmapError('VDM_NATIVE_MISSING', `the native addon is not built (${path} is missing)`, { path });
  }
  try {
    loaded = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new VdmapError('VDM_NATIVE_MISSING', `the native addon failed to load: ${message}`, { path, cause: message });
  }
  return loaded;
}

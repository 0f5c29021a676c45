/**
 * src/native: the typed facade over the native addon (the addon itself is loaded only by addon.ts).
 *
 * device.ts      openDevice / closeDevice: O_DIRECT fds with size and alignments
 * descriptor.ts  duplicateDescriptor: hand an accepted socket to another thread
 * aligned.ts     allocateAligned / alignmentOf: page-aligned (shared) memory for direct I/O
 * ring.ts        Ring: one io_uring per thread; batches in, completions out, eventfd wake-ups
 * submission.ts  the descriptor and completion layout (field indices, opcodes, flags)
 */
export { type DeviceInfo, type OpenDeviceOptions, openDevice, closeDevice } from './device.js';
export { duplicateDescriptor } from './descriptor.js';
export { type AllocateOptions, PAGE_SIZE, alignmentOf, allocateAligned } from './aligned.js';
export { type RingFeatures, type RingOptions, Ring } from './ring.js';
export {
  COMPLETION_STRIDE,
  FallocateMode,
  Field,
  FsyncFlag,
  Opcode,
  SUBMISSION_STRIDE,
  WriteFlag,
  completionResult,
  completionUserData,
  setDescriptor,
} from './submission.js';

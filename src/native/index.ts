/**
 * src/native: the typed facade over the native addon (the addon itself is loaded only by addon.ts).
 *
 * device.ts      openDevice / closeDevice: O_DIRECT fds with size and alignments
 * descriptor.ts  duplicateDescriptor / closeDescriptor: hand an accepted socket to another thread, close it there
 * aligned.ts     allocateAligned / alignmentOf: page-aligned (shared) memory for direct I/O
 * copy.ts        copyBytes: memmove between views, where V8's copy of shared memory is slow
 * ring.ts        Ring: one io_uring per thread; batches in, completions out, eventfd wake-ups
 * socket.ts      sendVector / shutdownSocket / setSendBufferSize: serving a socket from a ring's thread
 * submission.ts  the descriptor and completion layout (field indices, opcodes, flags)
 */
export { type DeviceInfo, type OpenDeviceOptions, openDevice, closeDevice } from './device.js';
export { closeDescriptor, duplicateDescriptor } from './descriptor.js';
export { type AllocateOptions, HUGE_PAGE_SIZE, PAGE_SIZE, alignmentOf, allocateAligned } from './aligned.js';
export { copyBytes } from './copy.js';
export { type RingFeatures, type RingOptions, Ring } from './ring.js';
export { MAX_SEND_VECTOR, Shutdown, sendVector, setSendBufferSize, shutdownSocket } from './socket.js';
export {
  COMPLETION_STRIDE,
  FallocateMode,
  Field,
  FsyncFlag,
  Opcode,
  PollEvent,
  SUBMISSION_STRIDE,
  WriteFlag,
  completionResult,
  completionUserData,
  setDescriptor,
} from './submission.js';

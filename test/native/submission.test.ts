/**
 * Proves the descriptor layout shared by JavaScript and the addon is one layout (invariant L1 of
 * src/native/submission.ts) and that the small accessors read and write exactly those slots.
 * Oracle: the `layout` object the compiled addon exports from native-bindings/src/submission.h.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAddon } from '../../src/native/addon.js';
import {
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
} from '../../src/native/index.js';

describe('submission layout', () => {
  it('L1: equals the layout compiled into the addon', () => {
    assert.deepEqual(
      { ...loadAddon().layout },
      {
        stride: SUBMISSION_STRIDE,
        completionStride: COMPLETION_STRIDE,
        fields: { ...Field },
        opcodes: { ...Opcode },
        flags: {
          FSYNC_DATASYNC: FsyncFlag.DATASYNC,
          WRITE_DATASYNC: WriteFlag.DATASYNC,
          FALLOCATE_KEEP_SIZE: FallocateMode.KEEP_SIZE,
          FALLOCATE_PUNCH_HOLE: FallocateMode.PUNCH_HOLE,
          FALLOCATE_ZERO_RANGE: FallocateMode.ZERO_RANGE,
          POLL_IN: PollEvent.IN,
          POLL_PRIORITY: PollEvent.PRIORITY,
          POLL_OUT: PollEvent.OUT,
        },
      },
    );
  });

  it('writes every field of one descriptor at its index when setDescriptor is called', () => {
    const submissions = new Float64Array(SUBMISSION_STRIDE * 3);
    setDescriptor(submissions, 1, Opcode.WRITE, 7, 2, 8192, 4096, 2 ** 40, 0xfffffffe, WriteFlag.DATASYNC);
    const written = Array.from(submissions.subarray(SUBMISSION_STRIDE, SUBMISSION_STRIDE * 2));
    const expected = new Array<number>(SUBMISSION_STRIDE);
    expected[Field.opcode] = Opcode.WRITE;
    expected[Field.fd] = 7;
    expected[Field.bufferIndex] = 2;
    expected[Field.bufferOffset] = 8192;
    expected[Field.length] = 4096;
    expected[Field.fileOffset] = 2 ** 40;
    expected[Field.userData] = 0xfffffffe;
    expected[Field.flags] = WriteFlag.DATASYNC;
    assert.deepEqual(written, expected);
    assert.ok(submissions.subarray(0, SUBMISSION_STRIDE).every((value) => value === 0), 'slot 0 untouched');
    assert.ok(submissions.subarray(SUBMISSION_STRIDE * 2).every((value) => value === 0), 'slot 2 untouched');
  });

  it('reads user data back as the uint32 submitted when its top bit is set', () => {
    const completions = new Int32Array(COMPLETION_STRIDE * 2);
    completions[COMPLETION_STRIDE] = 0xfffffffe | 0;
    completions[COMPLETION_STRIDE + 1] = -22;
    assert.equal(completionUserData(completions, 1), 0xfffffffe);
    assert.equal(completionResult(completions, 1), -22);
  });
});

/**
 * native-ring-bench: a quick micro-measure of the io_uring addon (not a test; nothing is asserted).
 *
 * Measures, on a loop device over a tmpfs image (needs root and losetup):
 *   - ns per submit(0) call: the bare JS -> Node-API -> addon crossing, no descriptor and no system call,
 *   - ns per submit() call for a batch of 32 descriptors (4 KiB O_DIRECT reads; NOPs for the bare call cost),
 *   - ns per I/O end to end: fill 32 descriptors, submit, sleep on the eventfd, reap, for many batches,
 *   with fixed (registered) buffers and with plain READ.
 * Run: npx tsc -p tsconfig.json && node dist/bench/native-ring-bench.js [batches]
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { Opcode, Ring, allocateAligned, closeDevice, openDevice, setDescriptor } from '../src/native/index.js';

const BATCH = 32;
const BLOCK = 4096;
const DEVICE_BYTES = 256 << 20;
const batches = Number(process.argv[2] ?? 20000);

interface Figures {
  submitNanoseconds: number;
  perIoNanoseconds: number;
}

function attachLoop(): { path: string; release(): void } {
  const image = `/dev/shm/vdmap-bench-${process.pid}.img`;
  execFileSync('truncate', ['-s', String(DEVICE_BYTES), image]);
  execFileSync('dd', [`if=/dev/zero`, `of=${image}`, 'bs=1M', `count=${DEVICE_BYTES >> 20}`, 'conv=notrunc', 'status=none']);
  const path = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  return { path, release: () => { execFileSync('losetup', ['-d', path]); rmSync(image, { force: true }); } };
}

/** Resolves when `expected` completions have been reaped, waking through the eventfd. */
function waitFor(ring: Ring, expected: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const drain = (): void => {
      for (let count = ring.reap(); count > 0; count = ring.reap()) seen += count;
      if (seen >= expected) resolve();
    };
    ring.onCompletion(drain);
    drain();
  });
}

async function measure(fd: number, opcode: number, fixedBuffers: boolean): Promise<Figures> {
  const ring = new Ring({ entries: 64, fixedBuffers });
  const buffer = allocateAligned(BATCH * BLOCK);
  const index = ring.registerBuffer(buffer);
  const blocks = DEVICE_BYTES / BLOCK;
  let seed = 12345;
  const nextBlock = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % blocks;
  };
  let submitTotal = 0n;
  const runBatch = async (): Promise<void> => {
    for (let slot = 0; slot < BATCH; slot++) {
      setDescriptor(ring.submissions, slot, opcode as 0, fd, index, slot * BLOCK, BLOCK, nextBlock() * BLOCK, slot, 0);
    }
    const done = waitFor(ring, BATCH);
    const before = process.hrtime.bigint();
    ring.submit(BATCH);
    submitTotal += process.hrtime.bigint() - before;
    await done;
  };
  for (let warm = 0; warm < 200; warm++) await runBatch();
  submitTotal = 0n;
  const started = process.hrtime.bigint();
  for (let batch = 0; batch < batches; batch++) await runBatch();
  const elapsed = process.hrtime.bigint() - started;
  ring.close();
  return {
    submitNanoseconds: Number(submitTotal) / batches,
    perIoNanoseconds: Number(elapsed) / (batches * BATCH),
  };
}

/** ns per submit(0): validation of the call and the crossing only (liburing skips the syscall with nothing to send). */
function measureEmptySubmit(): number {
  const ring = new Ring({ entries: 64 });
  const calls = 1_000_000;
  for (let call = 0; call < 10_000; call++) ring.submit(0);
  const started = process.hrtime.bigint();
  for (let call = 0; call < calls; call++) ring.submit(0);
  const elapsed = process.hrtime.bigint() - started;
  ring.close();
  return Number(elapsed) / calls;
}

const loop = attachLoop();
try {
  const device = openDevice(loop.path, { readOnly: true });
  try {
    const rows: Array<[string, Figures]> = [
      ['NOP, fixed buffers', await measure(device.fd, Opcode.NOP, true)],
      ['READ 4K, fixed buffers', await measure(device.fd, Opcode.READ, true)],
      ['READ 4K, plain buffers', await measure(device.fd, Opcode.READ, false)],
    ];
    console.log(`node ${process.version}, ${batches} batches of ${BATCH}, loop device ${loop.path} over tmpfs`);
    console.log(`${'submit(0)'.padEnd(24)} ${measureEmptySubmit().toFixed(0).padStart(7)} ns/call`);
    for (const [name, figures] of rows) {
      console.log(
        `${name.padEnd(24)} submit(32): ${figures.submitNanoseconds.toFixed(0).padStart(7)} ns/call ` +
          `(${(figures.submitNanoseconds / BATCH).toFixed(0)} ns/descriptor)   end to end: ${figures.perIoNanoseconds.toFixed(0).padStart(6)} ns/I/O`,
      );
    }
  } finally {
    closeDevice(device.fd);
  }
} finally {
  loop.release();
}

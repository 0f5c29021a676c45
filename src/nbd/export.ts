/**
 * Export: what the NBD server serves. The protocol code (src/nbd) sees a disk only through this interface,
 * so it never knows whether a mapping table, a file or memory serves the bytes.
 *
 * Contract for implementers:
 *   X1. Every method validates nothing the server already validated (range, alignment, read-only), but must
 *       still reject out-of-range requests with VdmapError('VDM_IO_OUT_OF_RANGE') rather than misbehave.
 *   X2. Failures reject with a VdmapError whose code is in src/errors/catalogue.ts; the server folds it into
 *       an NBD error through src/nbd/errors.ts.
 *   X3. A write (or writeZeroes/trim) resolves only once the data is on the device; with `fua` it is also
 *       durable. flush() makes every write resolved before the call durable.
 *   X4. read() resolves with a ReadBuffer the caller must release() once it no longer needs the bytes (for
 *       NBD: after the socket write completed). The bytes may live in memory the kernel DMAs into.
 *   X5. Methods may be called many times in the same tick; implementations batch them (one submission per
 *       tick) and may complete them in any order.
 *   X6. writeBuffer() is optional: when it returns a WriteBuffer, the server fills `bytes` with the payload as it
 *       arrives and calls commit() (exactly as it would have called write() with those bytes) or abandon(), once.
 *       It returns undefined whenever it cannot help right now (no memory at hand, an unaligned request...): the
 *       server then passes the payload to write(). It saves the copy of the payload into the export's own memory.
 *   X7. The data path (read, write, WriteBuffer.commit) reports to a Completion rather than returning a promise, so
 *       a request costs no promise, no closure and no microtask hop. `done` is called exactly once, and never
 *       before the call that was given it returned: an export that fails at once defers the call
 *       (queueMicrotask), so the server is never re-entered while it parses. The rarer commands return promises.
 *       readFrom() and writeTo() below give a promise for callers that are not on the data path.
 */

/** Where a data-path call reports its outcome (X7). */
export interface Completion<T> {
  succeeded(value: T): void;
  failed(error: unknown): void;
}

export interface ReadBuffer {
  /** The requested bytes, exactly `length` long. Valid until release(). */
  readonly bytes: Uint8Array;
  release(): void;
}

export interface ExportCapabilities {
  readOnly: boolean;
  /** Flush and FUA supported (the export has a volatile cache that flush() empties). */
  flush: boolean;
  fua: boolean;
  trim: boolean;
  writeZeroes: boolean;
  /** writeZeroes with fastZero fails fast (VdmapError with errno class ENOTSUP) when zeroing would be slow. */
  fastZero: boolean;
  cache: boolean;
  /** Safe for several connections at once: a flush on one makes writes completed on every connection durable. */
  multiConn: boolean;
  /** Sizes for NBD_INFO_BLOCK_SIZE. */
  minimumBlockSize: number;
  preferredBlockSize: number;
  maximumBlockSize: number;
}

/** One run of BLOCK_STATUS for base:allocation. */
export interface AllocationExtent {
  length: number;
  /** Unallocated: reads as zero and takes no space (NBD_STATE_HOLE). */
  hole: boolean;
  /** Reads as zero (NBD_STATE_ZERO). */
  zero: boolean;
}

export interface WriteZeroesOptions {
  /** The client asked that the range stay allocated (NBD_CMD_FLAG_NO_HOLE). */
  noHole: boolean;
  /** The client asked for failure rather than a slow zeroing (NBD_CMD_FLAG_FAST_ZERO). */
  fastZero: boolean;
}

/** Memory laid out by the export for one WRITE payload (X6). */
export interface WriteBuffer {
  /** Exactly the payload's length; the server fills all of it before commit(). */
  readonly bytes: Uint8Array;
  /** Writes the filled bytes, as write(offset, bytes, fua, done) would, and frees the memory once it settles (X7). */
  commit(fua: boolean, done: Completion<void>): void;
  /** Frees the memory without writing (the payload never arrived in full). */
  abandon(): void;
}

export interface Export {
  readonly name: string;
  readonly description: string;
  /** Size in bytes. */
  readonly size: number;
  readonly capabilities: ExportCapabilities;
  /** X4, X7. */
  read(offset: number, length: number, done: Completion<ReadBuffer>): void;
  /** X3, X7. */
  write(offset: number, data: Uint8Array, fua: boolean, done: Completion<void>): void;
  /** X6: memory for the payload of a WRITE of `length` bytes at `offset`, or undefined. */
  writeBuffer?(offset: number, length: number): WriteBuffer | undefined;
  flush(): Promise<void>;
  trim(offset: number, length: number, fua: boolean): Promise<void>;
  writeZeroes(offset: number, length: number, options: WriteZeroesOptions, fua: boolean): Promise<void>;
  /** Advisory prefetch (NBD_CMD_CACHE). */
  cache(offset: number, length: number): Promise<void>;
  /** Allocation status from `offset`, covering at least one byte and at most `length` bytes. */
  blockStatus(offset: number, length: number): Promise<AllocationExtent[]>;
}

/** Finds exports by name; the server asks it on every NBD_OPT_GO/INFO/LIST. */
export interface ExportRegistry {
  list(): Export[];
  get(name: string): Export | undefined;
  /** Export served to clients that ask for the empty name. */
  defaultName(): string | undefined;
}

/** read() as a promise, for callers off the data path (control I/O, tools, tests). */
export function readFrom(target: Export, offset: number, length: number): Promise<ReadBuffer> {
  return new Promise((resolve, reject) => target.read(offset, length, { succeeded: resolve, failed: reject }));
}

/** write() as a promise, for callers off the data path. */
export function writeTo(target: Export, offset: number, data: Uint8Array, fua = false): Promise<void> {
  return new Promise((resolve, reject) => target.write(offset, data, fua, { succeeded: resolve, failed: reject }));
}

/** WriteBuffer.commit() as a promise, for callers off the data path. */
export function commitWrite(buffer: WriteBuffer, fua = false): Promise<void> {
  return new Promise((resolve, reject) => buffer.commit(fua, { succeeded: resolve, failed: reject }));
}

/**
 * BufferPool: the aligned I/O memory of one thread's ring, handed out in power-of-two blocks (a buddy
 * allocator over one slab).
 *
 * Owns: the slab (a 4096-aligned view over a SharedArrayBuffer, registered with the ring once) and which parts
 * of it are in use. Knows nothing about disks or tables.
 *
 *   slab: | 4K | 4K | 8K    | 16K         | ...            |   block of order k = 4096 << k bytes,
 *           ^ blocks start at multiples of their own size      buddies differ in bit (12 + k) of the offset
 *
 * Invariants:
 *   B1. Every block is 4096-aligned in memory and in slab offset (O_DIRECT needs both aligned).
 *   B2. A block is handed to at most one holder until it is released; releasing twice throws.
 *   B3. A region submitted to the ring is not released until its completion has been reaped (the holder's
 *       duty: the VirtualDisk releases a read buffer only after the I/O completed and the caller released it).
 *   B4. allocate() never fails for a request that fits the slab: when the pool is full it waits (FIFO), so a
 *       burst of large requests backs up instead of erroring. A request larger than the slab fails with
 *       VDM_IO_TOO_LARGE at once.
 *   B5. A PoolBlock is an immutable description (offset, size, view) of one place in the slab; the object for a
 *       given place and order is made once and handed out again each time that block is allocated (no
 *       allocation per I/O). Holding it after release() means nothing: B2 is about the memory, not the object.
 * Thread: the thread that owns the ring; not shared.
 */
import { VdmapError } from '../errors/error.js';

export const PoolBlockSize = 4096;
const NotFree = -1;
const None = -1;

export interface PoolBlock {
  /** Byte offset of the block inside the slab. */
  readonly offset: number;
  /** Usable bytes (a power of two multiple of 4096). */
  readonly size: number;
  /** The block's memory. */
  readonly bytes: Uint8Array;
}

interface Waiter {
  order: number;
  resolve: (block: PoolBlock) => void;
}

export class BufferPool {
  readonly maxOrder: number;
  /** Per 4K block index: the order of the free block starting here, or NotFree. */
  private readonly freeOrder: Int8Array;
  /** Doubly linked free lists per order, by 4K block index. */
  private readonly next: Int32Array;
  private readonly previous: Int32Array;
  private readonly heads: Int32Array;
  private readonly usedOrder: Int8Array;
  /** B5: descriptions already made, per order, by block index >> order. */
  private readonly described: Array<Array<PoolBlock | undefined>>;
  private readonly waiters: Waiter[] = [];
  private bytesInUse = 0;

  constructor(readonly slab: Uint8Array) {
    const blocks = slab.byteLength / PoolBlockSize;
    if (!Number.isInteger(blocks) || blocks < 1 || (blocks & (blocks - 1)) !== 0) {
      throw new RangeError(`pool slab of ${slab.byteLength} bytes is not a power-of-two multiple of ${PoolBlockSize}`);
    }
    this.maxOrder = Math.log2(blocks);
    this.freeOrder = new Int8Array(blocks).fill(NotFree);
    this.usedOrder = new Int8Array(blocks).fill(NotFree);
    this.next = new Int32Array(blocks).fill(None);
    this.previous = new Int32Array(blocks).fill(None);
    this.heads = new Int32Array(this.maxOrder + 1).fill(None);
    this.described = Array.from({ length: this.maxOrder + 1 }, () => []);
    this.pushFree(0, this.maxOrder);
  }

  get capacity(): number {
    return this.slab.byteLength;
  }

  get inUse(): number {
    return this.bytesInUse;
  }

  /** A block of at least `bytes`, now, or undefined when the pool cannot serve it right now. */
  tryAllocate(bytes: number): PoolBlock | undefined {
    const order = this.orderFor(bytes);
    return this.waiters.length > 0 ? undefined : this.take(order);
  }

  /** A block of at least `bytes`; waits for releases when the pool is full (B4). */
  allocate(bytes: number): Promise<PoolBlock> {
    const order = this.orderFor(bytes);
    const block = this.waiters.length > 0 ? undefined : this.take(order);
    if (block) return Promise.resolve(block);
    return new Promise((resolve) => this.waiters.push({ order, resolve }));
  }

  release(block: PoolBlock): void {
    let index = block.offset / PoolBlockSize;
    let order = this.usedOrder[index];
    if (order === NotFree || (PoolBlockSize << order) !== block.size) throw new Error(`pool block at ${block.offset} released twice or never allocated`);
    this.usedOrder[index] = NotFree;
    this.bytesInUse -= block.size;
    while (order < this.maxOrder) {
      const buddy = index ^ (1 << order);
      if (this.freeOrder[buddy] !== order) break;
      this.unlinkFree(buddy, order);
      index = Math.min(index, buddy);
      order++;
    }
    this.pushFree(index, order);
    this.serveWaiters();
  }

  private orderFor(bytes: number): number {
    if (!(bytes > 0) || bytes > this.slab.byteLength) {
      throw new VdmapError('VDM_IO_TOO_LARGE', `a request of ${bytes} bytes does not fit the ${this.slab.byteLength}-byte I/O buffer pool`, { bytes, capacity: this.slab.byteLength });
    }
    return Math.max(0, Math.ceil(Math.log2(bytes / PoolBlockSize)));
  }

  private take(order: number): PoolBlock | undefined {
    let found = order;
    while (found <= this.maxOrder && this.heads[found] === None) found++;
    if (found > this.maxOrder) return undefined;
    const index = this.heads[found];
    this.unlinkFree(index, found);
    while (found > order) {          // split, keeping the lower half
      found--;
      this.pushFree(index + (1 << found), found);
    }
    this.usedOrder[index] = order;
    const size = PoolBlockSize << order;
    this.bytesInUse += size;
    return this.describe(index, order, size);
  }

  /** B5. */
  private describe(index: number, order: number, size: number): PoolBlock {
    const known = this.described[order];
    const slot = index >> order;
    let block = known[slot];
    if (block === undefined) {
      const offset = index * PoolBlockSize;
      block = { offset, size, bytes: this.slab.subarray(offset, offset + size) };
      known[slot] = block;
    }
    return block;
  }

  private serveWaiters(): void {
    while (this.waiters.length > 0) {
      const block = this.take(this.waiters[0].order);
      if (!block) return;
      this.waiters.shift()!.resolve(block);
    }
  }

  private pushFree(index: number, order: number): void {
    this.freeOrder[index] = order;
    this.previous[index] = None;
    this.next[index] = this.heads[order];
    if (this.heads[order] !== None) this.previous[this.heads[order]] = index;
    this.heads[order] = index;
  }

  private unlinkFree(index: number, order: number): void {
    this.freeOrder[index] = NotFree;
    const before = this.previous[index];
    const after = this.next[index];
    if (before === None) this.heads[order] = after;
    else this.next[before] = after;
    if (after !== None) this.previous[after] = before;
  }
}

/**
 * BufferPool (src/agent/buffer-pool.ts): the buddy allocator behind every aligned I/O buffer.
 * Oracle: block offsets and sizes, the pool's byte accounting, and a random allocate/release run checked for
 * overlap against a model of the blocks handed out.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool, type PoolBlock } from '../../src/agent/buffer-pool.js';
import { VdmapError } from '../../src/errors/error.js';

const slab = (bytes: number) => new Uint8Array(new SharedArrayBuffer(bytes));

describe('buffer pool', () => {
  it('rounds requests up to a power-of-two multiple of 4096 and aligns blocks to their size', () => {
    const pool = new BufferPool(slab(1 << 20));
    const small = pool.tryAllocate(100)!;
    const medium = pool.tryAllocate(12_000)!;
    assert.equal(small.size, 4096);
    assert.equal(medium.size, 16384);
    assert.equal(medium.offset % 16384, 0);
    assert.equal(pool.inUse, 4096 + 16384);
  });

  it('coalesces buddies so the whole slab is allocatable again after everything is released', () => {
    const pool = new BufferPool(slab(1 << 20));
    const blocks = Array.from({ length: 256 }, () => pool.tryAllocate(4096)!);
    assert.equal(pool.tryAllocate(4096), undefined);
    for (const block of blocks.reverse()) pool.release(block);
    assert.equal(pool.inUse, 0);
    assert.equal(pool.tryAllocate(1 << 20)!.size, 1 << 20);
  });

  it('never hands out overlapping blocks in a random allocate/release run', () => {
    const pool = new BufferPool(slab(1 << 22));
    const live: PoolBlock[] = [];
    let random = 7;
    const next = (n: number) => (random = (Math.imul(random, 1664525) + 1013904223) >>> 0) % n;
    for (let step = 0; step < 20_000; step++) {
      if (live.length > 0 && next(2) === 0) {
        pool.release(live.splice(next(live.length), 1)[0]);
        continue;
      }
      const block = pool.tryAllocate(1 + next(256 * 1024));
      if (!block) continue;
      for (const other of live) {
        assert.ok(block.offset + block.size <= other.offset || other.offset + other.size <= block.offset, `block ${block.offset}+${block.size} overlaps ${other.offset}+${other.size}`);
      }
      live.push(block);
    }
    const accounted = live.reduce((sum, block) => sum + block.size, 0);
    assert.equal(pool.inUse, accounted);
  });

  it('makes a request wait while the pool is full and serves it when a block is released', async () => {
    const pool = new BufferPool(slab(8192));
    const first = await pool.allocate(8192);
    let served = false;
    const waiting = pool.allocate(4096).then((block) => { served = true; return block; });
    await Promise.resolve();
    assert.equal(served, false);
    pool.release(first);
    const block = await waiting;
    assert.equal(block.size, 4096);
  });

  it('fails at once with VDM_IO_TOO_LARGE for a request larger than the slab', () => {
    const pool = new BufferPool(slab(8192));
    assert.throws(() => pool.allocate(8193), (e: unknown) => e instanceof VdmapError && e.code === 'VDM_IO_TOO_LARGE');
  });

  it('throws when a block is released twice', () => {
    const pool = new BufferPool(slab(8192));
    const block = pool.tryAllocate(4096)!;
    pool.release(block);
    assert.throws(() => pool.release(block), /released twice/);
  });
});

/**
 * WriteLocks (src/agent/write-locks.ts): partial-block writes exclude every other write to their stripes;
 * whole-block writes share. Oracle: which acquisitions resolve while others are held.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WriteLocks } from '../../src/agent/write-locks.js';

const MiB = 1024 * 1024;
const settled = async (promise: Promise<unknown>) => {
  let done = false;
  void promise.then(() => { done = true; });
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

describe('write locks', () => {
  it('lets whole-block writes to the same stripe proceed together', async () => {
    const locks = new WriteLocks();
    const a = await locks.shared(0, 4096);
    assert.equal(await settled(locks.shared(0, 8192)), true);
    a.release();
  });

  it('makes a partial write wait for whole-block writes in flight on its stripe', async () => {
    const locks = new WriteLocks();
    const write = await locks.shared(0, 4096);
    const partial = locks.exclusive([0]);
    assert.equal(await settled(partial), false);
    write.release();
    (await partial).release();
  });

  it('makes every write to a stripe wait while a partial write holds it', async () => {
    const locks = new WriteLocks();
    const partial = await locks.exclusive([512]);
    const whole = locks.shared(0, MiB);
    const other = locks.exclusive([4096]);
    assert.equal(await settled(whole), false);
    assert.equal(await settled(other), false);
    partial.release();
    (await whole).release();
    (await other).release();
  });

  it('does not block writes on other stripes', async () => {
    const locks = new WriteLocks();
    const partial = await locks.exclusive([0]);
    assert.equal(await settled(locks.shared(MiB, 2 * MiB)), true);
    partial.release();
  });

  it('takes all stripes of a multi-stripe write or none of them', async () => {
    const locks = new WriteLocks();
    const blocker = await locks.exclusive([3 * MiB]);
    const wide = locks.shared(0, 4 * MiB);
    assert.equal(await settled(wide), false);
    const first = locks.exclusive([0]);
    assert.equal(await settled(first), true, 'a waiting multi-stripe write must not sit on the stripes it already got');
    (await first).release();
    blocker.release();
    (await wide).release();
  });
});

/**
 * KeyedQueue: runs async work one at a time per key (a disk name), in the order it was queued; different keys
 * run concurrently. The controller puts every commit and every table send of a disk through it, so an agent
 * is told about a disk's epochs in epoch order whoever triggered them (an admin push, a thin allocation, a
 * session start, a resync).
 *
 * Invariants:
 *   Q1. For one key, work n + 1 starts only after work n settled (resolved or rejected).
 *   Q2. A rejection reaches only the caller of that work; the queue goes on.
 *   Q3. A key with nothing queued holds no memory.
 *
 * Thread: the controller's main thread.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key); // Q3
    });
    return result;
  }

  /** Resolves once everything queued so far, for every key, has settled. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.allSettled([...this.tails.values()]);
  }
}

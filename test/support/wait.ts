/**
 * Waiting in tests for something another thread or process does: poll a condition, with a deadline, so a test
 * whose event never comes fails with what it waited for instead of holding the whole run until the runner's timeout.
 */
import assert from 'node:assert/strict';

/** Resolves once `condition()` holds; fails with `what` after `timeoutMilliseconds` (default 10 s). */
export async function until(condition: () => boolean, what: string, timeoutMilliseconds = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMilliseconds;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `timed out after ${timeoutMilliseconds} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

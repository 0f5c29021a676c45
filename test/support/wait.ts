/**
 * Waiting in tests for something another thread or process does: poll, with a deadline, so a test whose event
 * never comes fails with what it waited for instead of holding the whole run until the runner's timeout.
 */

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError === undefined ? '' : `: ${String(lastError)}`}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Resolves once `condition()` holds, polling every 5 ms; fails with `what` after `timeoutMs` (default 10 s). */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  await eventually(what, () => (condition() ? true : undefined), timeoutMs, 5);
}

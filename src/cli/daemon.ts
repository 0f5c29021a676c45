/**
 * Running a daemon in the foreground from the CLI: wait for SIGINT or SIGTERM, then close it cleanly (a second
 * signal forces the exit). Shared by `vdmap controller`, `vdmap agent` and `vdmap up`.
 *
 * Invariant: D1. A daemon calls untilSignalled before it prints that it is up: whoever reads that line (an operator,
 * a supervisor, a test) may signal at once, and must get a clean stop, not the default death by signal. (Seen: a
 * reader woken by the line ran on the daemon's CPU and signalled it before the handler existed, 1 run in 15.)
 */
export function untilSignalled(close: () => Promise<void>, log: (line: string) => void): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log(`${signal} again: exiting without waiting`);
        process.exit(130);
      }
      stopping = true;
      log(`${signal}: flushing and stopping`);
      close().then(() => resolve(0), (error: unknown) => {
        log(`stopping failed: ${error instanceof Error ? error.message : String(error)}`);
        resolve(1);
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

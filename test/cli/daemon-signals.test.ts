/**
 * D1 of src/cli/daemon.ts: a daemon can be stopped cleanly from the moment it says it is up. Whoever reads that line
 * (an operator, a supervisor, a test) may signal at once; a daemon that installs its handlers after printing dies by
 * the signal instead of flushing and exiting 0 (seen in 1 run of 15 before the fix).
 * Oracle: a probe loaded into the daemon (fixtures/signal-probe.ts) reports the SIGINT and SIGTERM listeners at the
 * instant the ready line was written; then a real SIGINT must end the daemon with exit code 0.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { cleanupDevices, tempDir } from '../support/devices.js';
import { killAll, startDaemon } from '../support/processes.js';

after(() => { killAll(); cleanupDevices(); });

const Probe = ['--import', fileURLToPath(new URL('./fixtures/signal-probe.js', import.meta.url))];

/** The probe's report for the stdout write that contained `ready`. */
function listenersWhenReady(output: string, ready: string): { sigint: number; sigterm: number } {
  const line = output.split('\n').find((text) => text.startsWith('signal-probe:') && text.includes(ready));
  assert.ok(line !== undefined, `no probe line after the write containing '${ready}':\n${output}`);
  const match = /SIGINT (\d+) SIGTERM (\d+)/.exec(line);
  assert.ok(match !== null, line);
  return { sigint: Number(match[1]), sigterm: Number(match[2]) };
}

async function probeLine(output: () => string, ready: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    if (output().split('\n').some((text) => text.startsWith('signal-probe:') && text.includes(ready))) return output();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return output();
}

describe('daemon signals', () => {
  it('vdmap controller handles SIGINT and SIGTERM from the moment it says it is listening', async () => {
    const controller = await startDaemon(['controller', '--listen', '127.0.0.1:0'], /controller listening/, { cwd: tempDir(), nodeOptions: Probe });
    const listeners = listenersWhenReady(await probeLine(controller.output, 'controller listening'), 'controller listening');
    assert.ok(listeners.sigint >= 1 && listeners.sigterm >= 1, `handlers when ready: ${JSON.stringify(listeners)}`);
    assert.equal(await controller.stop('SIGINT'), 0, controller.output());
  });

  it('vdmap up handles SIGINT and SIGTERM from the moment its banner says it is up', async () => {
    const up = await startDaemon(['up', '--nbd', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--size', '64M'], /Ctrl-C flushes and stops/,
      { cwd: tempDir(), nodeOptions: Probe });
    const listeners = listenersWhenReady(await probeLine(up.output, 'vdmap is up'), 'vdmap is up');
    assert.ok(listeners.sigint >= 1 && listeners.sigterm >= 1, `handlers when ready: ${JSON.stringify(listeners)}`);
    assert.equal(await up.stop('SIGTERM'), 0, up.output());
  });
});

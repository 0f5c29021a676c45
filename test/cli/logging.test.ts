/**
 * The daemons' log format (src/cli/logging.ts): JSON lines for pipes and log shippers, one readable line per
 * event for a terminal, chosen by --log-format (auto: by whether stdout is a terminal).
 * Oracles: resolveLogFormat's answers; the lines a real `vdmap controller` writes to a pipe.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolveLogFormat } from '../../src/cli/logging.js';
import { cleanupDevices, tempDir } from '../support/devices.js';
import { killAll, startDaemon, vdmap } from '../support/processes.js';
import { until } from '../support/wait.js';

after(() => { killAll(); cleanupDevices(); });

describe('--log-format', () => {
  it('auto means pretty on a terminal and json otherwise', () => {
    assert.equal(resolveLogFormat('auto', true), 'pretty');
    assert.equal(resolveLogFormat('auto', false), 'json');
    assert.equal(resolveLogFormat('json', true), 'json');
    assert.equal(resolveLogFormat('pretty', false), 'pretty');
  });

  it('refuses an unknown format with VDM_CLI_USAGE, naming the choices', () => {
    assert.throws(() => resolveLogFormat('xml', false), { code: 'VDM_CLI_USAGE', message: /--log-format xml: use one of auto, json, pretty/ });
  });

  it('writes JSON lines to a pipe by default', async () => {
    // Waits for the ready line (signal handlers are in) and for the log line, in either order: pino writes its
    // lines asynchronously, so the ready line may reach the pipe first.
    const bothLines = /^(?=[\s\S]*controller listening)(?=[\s\S]*"msg":"controller started")/;
    const controller = await startDaemon(['controller', '--listen', '127.0.0.1:0'], bothLines, { cwd: tempDir() });
    const started = controller.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { msg: string; name: string });
    assert.ok(started.some((line) => line.msg === 'controller started' && line.name === 'vdmap-controller'), controller.output());
    assert.equal(await controller.stop(), 0);
  });

  it('writes one readable line per event with --log-format pretty', async () => {
    const controller = await startDaemon(['controller', '--listen', '127.0.0.1:0', '--log-format', 'pretty'], /controller listening/, { cwd: tempDir() });
    const output = controller.output();
    assert.match(output, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(vdmap-controller\): controller started \{"addresses":/m);
    assert.doesNotMatch(output, /^\{"level"/m, 'no JSON lines');
    assert.equal(await controller.stop(), 0);
  });
});

describe('admin request log lines', () => {
  const requestLines = (output: string) => output.split('\n').filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string; method?: string })
    .filter((line) => line.msg.startsWith('admin request'));

  it('logs requests that change something at info, and leaves read-only ones, answered or refused, to debug', async () => {
    const cwd = tempDir();
    const controller = await startDaemon(['controller', '--listen', '127.0.0.1:0'], /controller listening/, { cwd });
    assert.equal((await vdmap(['disk', 'ls'], { cwd })).code, 0);
    assert.equal((await vdmap(['epoch', 'nosuch'], { cwd })).code, 3);
    assert.equal((await vdmap(['disk', 'create', 'audited', '--size', '64M', '--thin'], { cwd })).code, 0);
    await until(() => requestLines(controller.output()).some((line) => line.method === 'disk.create'), 'the disk.create request line');
    assert.deepEqual(requestLines(controller.output()).map((line) => [line.method, line.level]), [['disk.create', 30]]);
    assert.equal(await controller.stop(), 0);
  });
});

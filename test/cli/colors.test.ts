/**
 * Colours in the CLI's help and usage errors: on a terminal only, and never with NO_COLOR set (no-color.org).
 * Oracles: colorsWanted's answers; the bytes a real `vdmap` writes to a pipe.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { colorsWanted } from '../../src/cli/colors.js';
import { cleanupDevices, tempDir } from '../support/devices.js';
import { vdmap } from '../support/processes.js';

after(() => cleanupDevices());

const Escape = /\x1b\[/;

describe('CLI colours', () => {
  it('colours a terminal, and nothing that is not one', () => {
    assert.equal(colorsWanted({ isTTY: true }, {}), true);
    assert.equal(colorsWanted({ isTTY: false }, {}), false);
    assert.equal(colorsWanted({}, {}), false);
  });

  it('colours nothing when NO_COLOR is set to a non-empty value, even on a terminal', () => {
    assert.equal(colorsWanted({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(colorsWanted({ isTTY: true }, { NO_COLOR: '' }), true, 'an empty NO_COLOR is as if unset');
  });

  it('writes a command\'s help to a pipe without ANSI escapes', async () => {
    const help = await vdmap(['disk', 'create', '--help'], { cwd: tempDir() });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /vdmap disk create/);
    assert.doesNotMatch(help.stdout, Escape);
  });

  it('writes a usage error to a pipe without ANSI escapes', async () => {
    const refused = await vdmap(['disk', 'create'], { cwd: tempDir() });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /Not enough positional arguments|required/);
    assert.doesNotMatch(refused.stderr, Escape);
  });
});

/**
 * Proves, end to end, with a client nobody here wrote: fio writing and verifying (crc32c) through vdmap's NBD export
 * over two connections, while the agent migrates extents underneath it (NOWRITE, O_DIRECT copy, flip), reads back
 * every block as it last wrote it. The same run as `npm run soak`, short.
 * Oracle: fio's own verification (exit code and verify errors) and the migrator's counts.
 * Needs: fio (apt-get install -y fio); fails without it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { runSoak } from '../../bench/support/soak.js';
import { cleanupDevices, isRoot, loopDevice, sparseFile } from '../support/devices.js';

after(cleanupDevices);

describe('soak', () => {
  it('fio verifies every block it wrote over NBD while extents migrate underneath', async () => {
    const size = 256 * 1024 * 1024;
    const device = isRoot() ? loopDevice(size) : sparseFile(size);
    const result = await runSoak({ device, deviceSize: size, seconds: 8, migrateEveryMs: 10 });
    assert.equal(result.fioExitCode, 0, `fio failed:\n${result.fioErrors}`);
    assert.equal(result.verifyErrors, 0);
    assert.deepEqual(result.migrations.failures, []);
    assert.ok(result.migrations.migrations >= 20, `only ${result.migrations.migrations} migrations: the test did not churn the table`);
    assert.ok(result.writeIops > 0);
  });
});

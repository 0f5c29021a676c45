/**
 * npm run soak [-- --seconds N (120)] [--device PATH] [--migrate-every-ms MS (20)] [--threads N (2)] [--json]
 *
 * Sustained load with continuous migration (bench/support/soak.ts): fio randwrite 4k-128k at QD16 over two NBD
 * connections, verifying crc32c as it goes, while the agent moves an extent every MS milliseconds (NOWRITE, copy,
 * flip). Prints the write IOPS, the verify outcome and the migrations done; exits 1 when any verify failed or a
 * migration failed. Without --device it makes a 1 GiB tmpfs-backed loop device (root).
 * Needs fio (apt-get install -y fio).
 */
import { parseArgs } from 'node:util';
import { scratchDevice } from './support/scratch-device.js';
import { runSoak } from './support/soak.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '120' },
    device: { type: 'string' },
    'migrate-every-ms': { type: 'string', default: '20' },
    threads: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});

const device = scratchDevice(values.device);
try {
  const result = await runSoak({
    device: device.path, deviceSize: device.size, seconds: Number(values.seconds),
    migrateEveryMs: Number(values['migrate-every-ms']), threads: Number(values.threads),
  });
  if (values.json) {
    console.log(JSON.stringify(result, null, 1));
  } else {
    console.log(`soak: ${result.seconds} s, write ${(result.writeIops / 1000).toFixed(1)}K IOPS (p99 ${result.writeP99Us.toFixed(0)} us), ` +
      `${result.migrations.migrations} migrations, ` +
      `verify ${result.fioExitCode === 0 && result.verifyErrors === 0 ? 'OK' : `FAILED (${result.verifyErrors} errors)`}` +
      (result.migrations.failures.length > 0 ? `, ${result.migrations.failures.length} migration failures: ${result.migrations.failures[0]}` : ''));
    if (result.fioErrors) console.log(result.fioErrors);
  }
  process.exitCode = result.fioExitCode === 0 && result.verifyErrors === 0 && result.migrations.failures.length === 0 ? 0 : 1;
} finally {
  device.dispose();
}

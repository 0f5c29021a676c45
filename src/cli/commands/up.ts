/**
 * `vdmap up` (also `npm start`): the whole system on one machine in the foreground, from nothing but the install.
 *
 * Steps, each idempotent so that starting again reuses the same data:
 *   1. start an embedded controller with its store under --data (default ./vdmap-data);
 *   2. enroll the local agent once (its credential is kept in DATA/agent.token, mode 0600);
 *   3. register the devices given with --device (repeatable), or create a sparse file-backed one
 *      (DATA/devices/dev0.img) the first time;
 *   4. create the disk vd0 and attach it to the local agent if no disk exists yet (later starts leave attachments
 *      as the operator set them: a detached disk stays detached);
 *   5. start the agent (I/O workers, NBD on --nbd and --socket) and wait until it applied every table;
 *   6. print the NBD URIs and commands to try; on SIGINT/SIGTERM stop the agent (flushing every device) and
 *      then the controller.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync, openSync, ftruncateSync, closeSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'clipanion';
import type { AdminClient } from '../../controller/admin-client.js';
import { connectAdmin } from '../../controller/admin-client.js';
import { formatListenAddress } from '../../errors/errno.js';
import { VdmapError } from '../../errors/error.js';
import { ReportingCommand } from '../admin-command.js';
import { DefaultControllerPort, DefaultDataDir, naming, parseHostPort } from '../address.js';
import { probeDevice, requireDevicePath } from '../device-probe.js';
import { parseOptionalInteger } from '../numbers.js';
import { untilSignalled } from '../daemon.js';
import { daemonLogger, logFormatOption, resolveLogFormat } from '../logging.js';
import type { Reporter } from '../reporter.js';
import { formatSize, parseSize } from '../sizes.js';

const AgentName = 'local';
const DefaultDisk = 'vd0';

export class UpCommand extends ReportingCommand {
  static override paths = [['up']];
  static override usage = Command.Usage({
    category: 'Daemons',
    description: 'Run a controller and one agent on this machine and serve vd0 over NBD (the quick start)',
    details: 'With no --device it creates a sparse 4 GiB file-backed device in DATA/devices. Starting again reuses the data. Ctrl-C flushes and stops.',
    examples: [['Start with defaults', 'vdmap up'], ['Serve a real device on another port', 'vdmap up --device /dev/nvme1n1 --nbd 0.0.0.0:10809']],
  });
  data = Option.String('--data', DefaultDataDir, { description: 'Data directory (default ./vdmap-data)' });
  devices = Option.Array('--device', { description: 'Block device or file to use (repeatable)' });
  nbd = Option.String('--nbd', '127.0.0.1:10809', { description: 'NBD TCP endpoint HOST:PORT (default 127.0.0.1:10809)' });
  socket = Option.String('--socket', { description: 'NBD Unix socket (default DATA/nbd.sock)' });
  listen = Option.String('--listen', `127.0.0.1:${DefaultControllerPort}`, { description: 'Controller TCP endpoint (default 127.0.0.1:10810)' });
  size = Option.String('--size', '1G', { description: 'Size of vd0 when it is created (default 1G)' });
  workers = Option.String('--workers', { description: 'I/O worker threads (default: one per core)' });
  logFormat = logFormatOption();

  protected async run(reporter: Reporter): Promise<number> {
    // Every option is checked before anything is created: a typo leaves no data directory, device file or credential.
    const size = parseSize(this.size, '--size');
    const listen = parseHostPort(this.listen, '--listen');
    const nbd = parseHostPort(this.nbd, '--nbd');
    const workers = parseOptionalInteger(this.workers, '--workers', { min: 1 });
    for (const device of this.devices ?? []) requireDevicePath(device, '--device');
    const logFormat = resolveLogFormat(this.logFormat, process.stdout.isTTY === true);
    const dataDir = resolve(this.data);
    makeDataDir(this.data, dataDir);
    const log = (line: string) => this.context.stderr.write(`${line}\n`);
    // The daemons are loaded only when run, so that every other command starts fast.
    const [{ startController }, { startAgent }] = await Promise.all([import('../../controller/controller.js'), import('../../agent/agent.js')]);
    const controller = await startController({ dataDir, listen, socketPath: join(dataDir, 'controller.sock'), logger: daemonLogger('vdmap-controller', logFormat) })
      .catch((error: unknown) => { throw naming([['--listen', listen], ['--data', join(dataDir, 'controller.sock')]], error); });
    let agent: { close(): Promise<void> } | undefined;
    try {
      const controllerSocket = join(dataDir, 'controller.sock');
      const admin = await connectAdmin(controllerSocket);
      let credential: string;
      try {
        credential = await enrollOnce(admin, dataDir);
        await registerDevices(admin, this.devices ?? [defaultDevice(dataDir)]);
        await ensureDisk(admin, size);
      } finally {
        await admin.close();
      }
      const nbdSocket = this.socket ?? join(dataDir, 'nbd.sock');
      const started = await startAgent({
        controller: controllerSocket, name: AgentName, credential, dataDir, logger: daemonLogger('vdmap-agent', logFormat),
        nbd: { tcp: nbd, unixPath: nbdSocket },
        ...(workers !== undefined ? { workers } : {}),
      }).catch((error: unknown) => { throw naming([['--nbd', nbd], [this.socket ? '--socket' : '--data', nbdSocket], ['--data', join(dataDir, 'agent.sock')]], error); });
      agent = started;
      const bound = started.addresses.nbd.tcp; // the port the kernel gave, when --nbd asked for port 0
      const nbdTcp = bound === undefined ? this.nbd : formatListenAddress(bound);
      const disks = await waitConverged(controllerSocket);
      const stopped = untilSignalled(async () => { // before the banner says it is up (D1 of daemon.ts)
        await started.close();
        await controller.close();
      }, log);
      reporter.result({ controller: controller.addresses, nbd: { tcp: nbdTcp, unix: nbdSocket }, disks }, () => banner(nbdTcp, nbdSocket, disks));
      return stopped;
    } catch (error) {
      await agent?.close();
      await controller.close();
      throw error;
    }
  }
}

/** Creates the --data directory (mode 0700) if it is missing; a path that is not a directory is a usage error. */
function makeDataDir(given: string, dataDir: string): void {
  try {
    if (existsSync(dataDir) && !statSync(dataDir).isDirectory()) throw new VdmapError('VDM_CLI_USAGE', `--data ${given} is not a directory`, { option: '--data', value: given });
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    if (error instanceof VdmapError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    const why = code === 'ENOTDIR' || code === 'EEXIST' ? 'a part of it is not a directory' : `${code}: ${(error as Error).message}`;
    throw new VdmapError('VDM_CLI_USAGE', `--data ${given} cannot be created (${why})`, { option: '--data', value: given, cause: code });
  }
}

async function enrollOnce(admin: AdminClient, dataDir: string): Promise<string> {
  const tokenFile = join(dataDir, 'agent.token');
  const agents = await admin.call('agent.list', {});
  if (existsSync(tokenFile) && agents.some((a) => a.name === AgentName)) return readFileSync(tokenFile, 'utf8').trim();
  const { credential } = await admin.call('agent.enroll', { name: AgentName });
  writeFileSync(tokenFile, `${credential}\n`, { mode: 0o600 });
  return credential;
}

function defaultDevice(dataDir: string): string {
  const path = join(dataDir, 'devices', 'dev0.img');
  if (!existsSync(path)) {
    mkdirSync(join(dataDir, 'devices'), { recursive: true });
    const fd = openSync(path, 'w', 0o600);
    ftruncateSync(fd, 4 * 2 ** 30);
    closeSync(fd);
  }
  return path;
}

async function registerDevices(admin: AdminClient, paths: string[]): Promise<void> {
  const known = await admin.call('device.list', {});
  for (const [index, given] of paths.entries()) {
    const path = existsSync(given) ? realpathSync(given) : resolve(given); // the name `device add` registers too
    if (known.some((device) => device.paths.some((p) => p.path === path))) continue;
    const info = probeDevice(path, '--device', { readOnly: false });
    const id = paths.length === 1 && basename(path) === 'dev0.img' ? 'dev0' : `dev${known.length + index}`;
    await admin.call('device.add', { id, size: info.size, logicalBlockSize: info.logicalBlockSize, paths: [{ agent: AgentName, path }] });
  }
}

async function ensureDisk(admin: AdminClient, size: number): Promise<void> {
  const disks = await admin.call('disk.list', {});
  if (disks.length > 0) return;
  try {
    await admin.call('disk.create', { name: DefaultDisk, size });
  } catch (error) {
    if (error instanceof VdmapError && error.code === 'VDM_DISK_NO_SPACE') throw await tooSmall(admin, size, error);
    throw error;
  }
  await admin.call('disk.attach', { disk: DefaultDisk, agent: AgentName });
}

/**
 * vd0 does not fit on the devices `up` was given. VDM_DISK_NO_SPACE's hint (`vdmap device add`) does not help here,
 * since `up` has exited by then: the flags do, so this says what the disk needs, what the devices have, and which
 * flag fixes it.
 */
async function tooSmall(admin: AdminClient, size: number, cause: VdmapError): Promise<VdmapError> {
  const devices = await admin.call('device.list', {});
  const free = devices.reduce((sum, device) => sum + Math.max(0, device.size - device.allocated), 0);
  const fits = Math.floor(free / 2 ** 20) * 2 ** 20; // extents are 1 MiB by default
  const perDevice = devices.map((device) => `${device.id} ${formatSize(Math.max(0, device.size - device.allocated))}`).join(', ');
  return new VdmapError('VDM_CLI_USAGE',
    `disk ${DefaultDisk} needs ${formatSize(size)} but the devices have ${formatSize(free)} free (${perDevice}): ` +
    `start with --size ${formatSize(fits)} or less, or give a bigger --device`,
    { disk: DefaultDisk, size, free, cause: cause.toRecord() });
}

/** How to run the CLI from here: ./vdmap in the checkout, else the checkout's script by its full path. */
function cliCommand(): string {
  const script = fileURLToPath(new URL('../../../../vdmap', import.meta.url));
  if (!existsSync(script)) return 'vdmap';
  return resolve(process.cwd(), 'vdmap') === script ? './vdmap' : script;
}

/** Waits until the local agent applied the latest epoch of every disk attached to it (10 s at most). */
async function waitConverged(controllerSocket: string): Promise<Array<{ name: string; size: number; epoch: number }>> {
  const admin = await connectAdmin(controllerSocket);
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const disks = (await admin.call('disk.list', {})).filter((disk) => disk.agents.includes(AgentName));
      const views = await Promise.all(disks.map((disk) => admin.call('epoch.show', { disk: disk.name })));
      if (views.every((view) => view.agents.some((a) => a.agent === AgentName && a.lag === 0))) {
        return disks.map((disk) => ({ name: disk.name, size: disk.size, epoch: disk.epoch }));
      }
      if (Date.now() > deadline) throw new VdmapError('VDM_CLI_UNREACHABLE', 'the local agent did not apply its tables within 10 s: see the log above');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await admin.close();
  }
}

function banner(nbd: string, socket: string, disks: Array<{ name: string; size: number; epoch: number }>): string {
  const disk = disks.some((d) => d.name === DefaultDisk) ? DefaultDisk : disks[0]?.name ?? DefaultDisk;
  const served = disks.length === 0 ? 'no disk is attached to this agent (vdmap disk attach DISK local)'
    : disks.map((d) => `${d.name} (${formatSize(d.size)}, epoch ${d.epoch})`).join(', ');
  const vdmap = cliCommand();
  const tcp = `nbd://${nbd}/${disk}`;
  const unix = `nbd+unix:///${disk}?socket=${socket}`;
  return [
    `vdmap is up: ${served}`,
    `  NBD: ${tcp}`,
    `       ${unix}`,
    '',
    'Try:',
    `  qemu-img info ${tcp}`,
    `  nbdinfo --map '${unix}'`,
    `  fio --name=try --ioengine=nbd --uri='${unix}' --rw=randread --bs=4k --iodepth=32 --runtime=10 --time_based`,
    `  ${vdmap} disk ls`,
    `  ${vdmap} epoch ${disk}`,
    `  ${vdmap} table show ${disk}`,
    `  ${vdmap} agent inspect ${AgentName}`,
    '',
    'Ctrl-C flushes and stops.',
  ].join('\n');
}

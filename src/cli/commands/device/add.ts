import { existsSync, realpathSync, statSync } from 'node:fs';
import { Command, Option } from 'clipanion';
import type { DeviceView } from '../../../controller/admin-api.js';
import { VdmapError } from '../../../errors/error.js';
import { AdminCommand } from '../../admin-command.js';
import { probeDevice } from '../../device-probe.js';
import { formatSize, parseSize } from '../../sizes.js';
import type { Reporter } from '../../reporter.js';

export class DeviceAddCommand extends AdminCommand {
  static override paths = [['device', 'add']];
  static override usage = Command.Usage({
    category: 'Devices',
    description: 'Register a block device (or O_DIRECT-capable file) that disks may map into',
    details: 'Size and logical block size are read from PATH on this host unless given. `--agent` names the agent whose host sees the device at PATH (repeat `--path AGENT=PATH` for several hosts). A PATH that exists here is registered as its real path (symlinks resolved). An id already registered, or a path (or another name of the same file or block device) an agent already sees as a device, is refused with exit 4 and nothing changes.',
    examples: [
      ['Register /dev/nvme1n1 as seen by agent host1', 'vdmap device add nvme1 --path /dev/nvme1n1 --agent host1'],
      ['Register a file with an explicit size', 'vdmap device add d0 --path /srv/d0.img --agent node1 --size 100G'],
    ],
  });

  id = Option.String({ required: true });
  devicePath = Option.String('--path', { required: true, description: 'Where the agent host sees the device (or AGENT=PATH)' });
  agent = Option.String('--agent', 'local', { description: 'The agent whose host sees the device at --path (default: local)' });
  size = Option.String('--size', { description: 'Size in bytes or with K/M/G/T (default: read from the path)' });
  blockSize = Option.String('--block-size', { description: 'Logical block size (default: read from the path)' });

  protected async run(reporter: Reporter): Promise<number> {
    const [agent, given] = this.devicePath.includes('=') ? this.devicePath.split('=', 2) : [this.agent, this.devicePath];
    const path = existsSync(given) ? realpathSync(given) : given; // one name per file: symlinks and relative paths resolved
    const sizeGiven = this.size === undefined ? undefined : parseSize(this.size, '--size');
    const blockSizeGiven = this.blockSize === undefined ? undefined : parseSize(this.blockSize, '--block-size');
    if (existsSync(path)) refuseSameFile(agent, path, await this.call('device.list', {}));
    const facts = sizeGiven !== undefined && blockSizeGiven !== undefined ? undefined : probeDevice(path, '--path');
    const size = sizeGiven ?? facts!.size;
    const logicalBlockSize = blockSizeGiven ?? facts!.logicalBlockSize;
    const device = await this.call('device.add', { id: this.id, size, logicalBlockSize, paths: [{ agent, path }] });
    return reporter.result(device, (d) => `device ${d.id}: ${formatSize(d.size)}, ${d.logicalBlockSize}-byte blocks, ${d.paths.map((p) => `${p.agent}:${p.path}`).join(' ')}`);
  }
}

/**
 * The controller compares paths as text (admin-handlers.ts AH4); here, on a host that sees the file, another name
 * of the same file (a hard link, a bind mount) or of the same block device (another device node) is refused too.
 */
function refuseSameFile(agent: string, path: string, devices: DeviceView[]): void {
  const mine = statSync(path);
  for (const device of devices) {
    for (const registered of device.paths) {
      if (registered.agent !== agent || !existsSync(registered.path)) continue;
      const theirs = statSync(registered.path);
      const same = mine.isBlockDevice() && theirs.isBlockDevice() ? mine.rdev === theirs.rdev : mine.dev === theirs.dev && mine.ino === theirs.ino;
      if (same) {
        throw new VdmapError('VDM_ADMIN_DEVICE_PATH_TAKEN', `${path} is the same ${mine.isBlockDevice() ? 'block device' : 'file'} as ${registered.path}, registered as device '${device.id}' for agent '${agent}'; nothing changed`,
          { agent, path, registeredPath: registered.path, registeredAs: device.id });
      }
    }
  }
}

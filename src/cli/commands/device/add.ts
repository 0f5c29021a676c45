import { Command, Option } from 'clipanion';
import { AdminCommand } from '../../admin-command.js';
import { probeDevice } from '../../device-probe.js';
import { formatSize, parseSize } from '../../sizes.js';
import type { Reporter } from '../../reporter.js';

export class DeviceAddCommand extends AdminCommand {
  static override paths = [['device', 'add']];
  static override usage = Command.Usage({
    category: 'Devices',
    description: 'Register a block device (or O_DIRECT-capable file) that disks may map into',
    details: 'Size and logical block size are read from PATH on this host unless given. `--agent` names the agent whose host sees the device at PATH (repeat `--path AGENT=PATH` for several hosts).',
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
    const [agent, path] = this.devicePath.includes('=') ? this.devicePath.split('=', 2) : [this.agent, this.devicePath];
    const given = this.size === undefined ? undefined : parseSize(this.size, '--size');
    const givenBlockSize = this.blockSize === undefined ? undefined : parseSize(this.blockSize, '--block-size');
    const facts = given !== undefined && givenBlockSize !== undefined ? undefined : probeDevice(path, '--path');
    const size = given ?? facts!.size;
    const logicalBlockSize = givenBlockSize ?? facts!.logicalBlockSize;
    const device = await this.call('device.add', { id: this.id, size, logicalBlockSize, paths: [{ agent, path }] });
    return reporter.result(device, (d) => `device ${d.id}: ${formatSize(d.size)}, ${d.logicalBlockSize}-byte blocks, ${d.paths.map((p) => `${p.agent}:${p.path}`).join(' ')}`);
  }
}

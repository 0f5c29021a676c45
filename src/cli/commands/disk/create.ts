import { Command, Option } from 'clipanion';
import { VdmapError } from '../../../errors/error.js';
import { isExtentSize } from '../../../controller/admin-params.js';
import { AdminCommand } from '../../admin-command.js';
import type { Reporter } from '../../reporter.js';
import { formatSize, parseSize } from '../../sizes.js';
import { describeDisk } from './ls.js';

export class DiskCreateCommand extends AdminCommand {
  static override paths = [['disk', 'create']];
  static override usage = Command.Usage({
    category: 'Disks',
    description: 'Create a virtual disk and its first table (epoch 1)',
    details: 'A thin disk maps no extent until it is written (the controller allocates on the agent\'s fault); a thick disk is allocated now on the given devices, first fit.',
    examples: [
      ['A 10 GiB thin disk', 'vdmap disk create vd1 --size 10G --thin'],
      ['A thick disk on device d0 with 4 MiB extents', 'vdmap disk create vd2 --size 1T --extent-size 4M --device d0'],
    ],
  });
  name = Option.String({ required: true });
  size = Option.String('--size', { required: true, description: 'Disk size (bytes or K/M/G/T)' });
  extentSize = Option.String('--extent-size', { description: 'Extent size, a power of two >= 4K (default 1M)' });
  thin = Option.Boolean('--thin', false, { description: 'Allocate extents on first write' });
  devices = Option.Array('--device', { description: 'Devices to allocate on (repeatable; default: all)' });

  protected async run(reporter: Reporter): Promise<number> {
    const size = parseSize(this.size, '--size');
    const extentSize = this.extentSize === undefined ? undefined : parseExtentSize(this.extentSize);
    const disk = await this.call('disk.create', {
      name: this.name, size, thin: this.thin,
      ...(extentSize !== undefined ? { extentSize } : {}),
      ...(this.devices ? { devices: this.devices } : {}),
    });
    return reporter.result(disk, (d) => `created ${describeDisk(d)}; extents ${formatSize(d.extentSize)}`);
  }
}

/** --extent-size: a power of two >= 4K, refused here (VDM_CLI_USAGE) before anything is sent. */
function parseExtentSize(text: string): number {
  const value = parseSize(text, '--extent-size');
  if (!isExtentSize(value)) {
    throw new VdmapError('VDM_CLI_USAGE', `--extent-size '${text}' is not a power of two >= 4K (4K, 8K, 16K, ... 1M, ...)`, { option: '--extent-size', value: text });
  }
  return value;
}

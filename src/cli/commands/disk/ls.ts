import { Command } from 'clipanion';
import type { DiskView } from '../../../controller/admin-api.js';
import { AdminCommand } from '../../admin-command.js';
import { table, type Reporter } from '../../reporter.js';
import { formatSize } from '../../sizes.js';

export function describeDisk(d: DiskView): string {
  return `disk ${d.name}: ${formatSize(d.size)} at epoch ${d.epoch}, ${d.allocatedExtents}/${d.extentCount} extents allocated`;
}

export class DiskListCommand extends AdminCommand {
  static override paths = [['disk', 'ls']];
  static override usage = Command.Usage({ category: 'Disks', description: 'List virtual disks', examples: [['List disks', 'vdmap disk ls']] });

  protected async run(reporter: Reporter): Promise<number> {
    const disks = await this.call('disk.list', {});
    return reporter.result(disks, (list) => table(['DISK', 'SIZE', 'EXTENT', 'EPOCH', 'ALLOCATED', 'AGENTS'],
      list.map((d) => [d.name, formatSize(d.size), formatSize(d.extentSize), d.epoch, `${d.allocatedExtents}/${d.extentCount}`, d.agents.join(',') || '-'])));
  }
}

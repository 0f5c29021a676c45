import { Command } from 'clipanion';
import { AdminCommand } from '../../admin-command.js';
import { table, type Reporter } from '../../reporter.js';
import { formatSize } from '../../sizes.js';

export class DeviceListCommand extends AdminCommand {
  static override paths = [['device', 'ls']];
  static override usage = Command.Usage({ category: 'Devices', description: 'List registered devices and how much of each is mapped', examples: [['List devices', 'vdmap device ls']] });

  protected async run(reporter: Reporter): Promise<number> {
    const devices = await this.call('device.list', {});
    return reporter.result(devices, (list) => table(['DEVICE', 'SIZE', 'BLOCK', 'ALLOCATED', 'PATHS'],
      list.map((d) => [d.id, formatSize(d.size), d.logicalBlockSize, formatSize(d.allocated), d.paths.map((p) => `${p.agent}:${p.path}`).join(' ')])));
  }
}

import { Command, Option } from 'clipanion';
import { AdminCommand } from '../../admin-command.js';
import type { Reporter } from '../../reporter.js';

export class DeviceRemoveCommand extends AdminCommand {
  static override paths = [['device', 'rm']];
  static override usage = Command.Usage({ category: 'Devices', description: 'Unregister a device no table maps into', examples: [['Remove device d0', 'vdmap device rm d0']] });
  id = Option.String({ required: true });

  protected async run(reporter: Reporter): Promise<number> {
    const result = await this.call('device.remove', { id: this.id });
    return reporter.result(result, (r) => (r.removed ? `device ${this.id} removed` : `device ${this.id} was not registered`));
  }
}

import { Command, Option } from 'clipanion';
import { VdmapError } from '../../../errors/error.js';
import { AdminCommand } from '../../admin-command.js';
import type { Reporter } from '../../reporter.js';

export class DeviceRemoveCommand extends AdminCommand {
  static override paths = [['device', 'rm']];
  static override usage = Command.Usage({ category: 'Devices', description: 'Unregister a device no table maps into', details: 'A device a kept table version maps into is refused with VDM_STORE_IN_USE (exit 4); a device that is not registered is VDM_STORE_NOT_FOUND (exit 3).', examples: [['Remove device d0', 'vdmap device rm d0']] });
  id = Option.String({ required: true });

  protected async run(reporter: Reporter): Promise<number> {
    const result = await this.call('device.remove', { id: this.id });
    // The admin API answers {removed: false} (a retried request is harmless); for the operator it is a not-found.
    if (!result.removed) throw new VdmapError('VDM_STORE_NOT_FOUND', `device '${this.id}' is not registered: nothing was removed`, { kind: 'device', name: this.id });
    return reporter.result(result, () => `device ${this.id} removed`);
  }
}

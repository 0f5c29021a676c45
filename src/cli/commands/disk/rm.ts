import { Command, Option } from 'clipanion';
import { VdmapError } from '../../../errors/error.js';
import { AdminCommand } from '../../admin-command.js';
import type { Reporter } from '../../reporter.js';

export class DiskRemoveCommand extends AdminCommand {
  static override paths = [['disk', 'rm']];
  static override usage = Command.Usage({ category: 'Disks', description: 'Remove a virtual disk (detach it from every agent first)', details: 'A disk still attached to an agent is refused with VDM_STORE_IN_USE (exit 4), naming the agents: detach it from each with `vdmap disk detach`. A disk that does not exist is VDM_STORE_NOT_FOUND (exit 3), like every other command\'s not found.', examples: [['Remove vd1', 'vdmap disk detach vd1 host1 && vdmap disk rm vd1']] });
  name = Option.String({ required: true });

  protected async run(reporter: Reporter): Promise<number> {
    const result = await this.call('disk.remove', { name: this.name });
    // The admin API answers {removed: false} (a retried request is harmless); for the operator it is a not-found.
    if (!result.removed) throw new VdmapError('VDM_STORE_NOT_FOUND', `disk '${this.name}' does not exist: nothing was removed`, { kind: 'disk', name: this.name });
    return reporter.result(result, () => `disk ${this.name} removed`);
  }
}

import { Command, Option } from 'clipanion';
import { AdminCommand } from '../../admin-command.js';
import type { Reporter } from '../../reporter.js';

export class DiskRemoveCommand extends AdminCommand {
  static override paths = [['disk', 'rm']];
  static override usage = Command.Usage({ category: 'Disks', description: 'Remove a virtual disk (detach it from every agent first)', details: 'A disk still attached to an agent is refused with VDM_STORE_IN_USE (exit 4), naming the agents: detach it from each with `vdmap disk detach`.', examples: [['Remove vd1', 'vdmap disk detach vd1 host1 && vdmap disk rm vd1']] });
  name = Option.String({ required: true });

  protected async run(reporter: Reporter): Promise<number> {
    const result = await this.call('disk.remove', { name: this.name });
    return reporter.result(result, (r) => (r.removed ? `disk ${this.name} removed` : `disk ${this.name} did not exist`));
  }
}

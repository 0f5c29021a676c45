import { Command, Option } from 'clipanion';
import { AdminCommand } from '../../admin-command.js';
import type { Reporter } from '../../reporter.js';

export class DiskAttachCommand extends AdminCommand {
  static override paths = [['disk', 'attach']];
  static override usage = Command.Usage({
    category: 'Disks', description: 'Let an agent serve a disk (it receives the table and exports the disk over NBD)',
    examples: [['Serve vd1 from agent host1', 'vdmap disk attach vd1 host1']],
  });
  disk = Option.String({ required: true });
  agent = Option.String({ required: true });

  protected async run(reporter: Reporter): Promise<number> {
    const result = await this.call('disk.attach', { disk: this.disk, agent: this.agent });
    return reporter.result(result, (r) => `disk ${r.disk} attached to agent ${r.agent}`);
  }
}

export class DiskDetachCommand extends AdminCommand {
  static override paths = [['disk', 'detach']];
  static override usage = Command.Usage({ category: 'Disks', description: 'Stop an agent serving a disk', examples: [['Stop serving vd1 from host1', 'vdmap disk detach vd1 host1']] });
  disk = Option.String({ required: true });
  agent = Option.String({ required: true });

  protected async run(reporter: Reporter): Promise<number> {
    const result = await this.call('disk.detach', { disk: this.disk, agent: this.agent });
    return reporter.result(result, (r) => (r.detached ? `disk ${this.disk} detached from ${this.agent}` : `disk ${this.disk} was not attached to ${this.agent}`));
  }
}

import { Command } from 'clipanion';
import { AdminCommand } from '../../admin-command.js';
import { table, type Reporter } from '../../reporter.js';

export class AgentListCommand extends AdminCommand {
  static override paths = [['agent', 'ls']];
  static override usage = Command.Usage({ category: 'Agents', description: 'List enrolled agents and what they applied', examples: [['List agents', 'vdmap agent ls']] });

  protected async run(reporter: Reporter): Promise<number> {
    const agents = await this.call('agent.list', {});
    return reporter.result(agents, (list) => table(['AGENT', 'CONNECTED', 'APPLIED'],
      list.map((a) => [a.name, a.connected ? 'yes' : 'no', a.applied.map((x) => `${x.disk}@${x.epoch}`).join(' ') || '-'])));
  }
}

import { Command, Option } from 'clipanion';
import { AdminCommand } from '../../admin-command.js';
import { table, type Reporter } from '../../reporter.js';

const ago = (time: number | null) => (time === null ? '-' : `${Math.max(0, Math.round((Date.now() - time) / 1000))}s ago`);

export class EpochCommand extends AdminCommand {
  static override paths = [['epoch']];
  static override usage = Command.Usage({
    category: 'Tables',
    description: 'Show a disk\'s epoch at the controller and on every attached agent',
    details: 'LAG is how many epochs an agent is behind; BLOCKING means new I/O waits on that agent (a drain, or a fence after a lost lease).',
    examples: [['Are the agents of vd0 converged?', 'vdmap epoch vd0']],
  });
  disk = Option.String({ required: true });

  protected async run(reporter: Reporter): Promise<number> {
    const view = await this.call('epoch.show', { disk: this.disk });
    return reporter.result(view, (v) => `disk ${v.disk}: controller epoch ${v.epoch}\n${table(['AGENT', 'CONNECTED', 'APPLIED', 'LAG', 'BLOCKING', 'LAST SEEN'],
      v.agents.map((a) => [a.agent, a.connected ? 'yes' : 'no', a.appliedEpoch ?? '-', a.lag ?? '-', a.blocking ? 'yes' : 'no', ago(a.lastSeen)]))}`);
  }
}

import { Command, Option } from 'clipanion';
import type { DrainView } from '../../../controller/admin-api.js';
import { AdminCommand } from '../../admin-command.js';
import { parseOptionalInteger } from '../../numbers.js';
import { table, type Reporter } from '../../reporter.js';

const render = (verb: string) => (view: DrainView) => `${verb} ${view.disk}\n${table(['AGENT', 'RESULT'],
  view.agents.map((a) => [a.agent, a.error ? `${a.error.code}: ${a.error.message}` : 'ok']))}`;
const failed = (view: DrainView) => view.agents.some((a) => a.error !== null);

export class DiskDrainCommand extends AdminCommand {
  static override paths = [['disk', 'drain']];
  static override usage = Command.Usage({
    category: 'Disks',
    description: 'Block new I/O to a disk on every attached agent and wait until in-flight I/O has drained',
    details: 'The disk stays blocked (new I/O waits) until `vdmap disk resume`. An agent that cannot drain in time unblocks itself and reports VDM_TABLE_DRAIN_TIMEOUT.',
    examples: [['Quiesce vd0 before a cut-over', 'vdmap disk drain vd0 --timeout 5000']],
  });
  disk = Option.String({ required: true });
  timeout = Option.String('--timeout', { description: 'Drain timeout in ms (default: the agents\' own)' });

  protected async run(reporter: Reporter): Promise<number> {
    const timeoutMs = parseOptionalInteger(this.timeout, '--timeout', { min: 1 });
    const view = await this.call('disk.drain', { disk: this.disk, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
    const code = reporter.result(view, render('drained'));
    return failed(view) ? 9 : code;
  }
}

export class DiskResumeCommand extends AdminCommand {
  static override paths = [['disk', 'resume']];
  static override usage = Command.Usage({ category: 'Disks', description: 'Lift a drain: I/O to the disk flows again on every attached agent', examples: [['Resume vd0', 'vdmap disk resume vd0']] });
  disk = Option.String({ required: true });

  protected async run(reporter: Reporter): Promise<number> {
    const view = await this.call('disk.resume', { disk: this.disk });
    const code = reporter.result(view, render('resumed'));
    return failed(view) ? 6 : code;
  }
}

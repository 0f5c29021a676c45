import { Command, Option } from 'clipanion';
import type { AgentInspectView } from '../../../controller/admin-api.js';
import { VdmapError } from '../../../errors/error.js';
import { reach, ReportingCommand } from '../../admin-command.js';
import { DefaultDataDir } from '../../address.js';
import { table, type Reporter } from '../../reporter.js';

export class AgentInspectCommand extends ReportingCommand {
  static override paths = [['agent', 'inspect']];
  static override usage = Command.Usage({
    category: 'Agents',
    description: 'Read an agent\'s live table headers (epoch, active copy, blocking flag, in-flight counts) from its admin socket',
    examples: [['Inspect the local agent', 'vdmap agent inspect local'], ['An agent with its own data dir', 'vdmap agent inspect host1 --socket /var/lib/vdmap/agent.sock']],
  });
  name = Option.String({ required: true });
  socket = Option.String('--socket', `${DefaultDataDir}/agent.sock`, { description: 'The agent\'s admin socket (default ./vdmap-data/agent.sock)' });

  protected async run(reporter: Reporter): Promise<number> {
    const client = await reach(this.socket, 'VDM_CLI_AGENT_UNREACHABLE');
    let view: AgentInspectView;
    try {
      view = await client.call('agent.inspect', {});
    } finally {
      await client.close();
    }
    if (view.agent !== this.name) throw new VdmapError('VDM_CLI_USAGE', `the socket ${this.socket} belongs to agent ${view.agent}, not ${this.name}`);
    return reporter.result(view, (v) => `agent ${v.agent}: ${v.connected ? 'connected' : 'NOT connected'} to the controller\n${table(
      ['DISK', 'EPOCH', 'GENERATION', 'ACTIVE', 'BLOCKING', 'IN FLIGHT', 'DRAIN TIMEOUTS'],
      v.disks.map((d) => [d.disk, d.epoch, d.generation, d.activeCopy, d.blocking ? 'yes' : 'no', d.inflight.join('/'), d.drainTimeouts]))}`);
  }
}

import { writeFileSync } from 'node:fs';
import { Command, Option } from 'clipanion';
import { AdminCommand } from '../../admin-command.js';
import type { Reporter } from '../../reporter.js';

export class AgentEnrollCommand extends AdminCommand {
  static override paths = [['agent', 'enroll']];
  static override usage = Command.Usage({
    category: 'Agents',
    description: 'Issue a credential for an agent (re-enrolling revokes the old one)',
    details: 'The credential is a secret: `--token-file` writes it with mode 0600 for `vdmap agent --token-file`.',
    examples: [['Enroll host1 and keep its token', 'vdmap agent enroll host1 --token-file /etc/vdmap/host1.token']],
  });
  name = Option.String({ required: true });
  tokenFile = Option.String('--token-file', { description: 'Write the credential here (mode 0600) instead of printing it' });

  protected async run(reporter: Reporter): Promise<number> {
    const result = await this.call('agent.enroll', { name: this.name });
    if (this.tokenFile) {
      writeFileSync(this.tokenFile, `${result.credential}\n`, { mode: 0o600 });
      return reporter.result({ name: result.name, tokenFile: this.tokenFile }, (r) => `agent ${r.name} enrolled; credential written to ${r.tokenFile}`);
    }
    return reporter.result(result, (r) => `agent ${r.name} enrolled; credential:\n${r.credential}`);
  }
}

/**
 * `vdmap help COMMAND...`: a command's detailed help, as `vdmap COMMAND --help` prints it; `vdmap help` alone lists
 * every command. Every VDM_CLI_USAGE hint points here.
 */
import { Command, Option } from 'clipanion';
import { VdmapError } from '../../errors/error.js';
import { ReportingCommand } from '../admin-command.js';
import type { Reporter } from '../reporter.js';

export class HelpWordCommand extends ReportingCommand {
  static override paths = [['help']];
  static override usage = Command.Usage({
    description: 'Print a command\'s help and examples (the same as `vdmap COMMAND --help`); alone, list every command',
    examples: [['The help of disk create', 'vdmap help disk create'], ['Every command', 'vdmap help']],
  });
  words = Option.Rest();

  protected async run(_reporter: Reporter): Promise<number> {
    if (this.words.length === 0) {
      this.context.stdout.write(this.cli.usage());
      return 0;
    }
    const prefix = `${this.cli.binaryName} `;
    const known = this.cli.definitions().map((definition) => definition.path.startsWith(prefix) ? definition.path.slice(prefix.length) : definition.path);
    const asked = this.words.join(' ');
    if (!known.includes(asked)) {
      const near = known.filter((path) => path.startsWith(`${this.words[0]} `) || path === this.words[0]);
      throw new VdmapError('VDM_CLI_USAGE', `'${asked}' is not a vdmap command${near.length > 0 ? `; did you mean ${near.map((path) => `'${path}'`).join(', ')}?` : ': `vdmap help` lists them'}`, { command: asked });
    }
    return this.cli.run([...this.words, '--help']);
  }
}

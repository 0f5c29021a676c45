import { Command, Option } from 'clipanion';
import { tableFromJson, formatTableJson } from '../../../table/codec.js';
import { AdminCommand } from '../../admin-command.js';
import { parseOptionalInteger } from '../../numbers.js';
import type { Reporter } from '../../reporter.js';

export class TableShowCommand extends AdminCommand {
  static override paths = [['table', 'show']];
  static override usage = Command.Usage({
    category: 'Tables',
    description: 'Print a disk\'s mapping table (latest epoch, or a kept older one)',
    details: 'Runs of extents mapped contiguously share one line. `--json` prints exactly what `vdmap table push` reads.',
    examples: [['The current table of vd0', 'vdmap table show vd0'], ['Epoch 3, as JSON to edit and push', 'vdmap table show vd0 --epoch 3 --json > vd0.json']],
  });
  disk = Option.String({ required: true });
  epoch = Option.String('--epoch', { description: 'A kept epoch (default: the latest)' });

  protected async run(reporter: Reporter): Promise<number> {
    const epoch = parseOptionalInteger(this.epoch, '--epoch', { min: 1 });
    const table = await this.call('table.show', { disk: this.disk, ...(epoch !== undefined ? { epoch } : {}) });
    return reporter.result(table, (json) => formatTableJson(tableFromJson(json)));
  }
}

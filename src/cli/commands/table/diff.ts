import { Command, Option } from 'clipanion';
import type { TableEntryView } from '../../../controller/admin-api.js';
import { AdminCommand } from '../../admin-command.js';
import { parseInteger } from '../../numbers.js';
import { table, type Reporter } from '../../reporter.js';

const entry = (e: TableEntryView) => `${e.device ?? '-'}:${e.physicalExtent}${e.state.length ? ` ${e.state.join('|')}` : ''}`;

export class TableDiffCommand extends AdminCommand {
  static override paths = [['table', 'diff']];
  static override usage = Command.Usage({ category: 'Tables', description: 'Show the entries that differ between two kept epochs', examples: [['What changed from epoch 4 to 6', 'vdmap table diff vd0 4 6']] });
  disk = Option.String({ required: true });
  from = Option.String({ required: true });
  to = Option.String({ required: true });

  protected async run(reporter: Reporter): Promise<number> {
    const from = parseInteger(this.from, 'FROM epoch', { min: 1 });
    const to = parseInteger(this.to, 'TO epoch', { min: 1 });
    const diff = await this.call('table.diff', { disk: this.disk, from, to });
    return reporter.result(diff, (d) => (d.changes.length === 0
      ? `no differences between epochs ${d.from} and ${d.to}`
      : table(['EXTENT', `EPOCH ${d.from}`, `EPOCH ${d.to}`], d.changes.map((c) => [c.extent, entry(c.before), entry(c.after)]))));
  }
}

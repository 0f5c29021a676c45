import { Command, Option } from 'clipanion';
import { VdmapError } from '../../../errors/error.js';
import { AdminCommand } from '../../admin-command.js';
import { parseOptionalInteger } from '../../numbers.js';
import type { Reporter } from '../../reporter.js';

const States = ['INVALID', 'NOWRITE', 'ZERO'];

export class TableSetStateCommand extends AdminCommand {
  static override paths = [['table', 'set-state']];
  static override usage = Command.Usage({
    category: 'Tables',
    description: 'Set or clear state bits (INVALID, NOWRITE, ZERO) on a range of extents, as the next epoch',
    details: 'EXTENTS is one extent (7) or a range (7-12, inclusive). Writes to NOWRITE extents are held on every agent until the bit is cleared; I/O to INVALID extents is held until the entry is fixed.',
    examples: [['Write-protect extents 0-15 of vd0', 'vdmap table set-state vd0 0-15 --set NOWRITE'], ['Lift it again', 'vdmap table set-state vd0 0-15 --clear NOWRITE']],
  });
  disk = Option.String({ required: true });
  extents = Option.String({ required: true });
  set = Option.Array('--set', { description: 'State to set (repeatable)' });
  clear = Option.Array('--clear', { description: 'State to clear (repeatable)' });
  expectEpoch = Option.String('--expect-epoch', { description: 'Refuse unless the disk is still at this epoch' });

  protected async run(reporter: Reporter): Promise<number> {
    if (this.set === undefined && this.clear === undefined) {
      throw new VdmapError('VDM_CLI_USAGE', `nothing to change: give --set STATE or --clear STATE (${States.join(', ')}; repeatable)`);
    }
    const { first, count } = parseRange(this.extents);
    const expectedEpoch = parseOptionalInteger(this.expectEpoch, '--expect-epoch');
    for (const state of [...(this.set ?? []), ...(this.clear ?? [])]) {
      if (!States.includes(state.toUpperCase())) throw new VdmapError('VDM_CLI_USAGE', `unknown state '${state}': use ${States.join(', ')}`);
    }
    const result = await this.call('table.set-state', {
      disk: this.disk, firstExtent: first, count,
      ...(this.set ? { set: this.set.map((s) => s.toUpperCase()) } : {}),
      ...(this.clear ? { clear: this.clear.map((s) => s.toUpperCase()) } : {}),
      ...(expectedEpoch !== undefined ? { expectedEpoch } : {}),
    });
    return reporter.result(result, (r) => `disk ${r.disk} is at epoch ${r.epoch}`);
  }
}

function parseRange(text: string): { first: number; count: number } {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!match) throw new VdmapError('VDM_CLI_USAGE', `'${text}' is not an extent or a range FIRST-LAST`);
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (last < first) throw new VdmapError('VDM_CLI_USAGE', `range ${text} ends before it starts`);
  return { first, count: last - first + 1 };
}

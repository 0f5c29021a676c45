import { readFileSync } from 'node:fs';
import { decode } from 'cbor-x';
import { Command, Option } from 'clipanion';
import { VdmapError } from '../../../errors/error.js';
import { tableFromJson, tableToJson, parseTableJson } from '../../../table/codec.js';
import type { TableDocument } from '../../../table/document.js';
import { AdminCommand } from '../../admin-command.js';
import { parseOptionalInteger } from '../../numbers.js';
import type { Reporter } from '../../reporter.js';

export class TablePushCommand extends AdminCommand {
  static override paths = [['table', 'push']];
  static override usage = Command.Usage({
    category: 'Tables',
    description: 'Validate and commit a table as the disk\'s next epoch, and push it to every attached agent',
    details: 'FILE is JSON (as `vdmap table show --json` prints) or CBOR. The whole table is checked first: device bounds, alignment, known devices, no physical extent mapped twice unless every sharer is NOWRITE. A refused push changes nothing and lists every bad entry.',
    examples: [['Push an edited table', 'vdmap table push vd0 vd0.json'], ['Push only if nobody changed vd0 since epoch 7', 'vdmap table push vd0 vd0.json --expect-epoch 7']],
  });
  disk = Option.String({ required: true });
  file = Option.String({ required: true });
  expectEpoch = Option.String('--expect-epoch', { description: 'Refuse unless the disk is still at this epoch' });

  protected async run(reporter: Reporter): Promise<number> {
    const expectedEpoch = parseOptionalInteger(this.expectEpoch, '--expect-epoch');
    const doc = readTableFile(this.file);
    const result = await this.call('table.push', {
      disk: this.disk, table: tableToJson(doc), ...(expectedEpoch !== undefined ? { expectedEpoch } : {}),
    });
    return reporter.result(result, (r) => `disk ${r.disk} is at epoch ${r.epoch}`);
  }
}

function readTableFile(path: string): TableDocument {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new VdmapError('VDM_CLI_INPUT', `cannot read ${path}: ${(error as Error).message}`);
  }
  const text = bytes.toString('utf8').trimStart();
  if (text.startsWith('{')) return parseTableJson(text);
  let value: unknown;
  try {
    value = decode(bytes);
  } catch (error) {
    throw new VdmapError('VDM_CLI_INPUT', `${path} is neither JSON nor CBOR: ${(error as Error).message}`);
  }
  return tableFromJson(value);
}

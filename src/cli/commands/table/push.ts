/**
 * `vdmap table push DISK FILE`: reads a table document (JSON or CBOR) and asks the controller to validate and
 * commit it as the disk's next epoch.
 *
 * Owns: reading FILE. A file that is not a table document is refused here (VDM_CLI_INPUT or VDM_TABLE_INVALID,
 * exit 5, saying what a table document looks like) and nothing is sent; the controller checks everything else.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'clipanion';
import { VdmapError } from '../../../errors/error.js';
import { tableFromFileBytes, tableToJson } from '../../../table/codec.js';
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

  /** Reads and checks FILE (codec.ts tableFromFileBytes), then asks the controller to validate and commit it. */
  protected async run(reporter: Reporter): Promise<number> {
    const expectedEpoch = parseOptionalInteger(this.expectEpoch, '--expect-epoch');
    const doc = readTableFile(this.file, this.disk);
    const result = await this.call('table.push', {
      disk: this.disk, table: tableToJson(doc), ...(expectedEpoch !== undefined ? { expectedEpoch } : {}),
    });
    return reporter.result(result, (r) => `disk ${r.disk} is at epoch ${r.epoch}`);
  }
}

/** The table in `path`, checked here first so that a malformed file is refused without a round trip. */
function readTableFile(path: string, disk: string): TableDocument {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new VdmapError('VDM_CLI_INPUT', `cannot read ${path}: ${(error as Error).message}`, { file: path });
  }
  return tableFromFileBytes(bytes, path, disk);
}

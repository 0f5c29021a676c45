#!/usr/bin/env node
/**
 * `vdmap`: the operator's command line. Commands live in src/cli/commands/<noun>/<verb>.ts; each prints through
 * one Reporter (human text, or --json) and exits with the catalogue's exit code for its outcome.
 *
 * Exit codes (stable; see src/errors/catalogue.ts ExitCode): 0 ok, 1 internal error (a bug), 2 usage, 3 not
 * found, 4 conflict, 5 invalid input, 6 unavailable, 7 I/O error, 8 denied, 9 timeout.
 */
import { Builtins, Cli, type Command, type CommandClass } from 'clipanion';
import { ExitCode } from '../errors/catalogue.js';
import { colorsWanted } from './colors.js';
import { AgentEnrollCommand } from './commands/agent/enroll.js';
import { AgentInspectCommand } from './commands/agent/inspect.js';
import { AgentListCommand } from './commands/agent/ls.js';
import { DeviceAddCommand } from './commands/device/add.js';
import { DeviceListCommand } from './commands/device/ls.js';
import { DeviceRemoveCommand } from './commands/device/rm.js';
import { DiskAttachCommand, DiskDetachCommand } from './commands/disk/attach.js';
import { DiskCreateCommand } from './commands/disk/create.js';
import { DiskListCommand } from './commands/disk/ls.js';
import { DiskRemoveCommand } from './commands/disk/rm.js';
import { EpochCommand } from './commands/epoch/show.js';
import { ControllerCommand } from './commands/controller/run.js';
import { AgentCommand } from './commands/agent/run.js';
import { UpCommand } from './commands/up.js';
import { HelpWordCommand } from './commands/help.js';
import { TableDiffCommand } from './commands/table/diff.js';
import { TablePushCommand } from './commands/table/push.js';
import { TableShowCommand } from './commands/table/show.js';
import { TableSetStateCommand } from './commands/table/set-state.js';
import { DiskDrainCommand, DiskResumeCommand } from './commands/disk/drain.js';

const Commands = [
  DeviceAddCommand, DeviceListCommand, DeviceRemoveCommand,
  DiskCreateCommand, DiskListCommand, DiskRemoveCommand, DiskAttachCommand, DiskDetachCommand,
  TableShowCommand, TablePushCommand, TableDiffCommand, TableSetStateCommand, EpochCommand, DiskDrainCommand, DiskResumeCommand,
  AgentEnrollCommand, AgentListCommand, AgentInspectCommand, ControllerCommand, AgentCommand, UpCommand,
  HelpWordCommand, Builtins.HelpCommand, Builtins.VersionCommand,
];

/**
 * clipanion's detailed help (`vdmap disk create --help`) moves every option with a description out of the usage
 * line into the Options list, required ones too, so the line read `vdmap disk create <name>` although --size
 * must be given. Here the required options stay on the line as well: `vdmap disk create <--size #0> <name>`.
 */
interface UsageLine {
  usage: string;
  options: Array<{ definition: string; description: string; required: boolean }>;
}

class VdmapCli extends Cli {
  protected override getUsageByRegistration(klass: CommandClass, opts?: { detailed?: boolean; inlineOptions?: boolean }): UsageLine {
    const result = super.getUsageByRegistration(klass, opts);
    const required = result.options.filter((option) => option.required).map((option) => `<${option.definition}>`);
    const head = [this.binaryName, ...(klass.paths?.[0] ?? [])].join(' ');
    if (opts?.inlineOptions !== false || required.length === 0 || !result.usage.startsWith(head)) return result;
    return { ...result, usage: `${head} ${required.join(' ')}${result.usage.slice(head.length)}` };
  }
}

export function buildCli(): Cli {
  const cli = new VdmapCli({
    binaryLabel: 'vdmap: table-driven block storage virtualization', binaryName: 'vdmap', binaryVersion: '0.1.0',
    enableColors: colorsWanted(process.stdout), // help goes to stdout
  });
  for (const command of Commands) cli.register(command);
  return cli;
}

/**
 * `vdmap table set-state vd0 3 --help` asks for the help of `table set-state`; clipanion only takes --help right
 * after the command's path, so the request is rewritten that way: the longest command path argv starts with,
 * then --help. Anything after `--` is an argument, not a help request.
 */
export function helpFirst(argv: readonly string[]): readonly string[] {
  const optionsEnd = argv.indexOf('--');
  const options = optionsEnd === -1 ? argv : argv.slice(0, optionsEnd);
  if (!options.includes('--help') && !options.includes('-h')) return argv;
  let path: readonly string[] = [];
  for (const commandPath of Commands.flatMap((command) => command.paths ?? [])) {
    if (commandPath.some((word) => word.startsWith('-'))) continue; // the builtins: `vdmap --help` itself
    if (commandPath.length > path.length && commandPath.every((word, index) => argv[index] === word)) path = commandPath;
  }
  return [...path, '--help'];
}

/**
 * `--size -5G`: clipanion reads a word that starts with '-' as an option, never as an option's value, and says
 * "Not enough arguments to option --size". No vdmap option starts with a digit, so a value-taking option followed
 * by a word like -5 or -5G is rewritten as `--size=-5G`, which reaches the command's own check of the value (a
 * size cannot be negative). `valueOptions`: the long options that take a value.
 */
export function negativeValues(argv: readonly string[], valueOptions: ReadonlySet<string>): readonly string[] {
  const optionsEnd = argv.indexOf('--');
  const out: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index];
    const next = argv[index + 1];
    if ((optionsEnd === -1 || index < optionsEnd) && valueOptions.has(word) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${word}=${next}`);
      index++;
    } else out.push(word);
  }
  return out;
}

/** The long options that take a value, in any command (their definition is `--name #0`). */
function valueOptionsOf(cli: Cli): Set<string> {
  const names = new Set<string>();
  for (const definition of cli.definitions()) {
    for (const option of definition.options) {
      const match = /^((?:-[\w-]+,)*)(--[\w-]+) #0$/.exec(option.definition);
      if (match) names.add(match[2]);
    }
  }
  return names;
}

export async function main(argv: readonly string[]): Promise<number> {
  const cli = buildCli();
  let command: Command;
  try {
    command = cli.process([...negativeValues(helpFirst(argv), valueOptionsOf(cli))]); // parsed here so a usage error exits 2 (clipanion's run says 1)
  } catch (error) {
    process.stderr.write(cli.error(error, { colored: colorsWanted(process.stderr) }));
    return ExitCode.Usage;
  }
  return cli.run(command);
}

process.exitCode = await main(process.argv.slice(2));

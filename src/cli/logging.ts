/**
 * The daemons' log lines as the CLI runs them: JSON (one object a line, for journald and log shippers) or pretty
 * (a time, a level and the message, for an operator watching a terminal). `--log-format auto`, the default, is
 * pretty when stdout is a terminal and JSON otherwise, so pipes, files and the tests keep getting JSON.
 *
 * Owns: the choice of format and the logger of each daemon the CLI starts (vdmap controller, agent, up).
 * Does not know: what the daemons log (src/controller, src/agent take a pino Logger).
 */
import { Option } from 'clipanion';
import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { VdmapError } from '../errors/error.js';

export type LogFormat = 'json' | 'pretty';
const Choices = ['auto', 'json', 'pretty'];

/** The --log-format option of a daemon command. */
export function logFormatOption(): string {
  return Option.String('--log-format', 'auto', { description: 'Log lines as json or pretty (default auto: pretty on a terminal, json otherwise)' });
}

/** Resolves --log-format; refuses an unknown value with VDM_CLI_USAGE. */
export function resolveLogFormat(choice: string, stdoutIsTerminal: boolean): LogFormat {
  if (!Choices.includes(choice)) throw new VdmapError('VDM_CLI_USAGE', `--log-format ${choice}: use one of ${Choices.join(', ')}`);
  if (choice === 'auto') return stdoutIsTerminal ? 'pretty' : 'json';
  return choice as LogFormat;
}

/** The logger of daemon `name` (vdmap-controller, vdmap-agent) writing to stdout in `format`. */
export function daemonLogger(name: string, format: LogFormat): Logger {
  if (format === 'json') return pino({ name });
  const pretty = PinoPretty({
    colorize: process.stdout.isTTY === true, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname',
  });
  return pino({ name }, pretty);
}

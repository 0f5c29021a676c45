import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'clipanion';
import { VdmapError } from '../../../errors/error.js';
import { ReportingCommand } from '../../admin-command.js';
import { controllerAddress, DefaultDataDir, naming, parseHostPort } from '../../address.js';
import { untilSignalled } from '../../daemon.js';
import { daemonLogger, logFormatOption, resolveLogFormat } from '../../logging.js';
import { parseOptionalInteger } from '../../numbers.js';
import type { Reporter } from '../../reporter.js';

export class AgentCommand extends ReportingCommand {
  static override paths = [['agent']];
  static override usage = Command.Usage({
    category: 'Daemons',
    description: 'Run an agent in the foreground: hold this host\'s tables, serve its disks over NBD',
    details: 'The agent authenticates with the credential from `vdmap agent enroll NAME --token-file FILE`, applies every table the controller pushes through the epoch flip, and exports each attached disk over NBD under its name. Ctrl-C stops it cleanly.',
    examples: [['Run agent host1', 'vdmap agent --controller 10.0.0.5:10810 --name host1 --token-file /etc/vdmap/host1.token --data /var/lib/vdmap-agent']],
  });
  controller = Option.String('--controller', { description: 'Controller HOST:PORT or socket path (default: $VDMAP_CONTROLLER, else ./vdmap-data/controller.sock)' });
  name = Option.String('--name', { required: true, description: 'The name the agent was enrolled under' });
  tokenFile = Option.String('--token-file', { required: true, description: 'File holding the credential' });
  data = Option.String('--data', DefaultDataDir, { description: 'Directory for the admin socket (default ./vdmap-data)' });
  nbd = Option.String('--nbd', '127.0.0.1:10809', { description: 'NBD TCP endpoint HOST:PORT' });
  socket = Option.String('--socket', { description: 'NBD Unix socket (default DATA/nbd.sock)' });
  workers = Option.String('--workers', { description: 'I/O worker threads (default 2)' });
  metrics = Option.String('--metrics', { description: 'Serve Prometheus metrics on HOST:PORT' });
  logFormat = logFormatOption();

  protected async run(reporter: Reporter): Promise<number> {
    const nbd = parseHostPort(this.nbd, '--nbd'); // every option is checked before anything starts
    const metrics = this.metrics === undefined ? undefined : parseHostPort(this.metrics, '--metrics');
    const workers = parseOptionalInteger(this.workers, '--workers', { min: 1 });
    const logger = daemonLogger('vdmap-agent', resolveLogFormat(this.logFormat, process.stdout.isTTY === true));
    let credential: string;
    try {
      credential = readFileSync(this.tokenFile, 'utf8').trim();
    } catch (error) {
      throw new VdmapError('VDM_CLI_INPUT', `cannot read the token file ${this.tokenFile}: ${(error as Error).message}`);
    }
    const { startAgent } = await import('../../../agent/agent.js'); // loaded only to run it: keeps other commands fast
    const unixPath = this.socket ?? join(this.data, 'nbd.sock');
    const agent = await startAgent({
      controller: controllerAddress(this.controller), name: this.name, credential, dataDir: this.data, logger,
      nbd: { tcp: nbd, unixPath },
      ...(workers !== undefined ? { workers } : {}),
      ...(metrics !== undefined ? { metrics } : {}),
    }).catch((error: unknown) => { throw naming([['--nbd', nbd], [this.socket ? '--socket' : '--data', unixPath], ['--metrics', metrics], ['--data', join(this.data, 'agent.sock')]], error); });
    const stopped = untilSignalled(() => agent.close(), (line) => this.context.stderr.write(`${line}\n`)); // before it says so (daemon.ts)
    reporter.result(agent.addresses, (a) => `agent ${this.name} running: ${JSON.stringify(a)}`);
    return stopped;
  }
}

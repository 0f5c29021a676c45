import { join } from 'node:path';
import { Command, Option } from 'clipanion';
import { ReportingCommand } from '../../admin-command.js';
import { DefaultControllerPort, DefaultDataDir, naming, parseHostPort } from '../../address.js';
import { untilSignalled } from '../../daemon.js';
import { daemonLogger, logFormatOption, resolveLogFormat } from '../../logging.js';
import type { Reporter } from '../../reporter.js';

export class ControllerCommand extends ReportingCommand {
  static override paths = [['controller']];
  static override usage = Command.Usage({
    category: 'Daemons',
    description: 'Run the controller in the foreground (the persistent copy of every table)',
    details: 'Keeps its LMDB store in DIR/store and listens for agents and admin clients on TCP and on DIR/controller.sock. Ctrl-C stops it cleanly.',
    examples: [['Run with data in /var/lib/vdmap', 'vdmap controller --data /var/lib/vdmap'], ['Listen on all interfaces with metrics', 'vdmap controller --data /var/lib/vdmap --listen 0.0.0.0:10810 --metrics 127.0.0.1:9810']],
  });
  data = Option.String('--data', DefaultDataDir, { description: 'Data directory (default ./vdmap-data)' });
  listen = Option.String('--listen', `127.0.0.1:${DefaultControllerPort}`, { description: 'TCP endpoint HOST:PORT (default 127.0.0.1:10810)' });
  socket = Option.String('--socket', { description: 'Unix socket path (default DIR/controller.sock)' });
  metrics = Option.String('--metrics', { description: 'Serve Prometheus metrics on HOST:PORT' });
  logFormat = logFormatOption();

  protected async run(reporter: Reporter): Promise<number> {
    const listen = parseHostPort(this.listen, '--listen'); // every option is checked before anything starts
    const metrics = this.metrics === undefined ? undefined : parseHostPort(this.metrics, '--metrics');
    const logger = daemonLogger('vdmap-controller', resolveLogFormat(this.logFormat, process.stdout.isTTY === true));
    const { startController } = await import('../../../controller/controller.js'); // loaded only to run it: keeps other commands fast
    const socketPath = this.socket ?? join(this.data, 'controller.sock');
    const controller = await startController({ dataDir: this.data, listen, logger, socketPath, ...(metrics !== undefined ? { metrics } : {}) })
      .catch((error: unknown) => { throw naming([['--listen', listen], [this.socket ? '--socket' : '--data', socketPath], ['--metrics', metrics]], error); });
    const stopped = untilSignalled(() => controller.close(), (line) => this.context.stderr.write(`${line}\n`)); // before it says so (daemon.ts)
    reporter.result(controller.addresses, (a) => `controller listening: ${JSON.stringify(a)}`);
    return stopped;
  }
}

/**
 * AdminCommand: the base of every `vdmap` command that talks to the controller. It resolves the controller's
 * address, opens one admin connection for the command, and turns any failure into the reporter's output and
 * exit code, so each command is only its request and its rendering.
 */
import { Command, Option } from 'clipanion';
import { type AdminClient, connectAdmin } from '../controller/admin-client.js';
import { VdmapError } from '../errors/error.js';
import type { ControllerMethod, ControllerMethods } from '../controller/admin-api.js';
import { controllerAddress } from './address.js';
import { Reporter } from './reporter.js';

export abstract class ReportingCommand extends Command {
  json = Option.Boolean('--json', false, { description: 'Print the result (or the error) as JSON' });

  protected reporter(): Reporter {
    return new Reporter(this.context.stdout, this.context.stderr, this.json);
  }

  async execute(): Promise<number> {
    const reporter = this.reporter();
    try {
      return await this.run(reporter);
    } catch (error) {
      return reporter.failure(error);
    }
  }

  protected abstract run(reporter: Reporter): Promise<number>;
}

export abstract class AdminCommand extends ReportingCommand {
  controller = Option.String('--controller', { description: 'Controller address: HOST:PORT or a socket path (default: $VDMAP_CONTROLLER, else ./vdmap-data/controller.sock)' });

  /** One admin request to the controller. */
  protected async call<M extends ControllerMethod>(method: M, params: ControllerMethods[M]['params']): Promise<ControllerMethods[M]['result']> {
    const client = await reach(controllerAddress(this.controller));
    try {
      return await client.call(method, params);
    } finally {
      await client.close();
    }
  }
}

/**
 * Connects to an admin endpoint; a daemon that is not there becomes `unreachable` (VDM_CLI_UNREACHABLE for the
 * controller, VDM_CLI_AGENT_UNREACHABLE for an agent's admin socket), whose hint says what to start and which
 * option points at it.
 */
export async function reach(address: string, unreachable: 'VDM_CLI_UNREACHABLE' | 'VDM_CLI_AGENT_UNREACHABLE' = 'VDM_CLI_UNREACHABLE'): Promise<AdminClient> {
  try {
    return await connectAdmin(address);
  } catch (error) {
    const cause = error instanceof VdmapError ? error.details?.cause : undefined;
    if (cause === 'ENOENT' || cause === 'ECONNREFUSED') {
      throw new VdmapError(unreachable, `nothing is listening at ${address} (${cause})`, { address, cause });
    }
    throw error;
  }
}

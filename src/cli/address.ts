/**
 * Where the CLI finds the controller: --controller ADDR, else $VDMAP_CONTROLLER, else
 * ./vdmap-data/controller.sock. ADDR is host:port (TCP) or a path (Unix socket).
 */
import { formatListenAddress } from '../errors/errno.js';
import { VdmapError } from '../errors/error.js';

export const DefaultDataDir = 'vdmap-data';
export const DefaultControllerSocket = `${DefaultDataDir}/controller.sock`;
export const DefaultControllerPort = 10810;

export function controllerAddress(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.VDMAP_CONTROLLER ?? DefaultControllerSocket;
}

/** host:port -> {host, port}; anything else is VDM_CLI_USAGE naming the option (`what`) and the text. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) {
    throw new VdmapError('VDM_CLI_USAGE', `${what} '${text}' is not HOST:PORT (a port from 0 to 65535; 0 lets the system choose)`, { option: what, value: text });
  }
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

/**
 * A daemon that could not listen reports the address (VDM_LISTEN_IN_USE, VDM_LISTEN_FAILED: details.address); the
 * command that chose that address from a flag adds the flag, so the operator knows what to change. `flags` maps
 * each address to the flag that chose it: [flag, {host, port} or a socket path] pairs. Other errors pass.
 */
export function naming(flags: Array<[string, { host: string; port: number } | string | undefined]>, error: unknown): unknown {
  if (!(error instanceof VdmapError) || (error.code !== 'VDM_LISTEN_IN_USE' && error.code !== 'VDM_LISTEN_FAILED')) return error;
  const address = error.details?.address;
  const flag = flags.find(([, where]) => where !== undefined && formatListenAddress(where) === address)?.[0];
  if (flag === undefined) return error;
  return new VdmapError(error.code, `${error.message}: choose another address with ${flag}`, { ...error.details, flag });
}

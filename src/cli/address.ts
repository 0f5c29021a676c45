/**
 * Where the CLI finds the controller: --controller ADDR, else $VDMAP_CONTROLLER, else
 * ./vdmap-data/controller.sock. ADDR is host:port (TCP) or a path (Unix socket).
 */
export const DefaultDataDir = 'vdmap-data';
export const DefaultControllerSocket = `${DefaultDataDir}/controller.sock`;
export const DefaultControllerPort = 10810;

export function controllerAddress(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.VDMAP_CONTROLLER ?? DefaultControllerSocket;
}

/** host:port -> {host, port}; throws on anything else. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new Error(`${what} '${text}' is not HOST:PORT`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

/** {host, port} -> host:port, with an IPv6 host in brackets (the inverse of parseHostPort). */
export function formatHostPort(address: { host: string; port: number }): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * A TCP port for a test daemon that must be told its port up front (`vdmap up --nbd 127.0.0.1:PORT`): one the
 * kernel just handed out and is free again, rather than a number derived from the pid, which may sit in the
 * ephemeral range and be held by any outgoing connection on the host.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';

export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

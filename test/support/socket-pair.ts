/**
 * A connected Unix socket pair for tests of code that drives a socket descriptor itself (the ring's RECV and POLL,
 * sendVector, RingTransport): `fd` is a descriptor nothing else in the process reads or writes, `peer` is an
 * ordinary net.Socket on the other end, playing the client.
 *
 * Owns: the listening socket (closed once connected), the temporary directory, both ends. release() closes `fd`
 * unless `fdOwnedElsewhere` (the code under test closes it) and always destroys the peer and removes the directory.
 * Thread: the test's.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeDescriptor, duplicateDescriptor } from '../../src/native/index.js';

export interface SocketPair {
  fd: number;
  peer: Socket;
  release(options?: { fdOwnedElsewhere?: boolean }): void;
}

export async function socketPair(): Promise<SocketPair> {
  const directory = mkdtempSync(join(tmpdir(), 'vdmap-socket-pair-'));
  const path = join(directory, 'pair.sock');
  const server = createServer({ pauseOnConnect: true });
  server.listen(path);
  await once(server, 'listening');
  const peer = connect(path);
  peer.on('error', () => undefined); // tests destroy ends on purpose
  /* Both listeners go on before either event: the two ends' events come in whichever order the kernel says. */
  const connected = once(peer, 'connect');
  const [accepted] = (await once(server, 'connection')) as [Socket];
  await connected;
  const fd = duplicateDescriptor((accepted as unknown as { _handle: { fd: number } })._handle.fd);
  accepted.destroy();
  server.close();
  let released = false;
  return {
    fd, peer,
    release: (options = {}) => {
      if (released) return;
      released = true;
      if (options.fdOwnedElsewhere !== true) closeDescriptor(fd);
      peer.destroy();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Resolves with the next `length` bytes the peer receives (the peer is paused again afterwards). */
export function readExactly(peer: Socket, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= length) {
        peer.off('data', onData);
        peer.pause();
        resolve(Buffer.concat(chunks).subarray(0, length));
      }
    };
    peer.on('data', onData);
    peer.once('error', reject);
    peer.resume();
  });
}

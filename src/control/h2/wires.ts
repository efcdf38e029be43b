// Binds an H2ServerConnection to what carries its plaintext: a NoiseConnection (production:
// decrypted records in through its tap, our frames sealed straight into records out, no
// Duplex write path) or any byte Duplex (a plain socket in tests).
import type { Duplex } from 'node:stream';
import type { NoiseConnection, PlaintextTap } from '../../noise/index.js';
import { H2ServerConnection, type ServerConnectionOptions } from './server-connection.js';

const NOTHING_READABLE: readonly Buffer[] = [];

/**
 * Serves HTTP/2 on `noise`. Anything already written to it (the early payload) has gone out;
 * from here on every plaintext byte either way belongs to the returned connection.
 */
export function serveHttp2OnNoise(noise: NoiseConnection, options: ServerConnectionOptions): H2ServerConnection {
  let connection: H2ServerConnection | null = null;
  // Plaintext that arrived with the upgrade, before the tap (a client that did not wait).
  const early: Buffer[] = [];
  for (let chunk = noise.read() as Buffer | null; chunk !== null; chunk = noise.read() as Buffer | null) early.push(chunk);
  const tap: PlaintextTap = {
    inbound(plaintext) {
      connection?.receive(plaintext);
      return NOTHING_READABLE;
    },
    // Nothing writes the Duplex side after this point; if something did, it goes out in order.
    outbound(parts, callback) {
      noise.sealAndSend(parts);
      callback();
    },
    closed() {
      connection?.wireClosed();
    },
  };
  noise.interpose(tap);
  connection = new H2ServerConnection(
    {
      send: (parts) => noise.sealAndSend(parts),
      onceDrain: (listener) => noise.transport.once('drain', listener),
      end: () => noise.end(),
      destroy: () => noise.destroy(),
    },
    options,
  );
  for (const chunk of early) connection.receive(chunk);
  // Nothing is ever pushed to the readable side, but its end must flow for the Duplex to close.
  noise.resume();
  noise.once('close', () => connection.wireClosed());
  return connection;
}

/** Serves HTTP/2 on a plain byte Duplex (tests, and anything not behind Noise). */
export function serveHttp2OnDuplex(socket: Duplex, options: ServerConnectionOptions): H2ServerConnection {
  const connection = new H2ServerConnection(
    {
      send: (parts) => socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts)),
      onceDrain: (listener) => socket.once('drain', listener),
      end: () => socket.end(),
      destroy: () => socket.destroy(),
    },
    options,
  );
  socket.on('data', (chunk: Buffer) => connection.receive(chunk));
  socket.once('close', () => connection.wireClosed());
  socket.on('error', () => socket.destroy());
  return connection;
}

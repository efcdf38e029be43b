// Binds an H2ServerConnection to what carries its plaintext: a NoiseConnection (production:
// decrypted records in through its tap, our frames sealed straight into records out, no
// Duplex write path) or any byte Duplex (a plain socket in tests).
import type { Duplex } from 'node:stream';
import type { NoiseConnection, PlaintextTap } from '../../noise/index.js';
import { H2ServerConnection, type PlaintextWire, type ServerConnectionOptions } from './server-connection.js';

/**
 * Both directions between a NoiseConnection and our HTTP/2 connection, in one object per
 * connection (a map poll holds it for hours; methods, not closures).
 */
class NoiseWire implements PlaintextWire, PlaintextTap {
  readonly #noise: NoiseConnection;
  connection: H2ServerConnection | null = null;

  constructor(noise: NoiseConnection) {
    this.#noise = noise;
  }

  // PlaintextTap: decrypted records in; the Duplex side is never written after this point, and
  // if something did write it, it goes out in order.
  inbound(plaintext: Buffer): void {
    this.connection?.receive(plaintext);
  }

  outbound(parts: Buffer[], callback: (error?: Error | null) => void): void {
    this.#noise.sealAndSend(parts);
    callback();
  }

  /** Called by the NoiseConnection's destroy, however it ends. */
  closed(): void {
    this.connection?.wireClosed();
  }

  // PlaintextWire.
  send(parts: readonly Buffer[]): boolean {
    return this.#noise.sealAndSend(parts);
  }

  onceDrain(listener: () => void): void {
    this.#noise.transport.once('drain', listener);
  }

  end(): void {
    this.#noise.end();
  }

  destroy(): void {
    this.#noise.destroy();
  }
}

/**
 * Serves HTTP/2 on `noise`. Anything already written to it (the early payload) has gone out;
 * from here on every plaintext byte either way belongs to the returned connection.
 */
export function serveHttp2OnNoise(noise: NoiseConnection, options: ServerConnectionOptions): H2ServerConnection {
  // Plaintext that arrived with the upgrade, before the tap (a client that did not wait).
  const early: Buffer[] = [];
  for (let chunk = noise.read() as Buffer | null; chunk !== null; chunk = noise.read() as Buffer | null) early.push(chunk);
  const wire = new NoiseWire(noise);
  noise.interpose(wire);
  const connection = new H2ServerConnection(wire, options);
  wire.connection = connection;
  for (const chunk of early) connection.receive(chunk);
  // Nothing is ever pushed to the readable side, but its end must flow for the Duplex to close.
  noise.resume();
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

// Test helpers for the control transport: a server on port 0 with the transport attached, a
// raw-socket TS2021 dialer that exposes the wire bytes, and a leak check. Tests only.
import { createServer, type Server } from 'node:http';
import { connect, type Socket, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Curve25519PrivateKey } from '../key/index.js';
import { NoiseConnection, beginClientHandshake, type NoiseSession } from '../noise/index.js';
import { createControlTransport, type ControlTransport, type ControlTransportOptions } from './transport.js';

export interface TestControlServer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly transport: ControlTransport;
  readonly serverKey: Curve25519PrivateKey;
  close(): Promise<void>;
}

export async function startTestControlServer(options: Partial<ControlTransportOptions> = {}): Promise<TestControlServer> {
  const serverKey = options.serverKey ?? Curve25519PrivateKey.generate();
  const transport = createControlTransport({ ...options, serverKey });
  const server = createServer();
  transport.attach(server, { answerOtherRequests: true });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    transport,
    serverKey,
    async close() {
      await transport.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls `condition` until true; fails after `timeoutMs` with `what`. Not a timing assertion. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits until the transport holds no connection, session or stream. */
export async function expectNoLeaks(transport: ControlTransport): Promise<void> {
  await waitFor(() => {
    const s = transport.stats();
    return s.connectionsOpen === 0 && s.sessionsOpen === 0 && s.streamsOpen === 0;
  }, `no open connections (stats ${JSON.stringify(transport.stats())})`);
}

/** Sends raw bytes, returns everything the server sent until it closed (or `timeoutMs`). */
export async function rawExchange(port: number, request: Buffer | string, timeoutMs = 5000): Promise<Buffer> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  socket.write(request);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  await once(socket, 'close');
  clearTimeout(timer);
  return Buffer.concat(chunks);
}

export function upgradeRequestText(initiationBase64: string | null, extraHeaders: Record<string, string> = {}, upgrade = 'tailscale-control-protocol'): string {
  const lines = ['POST /ts2021 HTTP/1.1', 'Host: test', `Upgrade: ${upgrade}`, 'Connection: upgrade'];
  if (initiationBase64 !== null) lines.push(`X-Tailscale-Handshake: ${initiationBase64}`);
  for (const [k, v] of Object.entries(extraHeaders)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`;
}

export interface RawNoiseDial {
  readonly socket: Socket;
  /** The HTTP head exactly as received, through the blank line. */
  readonly head: string;
  readonly session: NoiseSession;
  /** Wire bytes after the 51-byte response that arrived with it. */
  readonly rest: Buffer;
}

/** A hand-rolled TS2021 dial that keeps the raw socket and cipher states, for wire-level tests. */
export async function rawNoiseDial(port: number, controlPublic: Uint8Array, protocolVersion = 145, machineKey = Curve25519PrivateKey.generate()): Promise<RawNoiseDial> {
  const initiation = beginClientHandshake({ machineKey, controlPublic, protocolVersion });
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let received = Buffer.alloc(0);
  const ready = new Promise<{ head: string; rest: Buffer }>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end !== -1 && received.length >= end + 4 + 51) {
        socket.off('data', onData);
        socket.pause();
        resolve({ head: received.subarray(0, end + 4).toString('latin1'), rest: received.subarray(end + 4) });
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed after ${received.length} bytes: ${JSON.stringify(received.toString('latin1').slice(0, 200))}`)));
  });
  socket.write(upgradeRequestText(initiation.message.toString('base64')));
  const { head, rest } = await ready;
  const session = initiation.finish(rest.subarray(0, 51));
  return { socket, head, session, rest: rest.subarray(51) };
}

/**
 * Wraps a raw dial in a NoiseConnection and consumes the early payload (9-byte header + JSON),
 * leaving the stream at the server's first HTTP/2 byte.
 */
export async function noiseAfterEarlyPayload(dial: RawNoiseDial): Promise<NoiseConnection> {
  const noise = new NoiseConnection(dial.socket, dial.session, { initialData: dial.rest });
  let buffered = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 9 && buffered.length >= 9 + buffered.readUInt32BE(5)) {
        noise.off('data', onData);
        noise.off('error', reject);
        noise.pause();
        resolve();
      }
    };
    noise.on('data', onData);
    noise.on('error', reject);
  });
  const rest = buffered.subarray(9 + buffered.readUInt32BE(5));
  if (rest.length > 0) noise.unshift(rest);
  return noise;
}

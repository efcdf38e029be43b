// A deliberately small TS2021 server for the client's own tests, built from the Noise core and
// node:http2 only (no code from control/), with knobs to misbehave: no early payload, an early
// payload split over several records, a wrong Upgrade header, an error frame, silence.
// Tests only; production code must never import this file.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Curve25519PrivateKey } from '../key/index.js';
import { NoiseConnection, acceptClientHandshake, encodeErrorMessage } from '../noise/index.js';

export type EarlyPayloadMode = 'one-record' | 'three-records' | 'none';

export interface FakeServerBehaviour {
  earlyPayload?: EarlyPayloadMode;
  /** Replaces the 101 head (status line through the blank line). */
  upgradeHead?: string;
  /** Send this error frame instead of the handshake response. */
  errorFrame?: string;
  /** Never answer the upgrade. */
  silent?: boolean;
  /** GET /key answer. */
  keyBody?: string;
  keyStatus?: number;
  handler?: (req: Http2ServerRequest, res: Http2ServerResponse) => void;
}

export interface FakeControlServer {
  readonly url: string;
  readonly serverKey: Curve25519PrivateKey;
  /** Upgrade requests as received: method, url and headers. */
  readonly upgrades: IncomingMessage[];
  /** Machine keys (hex) of completed handshakes. */
  readonly peers: string[];
  close(): Promise<void>;
}

const CHALLENGE = `chalpub:${'c8'.repeat(32)}`;

export async function startFakeControlServer(behaviour: FakeServerBehaviour = {}): Promise<FakeControlServer> {
  const serverKey = Curve25519PrivateKey.generate();
  const upgrades: IncomingMessage[] = [];
  const peers: string[] = [];
  const sockets = new Set<Duplex>();
  const h2 = createHttp2Server();
  h2.on('request', behaviour.handler ?? ((_req: Http2ServerRequest, res: Http2ServerResponse) => res.end('ok')));
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/key')) {
      res.writeHead(behaviour.keyStatus ?? 200, { 'content-type': 'application/json' });
      res.end(behaviour.keyBody ?? JSON.stringify({ legacyPublicKey: `mkey:${'0'.repeat(64)}`, publicKey: serverKey.publicKey('machine') }));
      return;
    }
    res.writeHead(404).end();
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    upgrades.push(req);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (behaviour.silent === true) return;
    const head = behaviour.upgradeHead ?? 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n\r\n';
    if (behaviour.errorFrame !== undefined) {
      socket.end(Buffer.concat([Buffer.from(head, 'latin1'), encodeErrorMessage(behaviour.errorFrame)]));
      return;
    }
    const initiation = Buffer.from(String(req.headers['x-tailscale-handshake']), 'base64');
    const { response, session } = acceptClientHandshake({ controlKey: serverKey, initiation });
    peers.push(session.peerStatic.toString('hex'));
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), response]));
    const noise = new NoiseConnection(socket, session);
    noise.on('error', () => {});
    const json = Buffer.from(JSON.stringify({ nodeKeyChallenge: CHALLENGE }));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(json.length);
    const magic = Buffer.from([0xff, 0xff, 0xff, 0x54, 0x53]);
    const mode = behaviour.earlyPayload ?? 'one-record';
    if (mode === 'one-record') noise.write(Buffer.concat([magic, length, json]));
    if (mode === 'three-records') {
      // headscale writes magic, length and JSON separately: three records.
      noise.write(magic);
      noise.write(length);
      noise.write(json);
    }
    h2.emit('connection', noise);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    serverKey,
    upgrades,
    peers,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export const FAKE_CHALLENGE = CHALLENGE;

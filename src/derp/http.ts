/**
 * @module derp/http
 * The DERP relay's HTTP face on a server owned by the composition root: the `/derp` upgrade
 * (plain DERP and WebSocket with subprotocol `derp`), and the plain endpoints `/derp/probe`,
 * `/derp/latency-check`, `/generate_204` and `/bootstrap-dns`. Behaviour follows
 * tailscale/tailscale derp/derpserver/handler.go and websocket.go @de9ec7ee.
 */
import { lookup } from 'node:dns/promises';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { publicKeyHex } from '../key/index.js';
import { PROTOCOL_VERSION } from './frame.js';
import type { DerpServer } from './relay.js';

export const DERP_PATH = '/derp';
export const PROBE_PATHS: readonly string[] = ['/derp/probe', '/derp/latency-check'];
export const GENERATE_204_PATH = '/generate_204';
export const BOOTSTRAP_DNS_PATH = '/bootstrap-dns';
/** Request header of Tailscale's captive-portal check, and the header that answers it. */
export const CHALLENGE_HEADER = 'X-Tailscale-Challenge';
export const CHALLENGE_RESPONSE_HEADER = 'X-Tailscale-Response';
/** With value "1": the client already knows our key and will not wait for the 101. */
export const FAST_START_HEADER = 'Derp-Fast-Start';

export interface AttachDerpOptions {
  readonly relay: DerpServer;
  /** Accept WebSocket DERP (browser clients). Default true. */
  readonly websocket?: boolean;
  /**
   * Host names answered by `/bootstrap-dns` (typically every DERP node HostName of the map).
   * Absent: `/bootstrap-dns` is not served (the request handler returns false for it).
   */
  readonly bootstrapDnsNames?: () => readonly string[];
}

export interface DerpHttpHandler {
  /**
   * Serves `/derp` (426 without an upgrade), the probes, `/generate_204` and `/bootstrap-dns`.
   * Returns false, touching nothing, for any other path: the caller routes those.
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean;
  /** Takes a `/derp` upgrade; returns false, touching nothing, for other paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Removes the upgrade listener and stops the WebSocket side. Does not close the relay. */
  detach(): void;
}

/**
 * Hooks the relay into `server`: an `upgrade` listener that takes `/derp` and leaves every other
 * path alone (so the control protocol's own upgrade listener can coexist), and a request
 * handler the caller invokes from its router.
 */
export function attachDerp(server: HttpServer | HttpsServer, options: AttachDerpOptions): DerpHttpHandler {
  const handler = createDerpHttpHandler(options);
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    handler.handleUpgrade(req, socket, head);
  };
  server.on('upgrade', onUpgrade);
  return {
    handleRequest: handler.handleRequest,
    handleUpgrade: handler.handleUpgrade,
    detach() {
      server.off('upgrade', onUpgrade);
      handler.detach();
    },
  };
}

/** The same handler without touching a server, for callers that dispatch upgrades themselves. */
export function createDerpHttpHandler(options: AttachDerpOptions): DerpHttpHandler {
  const relay = options.relay;
  const webSockets =
    options.websocket === false
      ? null
      : new WebSocketServer({
          noServer: true,
          // WireGuard packets do not compress, and Safari's deflate is broken (Tailscale's note).
          perMessageDeflate: false,
          maxPayload: 1 << 20,
          handleProtocols: (protocols) => (protocols.has('derp') ? 'derp' : false),
        });
  const bootstrap = options.bootstrapDnsNames === undefined ? null : new BootstrapDnsCache(options.bootstrapDnsNames);

  const handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    if (pathOf(req) !== DERP_PATH) return false;
    const upgrade = headerValue(req, 'upgrade').toLowerCase();
    const remoteAddress = remoteAddressOf(req);
    const idealNode = headerValue(req, 'ideal-node') || undefined;
    socket.on('error', () => {
      // The relay adds its own handler once it owns the socket; until then, ignore resets.
    });
    if (upgrade !== 'derp' && upgrade !== 'websocket') {
      writeRawResponse(socket, 426, 'Upgrade Required', 'DERP requires connection upgrade');
      return true;
    }
    // Very old clients sent "Upgrade: WebSocket" but spoke plain DERP; real WebSocket clients
    // ask for the "derp" subprotocol (Tailscale's rule).
    const wantsWebSocket = upgrade === 'websocket' && headerValue(req, 'sec-websocket-protocol').includes('derp');
    if (wantsWebSocket) {
      if (webSockets === null) {
        writeRawResponse(socket, 426, 'Upgrade Required', 'WebSocket DERP is disabled on this server');
        return true;
      }
      webSockets.handleUpgrade(req, socket, head, (ws) => {
        const stream = createWebSocketStream(ws);
        relay.accept(stream, { remoteAddress, idealNode });
      });
      return true;
    }
    if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') (socket as { setNoDelay(v: boolean): void }).setNoDelay(true);
    if ('setTimeout' in socket && typeof socket.setTimeout === 'function') (socket as { setTimeout(ms: number): void }).setTimeout(0);
    const fastStart = headerValue(req, FAST_START_HEADER.toLowerCase()) === '1';
    const preamble = fastStart
      ? undefined
      : Buffer.from(
          'HTTP/1.1 101 Switching Protocols\r\n' +
            'Upgrade: DERP\r\n' +
            'Connection: Upgrade\r\n' +
            `Derp-Version: ${PROTOCOL_VERSION}\r\n` +
            `Derp-Public-Key: ${publicKeyHex(relay.publicKey)}\r\n\r\n`,
          'latin1',
        );
    relay.accept(socket, { remoteAddress, head, preamble, idealNode });
    return true;
  };

  const handleRequest = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = pathOf(req);
    if (path === DERP_PATH) {
      res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('DERP requires connection upgrade');
      return true;
    }
    if (PROBE_PATHS.includes(path)) {
      if (req.method === 'HEAD' || req.method === 'GET') {
        res.writeHead(200, { 'Access-Control-Allow-Origin': '*', 'Content-Length': '0' });
        res.end();
      } else {
        res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('bogus probe method');
      }
      return true;
    }
    if (path === GENERATE_204_PATH) {
      serveNoContent(req, res);
      return true;
    }
    if (path === BOOTSTRAP_DNS_PATH && bootstrap !== null) {
      bootstrap.get().then(
        (answer) => {
          res.writeHead(200, { 'Content-Type': 'application/json', Connection: 'close' });
          res.end(JSON.stringify(answer));
        },
        () => {
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end('bootstrap DNS lookup failed');
        },
      );
      return true;
    }
    return false;
  };

  return {
    handleRequest,
    handleUpgrade,
    detach() {
      webSockets?.close();
    },
  };
}

/**
 * Tailscale's captive-portal check: 204, and the challenge echoed back as
 * `response <challenge>` when it is at most 64 characters of `[A-Za-z0-9._:-]`.
 */
export function serveNoContent(req: IncomingMessage, res: ServerResponse): void {
  const challenge = headerValue(req, CHALLENGE_HEADER.toLowerCase());
  const headers: Record<string, string> = {
    'Cache-Control': 'no-cache, no-store, must-revalidate, no-transform, max-age=0',
  };
  if (challenge !== '' && challenge.length <= 64 && /^[A-Za-z0-9._:-]+$/.test(challenge)) {
    headers[CHALLENGE_RESPONSE_HEADER] = `response ${challenge}`;
  }
  res.writeHead(204, headers);
  res.end();
}

/** Resolved addresses of the DERP host names, refreshed at most every 10 minutes (derper's period). */
class BootstrapDnsCache {
  readonly #names: () => readonly string[];
  #answer: Record<string, string[]> | null = null;
  #resolvedAtMs = 0;
  #pending: Promise<Record<string, string[]>> | null = null;

  constructor(names: () => readonly string[]) {
    this.#names = names;
  }

  get(): Promise<Record<string, string[]>> {
    const fresh = this.#answer !== null && Date.now() - this.#resolvedAtMs < 10 * 60_000;
    if (fresh) return Promise.resolve(this.#answer!);
    this.#pending ??= this.#resolve().finally(() => {
      this.#pending = null;
    });
    return this.#pending;
  }

  async #resolve(): Promise<Record<string, string[]>> {
    const answer: Record<string, string[]> = {};
    await Promise.all(
      [...new Set(this.#names())].map(async (name) => {
        try {
          const addresses = await lookup(name, { all: true });
          answer[name] = addresses.map((a) => a.address);
        } catch {
          // A name that does not resolve is left out, as derper does.
        }
      }),
    );
    this.#answer = answer;
    this.#resolvedAtMs = Date.now();
    return answer;
  }
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function headerValue(req: IncomingMessage, lowerName: string): string {
  const value = req.headers[lowerName];
  if (Array.isArray(value)) return value.join(',');
  return value ?? '';
}

function remoteAddressOf(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  const port = req.socket.remotePort ?? 0;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function writeRawResponse(socket: Duplex, status: number, statusText: string, body: string): void {
  const bytes = Buffer.from(body, 'utf8');
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${bytes.length}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

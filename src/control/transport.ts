// The TS2021 transport of the control server: GET /key, the /ts2021 upgrade (plain HTTP and
// WebSocket), the Noise responder handshake, the early payload, and HTTP/2 (our own server
// connection, src/control/h2, prior knowledge) over each Noise connection, handing every request
// to one NoiseRequestHandler with the connection's authenticated machine key. It owns no
// listener: the composition root's http.Server (shared with the admin API and DERP) feeds it
// requests, upgrades and sockets.
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { Server as TlsServer } from 'node:tls';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import type { Logger } from '../log/index.js';
import { F, silentLogger } from '../log/index.js';
import { publicKeyFromBytes, shortKey, type ChallengePublicKey, type Curve25519PrivateKey, type MachinePublicKey } from '../key/index.js';
import { MIN_CAPVER, CapVer, CAPVER_OF_RELEASE } from '../tailcfg/index.js';
import { HeadwayError } from '../util/headway-error.js';
import {
  NoiseConnection,
  NoiseHandshakeError,
  acceptClientHandshake,
  checkInitiation,
  encodeErrorMessage,
  generateEphemeralKey,
  type NoiseSession,
} from '../noise/index.js';
import { ControlErrors } from './errors.js';
import { handleKeyRequest } from './key-handler.js';
import { encodeEarlyPayload } from './early-payload.js';
import { ErrorCode, errorCodeName } from './h2/frames.js';
import { H2ProtocolError, type H2ServerConnection } from './h2/server-connection.js';
import type { ServerStream } from './h2/server-stream.js';
import { serveHttp2OnNoise } from './h2/wires.js';
import { defaultNoiseHandler, pathOf, type NoiseRequestContext, type NoiseRequestHandler, type NoiseRequest, type NoiseResponse } from './noise-request.js';
import {
  HANDSHAKE_HEADER,
  HANDSHAKE_QUERY_PARAMETER,
  SWITCHING_PROTOCOLS,
  UPGRADE_PATH,
  UPGRADE_PROTOCOL,
  decodeStrictBase64,
  singleHeader,
  writeRawResponse,
} from './upgrade-request.js';

export interface ControlTransportLimits {
  /**
   * Deadline for a connection to speak: from TCP accept to its first HTTP request (sockets
   * given to trackConnection), and from the Noise handshake to the client's HTTP/2 SETTINGS.
   */
  readonly handshakeTimeoutMs: number;
  /** Largest request body over Noise (headscale uses 1 MiB too). */
  readonly maxRequestBodyBytes: number;
  /** Noise connections held at once; beyond it /ts2021 answers 503 before any crypto. */
  readonly maxConnections: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (Go's server default is 250). */
  readonly maxConcurrentStreams: number;
  /** Oldest protocol (capability) version accepted in the initiation header. */
  readonly minProtocolVersion: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlTransportLimits = {
  handshakeTimeoutMs: 10_000,
  maxRequestBodyBytes: 1 << 20,
  maxConnections: 100_000,
  maxConcurrentStreams: 250,
  minProtocolVersion: MIN_CAPVER,
};

export interface ControlTransportOptions {
  /** The server's persistent Noise key (its public half is what /key serves). */
  serverKey: Curve25519PrivateKey;
  /** Receives every HTTP/2 request; defaults to defaultNoiseHandler (404, 501). */
  handler?: NoiseRequestHandler;
  logger?: Logger;
  limits?: Partial<ControlTransportLimits>;
}

export interface ControlTransportStats {
  /** Noise connections alive (HTTP upgrade and WebSocket). */
  connectionsOpen: number;
  /** HTTP/2 sessions alive on them. */
  sessionsOpen: number;
  /** HTTP/2 streams not yet closed. */
  streamsOpen: number;
  /** Sockets given to trackConnection that have not yet sent a request. */
  silentSockets: number;
  handshakesCompleted: number;
  /** Upgrades refused before or during the handshake, by error code. */
  refused: Record<string, number>;
  /** Established connections that ended with an error, by error code. */
  failed: Record<string, number>;
}

export interface AttachOptions {
  /** Answer 404 to every other request and upgrade (a server with nothing else on it, tests). */
  answerOtherRequests?: boolean;
}

export interface ControlTransport {
  /** The server's Noise public key, `mkey:<hex>`. */
  readonly publicKey: MachinePublicKey;
  readonly limits: ControlTransportLimits;
  /** Answers GET /key and a non-upgrade /ts2021; false (untouched) for any other path. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean;
  /** Takes a /ts2021 upgrade (TS2021 or WebSocket); false (untouched) for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /**
   * Arms the silent-connection deadline for a freshly accepted socket: the one requests arrive
   * on (behind TLS, the TLS socket of 'secureConnection', not the TCP socket under it).
   */
  trackConnection(socket: Duplex): void;
  /**
   * Disarms it: the socket sent a request. handleRequest/handleUpgrade call this only for their
   * own paths; a server that routes other requests and upgrades (DERP, the admin API) must call
   * it for every one of them.
   */
  connectionActive(socket: Duplex): void;
  /** Wires handleRequest, handleUpgrade and trackConnection to a server; returns the undo. */
  attach(server: HttpServer, options?: AttachOptions): () => void;
  stats(): ControlTransportStats;
  /** Refuses new connections, ends every session and connection, resolves when all are closed. */
  close(): Promise<void>;
}

export function createControlTransport(options: ControlTransportOptions): ControlTransport {
  return new ControlTransportImpl(options);
}

interface ConnectionRecord {
  readonly id: number;
  readonly noise: NoiseConnection;
  readonly context: NoiseRequestContext;
  http2: H2ServerConnection | null;
  prefaceTimer: NodeJS.Timeout | null;
}

/** `Tailscale 1.34` for capver 51: the first release at or above `capver`, for the hint. */
function releaseNameOf(capver: number): string {
  const release = Object.entries(CAPVER_OF_RELEASE).find(([, v]) => v >= capver);
  return release === undefined ? `capability version ${capver}` : `Tailscale ${release[0]}`;
}

class ControlTransportImpl implements ControlTransport {
  readonly publicKey: MachinePublicKey;
  readonly limits: ControlTransportLimits;
  readonly #serverKey: Curve25519PrivateKey;
  readonly #handler: NoiseRequestHandler;
  readonly #log: Logger;
  readonly #wss: WebSocketServer;
  readonly #connections = new Map<number, ConnectionRecord>();
  /** Sockets not yet speaking: their deadline and the 'close' listener that disarms it. */
  readonly #silentSockets = new Map<Duplex, { timer: NodeJS.Timeout; onClose: () => void }>();
  #nextId = 1;
  #closing = false;
  #sessionsOpen = 0;
  #streamsOpen = 0;
  #handshakesCompleted = 0;
  readonly #refused: Record<string, number> = {};
  readonly #failed: Record<string, number> = {};
  readonly #detachers = new Set<() => void>();

  constructor(options: ControlTransportOptions) {
    this.#serverKey = options.serverKey;
    this.publicKey = options.serverKey.publicKey('machine');
    this.#handler = options.handler ?? defaultNoiseHandler;
    this.#log = (options.logger ?? silentLogger()).child({ [F.part]: 'control' });
    this.limits = Object.freeze({ ...DEFAULT_CONTROL_LIMITS, ...options.limits });
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      // Records are at most 4096 bytes; a browser client writes each Noise write as one message.
      maxPayload: 1 << 20,
      handleProtocols: (protocols) => (protocols.has(UPGRADE_PROTOCOL) ? UPGRADE_PROTOCOL : false),
    });
  }

  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const url = requestUrl(req);
    if (url === null) return false;
    if (url.pathname === '/key') {
      this.connectionActive(req.socket);
      handleKeyRequest(req, res, this.publicKey, url);
      return true;
    }
    if (url.pathname === UPGRADE_PATH) {
      this.connectionActive(req.socket);
      // Node only emits 'upgrade' with both Upgrade and Connection: upgrade; anything else
      // lands here, often behind a proxy that dropped the headers.
      const why = req.headers.upgrade === undefined ? 'missing next protocol' : 'missing Connection: upgrade';
      this.#count(this.#refused, ControlErrors.BAD_UPGRADE.code);
      res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' }).end(`${why}\n`);
      return true;
    }
    return false;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = requestUrl(req);
    if (url === null || url.pathname !== UPGRADE_PATH) return false;
    this.connectionActive(socket);
    // Until a NoiseConnection owns the socket, a reset must not become an uncaught error.
    socket.on('error', (err) => this.#log.debug({ [F.err]: err, [F.remote]: remoteOf(socket) }, 'upgrade socket error'));
    if (this.#closing) return this.#refuse(socket, ControlErrors.SHUTTING_DOWN.code, 503, 'server is shutting down', { 'Retry-After': '5' });
    if (this.#connections.size >= this.limits.maxConnections) {
      return this.#refuse(socket, ControlErrors.TOO_MANY_CONNECTIONS.code, 503, 'too many connections', { 'Retry-After': '10' });
    }
    if (req.method !== 'POST' && req.method !== 'GET') {
      return this.#refuse(socket, ControlErrors.BAD_UPGRADE.code, 405, 'use POST or GET', { Allow: 'POST, GET' });
    }
    const next = (singleHeader(req, 'upgrade') ?? '').toLowerCase();
    if (next === 'websocket') {
      this.#acceptWebSocket(req, socket, head, url);
      return true;
    }
    if (next !== UPGRADE_PROTOCOL) return this.#refuse(socket, ControlErrors.BAD_UPGRADE.code, 400, 'unknown next protocol');
    const initB64 = singleHeader(req, HANDSHAKE_HEADER);
    if (initB64 === undefined || initB64 === '') {
      return this.#refuse(socket, ControlErrors.BAD_UPGRADE.code, 400, 'missing Tailscale handshake header');
    }
    const initiation = decodeStrictBase64(initB64);
    if (initiation === null) return this.#refuse(socket, ControlErrors.BAD_UPGRADE.code, 400, 'invalid tailscale handshake header');
    this.#acceptHttpUpgrade(socket, initiation, head);
    return true;
  }

  trackConnection = (socket: Duplex): void => {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => {
      this.#silentSockets.delete(socket);
      this.#count(this.#refused, ControlErrors.HANDSHAKE_TIMEOUT.code);
      this.#log.debug({ [F.remote]: remoteOf(socket) }, 'dropped a connection that never sent a request');
      socket.destroy();
    }, this.limits.handshakeTimeoutMs);
    timer.unref();
    const onClose = (): void => this.connectionActive(socket);
    this.#silentSockets.set(socket, { timer, onClose });
    socket.once('close', onClose);
  };

  connectionActive(socket: Duplex): void {
    const silent = this.#silentSockets.get(socket);
    if (silent === undefined) return;
    clearTimeout(silent.timer);
    // Not left on a socket that may stay open for hours (a map poll).
    socket.off('close', silent.onClose);
    this.#silentSockets.delete(socket);
  }

  attach(server: HttpServer, options: AttachOptions = {}): () => void {
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      this.connectionActive(req.socket);
      if (!this.handleRequest(req, res) && options.answerOtherRequests === true) {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      }
    };
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      this.connectionActive(socket);
      if (!this.handleUpgrade(req, socket, head) && options.answerOtherRequests === true) {
        socket.on('error', () => socket.destroy());
        writeRawResponse(socket, 404, 'not found');
      }
    };
    // Behind TLS, requests arrive on the TLS socket, which 'secureConnection' hands out.
    const acceptEvent = server instanceof TlsServer ? 'secureConnection' : 'connection';
    server.on(acceptEvent, this.trackConnection);
    server.on('request', onRequest);
    server.on('upgrade', onUpgrade);
    const detach = (): void => {
      server.off(acceptEvent, this.trackConnection);
      server.off('request', onRequest);
      server.off('upgrade', onUpgrade);
      this.#detachers.delete(detach);
    };
    this.#detachers.add(detach);
    return detach;
  }

  stats(): ControlTransportStats {
    return {
      connectionsOpen: this.#connections.size,
      sessionsOpen: this.#sessionsOpen,
      streamsOpen: this.#streamsOpen,
      silentSockets: this.#silentSockets.size,
      handshakesCompleted: this.#handshakesCompleted,
      refused: { ...this.#refused },
      failed: { ...this.#failed },
    };
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const detach of [...this.#detachers]) detach();
    for (const [socket, { timer }] of this.#silentSockets) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.#silentSockets.clear();
    // GOAWAY(NO_ERROR) and the end of each connection; one whose client does not close its side
    // goes after the connection's grace period.
    const closing = [...this.#connections.values()].map(
      (record) =>
        new Promise<void>((resolve) => {
          if (record.noise.destroyed) {
            resolve();
            return;
          }
          record.noise.once('close', () => resolve());
          if (record.http2 !== null) record.http2.close();
          else record.noise.destroy();
        }),
    );
    await Promise.all(closing);
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#log.info('control transport closed');
  }

  // --- upgrades -----------------------------------------------------------------------------

  #acceptHttpUpgrade(socket: Duplex, initiation: Buffer, head: Buffer): void {
    const tcp = socket as Partial<Socket>;
    tcp.setTimeout?.(0);
    tcp.setNoDelay?.(true);
    // Reclaims connections of clients that vanished without a FIN (laptops closed, NAT expiry).
    tcp.setKeepAlive?.(true, 60_000);
    let session: NoiseSession;
    let response: Buffer;
    try {
      ({ session, response } = this.#respond(initiation));
    } catch (err) {
      // As controlbase: the 101 first, then a public hint for framing errors, then close.
      const hint = err instanceof NoiseHandshakeError ? err.publicHint : null;
      this.#handshakeRefused(err, remoteOf(socket));
      socket.end(hint === null ? SWITCHING_PROTOCOLS : Buffer.concat([SWITCHING_PROTOCOLS, encodeErrorMessage(hint)]));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const challenge = publicKeyFromBytes('challenge', generateEphemeralKey().publicBytes);
    // One TCP write for the 101, the response and the early payload record (controlbase corks).
    socket.cork();
    socket.write(Buffer.concat([SWITCHING_PROTOCOLS, response]));
    const noise = new NoiseConnection(socket, session, { initialData: head, label: `connection ${this.#nextId} from ${remoteOf(socket)}` });
    if (session.protocolVersion >= CapVer.EarlyNoise) noise.write(encodeEarlyPayload(challenge));
    process.nextTick(() => socket.uncork());
    this.#adopt(noise, 'http-upgrade', challenge);
  }

  #acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const offered = (singleHeader(req, 'sec-websocket-protocol') ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(UPGRADE_PROTOCOL)) {
      this.#refuse(socket, ControlErrors.BAD_UPGRADE.code, 400, 'client must speak the control subprotocol');
      return;
    }
    const initB64 = url.searchParams.get(HANDSHAKE_QUERY_PARAMETER);
    if (initB64 === null || initB64 === '') {
      this.#refuse(socket, ControlErrors.BAD_UPGRADE.code, 400, 'missing Tailscale handshake parameter');
      return;
    }
    const initiation = decodeStrictBase64(initB64);
    if (initiation === null) {
      this.#refuse(socket, ControlErrors.BAD_UPGRADE.code, 400, 'invalid tailscale handshake parameter');
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', (err) => this.#log.debug({ [F.err]: err }, 'websocket stream error'));
      let session: NoiseSession;
      let response: Buffer;
      try {
        ({ session, response } = this.#respond(initiation));
      } catch (err) {
        const hint = err instanceof NoiseHandshakeError ? err.publicHint : null;
        this.#handshakeRefused(err, remoteOf(socket));
        if (hint !== null) stream.write(encodeErrorMessage(hint));
        ws.close(1008, 'handshake failed');
        setTimeout(() => ws.terminate(), 1000).unref();
        return;
      }
      stream.write(response);
      const noise = new NoiseConnection(stream, session, { label: `websocket connection ${this.#nextId} from ${remoteOf(socket)}` });
      this.#adopt(noise, 'websocket', null);
    });
  }

  /** Checks the frame and version, then runs the responder handshake; throws with a hint. */
  #respond(initiation: Buffer): { session: NoiseSession; response: Buffer } {
    const header = checkInitiation(initiation);
    if (header.protocolVersion < this.limits.minProtocolVersion) {
      throw new NoiseHandshakeError(
        ControlErrors.UNSUPPORTED_VERSION,
        `control: initiation: protocol version ${header.protocolVersion} is older than ${this.limits.minProtocolVersion}`,
        { publicHint: `client version too old; this server needs ${releaseNameOf(this.limits.minProtocolVersion)} or newer` },
      );
    }
    return acceptClientHandshake({ controlKey: this.#serverKey, initiation });
  }

  #handshakeRefused(err: unknown, remote: string): void {
    const code = err instanceof HeadwayError ? err.code : ControlErrors.HANDSHAKE_FAILED.code;
    this.#count(this.#refused, code);
    this.#log.debug({ [F.err]: err, [F.remote]: remote }, 'refused a noise handshake');
  }

  #refuse(socket: Duplex, code: string, status: number, text: string, headers: Record<string, string> = {}): true {
    this.#count(this.#refused, code);
    this.#log.debug({ [F.remote]: remoteOf(socket), code, status }, 'refused an upgrade');
    writeRawResponse(socket, status, text, headers);
    return true;
  }

  // --- connections and HTTP/2 ---------------------------------------------------------------

  #adopt(noise: NoiseConnection, via: NoiseRequestContext['via'], challenge: ChallengePublicKey | null): void {
    const id = this.#nextId++;
    const context: NoiseRequestContext = Object.freeze({
      machineKey: noise.peerMachineKey,
      protocolVersion: noise.protocolVersion,
      connectionId: id,
      remoteAddress: noise.remoteAddress,
      via,
      nodeKeyChallenge: challenge,
      maxRequestBodyBytes: this.limits.maxRequestBodyBytes,
    });
    const record: ConnectionRecord = { id, noise, context, http2: null, prefaceTimer: null };
    this.#connections.set(id, record);
    this.#handshakesCompleted++;
    // Fields on each line rather than a child logger: a pino child is about half a KiB held for
    // the connection's whole life (measured at 10,000 connections), for three debug lines.
    const names = { [F.session]: id, [F.machine]: shortKey(context.machineKey), [F.capver]: context.protocolVersion };
    this.#log.debug({ ...names, [F.remote]: context.remoteAddress, via }, 'noise connection established');
    noise.on('error', (err) => {
      this.#count(this.#failed, err instanceof HeadwayError ? err.code : 'other');
      this.#log.debug({ ...names, [F.err]: err }, 'noise connection failed');
    });
    noise.once('close', () => {
      this.#connections.delete(id);
      if (record.prefaceTimer !== null) clearTimeout(record.prefaceTimer);
      if (record.http2 !== null) this.#sessionsOpen--;
      this.#log.debug(names, 'noise connection closed');
    });
    record.prefaceTimer = setTimeout(() => {
      record.prefaceTimer = null;
      noise.destroy(
        new HeadwayError(ControlErrors.HANDSHAKE_TIMEOUT, `control: ${noise.label}: no HTTP/2 preface within ${this.limits.handshakeTimeoutMs} ms`),
      );
    }, this.limits.handshakeTimeoutMs);
    record.prefaceTimer.unref();
    if (noise.destroyed) return;
    record.http2 = serveHttp2OnNoise(noise, {
      maxConcurrentStreams: this.limits.maxConcurrentStreams,
      maxRequestBodyBytes: this.limits.maxRequestBodyBytes,
      onRequest: (stream) => this.#onRequest(stream, record.context),
      onPreface: () => {
        if (record.prefaceTimer !== null) clearTimeout(record.prefaceTimer);
        record.prefaceTimer = null;
      },
      onStreamCount: (delta) => {
        this.#streamsOpen += delta;
      },
      onError: (err) => {
        if (err instanceof H2ProtocolError) {
          this.#count(this.#failed, ControlErrors.HTTP2_PROTOCOL.code);
          this.#log.debug({ ...names, [F.err]: err, code: errorCodeName(err.code) }, 'http2 protocol error; sent GOAWAY');
        } else {
          this.#log.error({ ...names, [F.err]: err }, 'a noise response listener threw');
        }
      },
    });
    this.#sessionsOpen++;
  }

  #onRequest(stream: ServerStream, context: NoiseRequestContext): void {
    const declared = Number(stream.headers['content-length']);
    if (Number.isFinite(declared) && declared > context.maxRequestBodyBytes) {
      this.#answerError(stream, stream, context, new HeadwayError(ControlErrors.BODY_TOO_LARGE, `${pathOf(stream)}: declared body of ${declared} bytes exceeds ${context.maxRequestBodyBytes}`));
      return;
    }
    let pending: void | Promise<void>;
    try {
      pending = this.#handler(stream, stream, context);
    } catch (err) {
      this.#answerError(stream, stream, context, err);
      return;
    }
    if (pending instanceof Promise) pending.catch((err: unknown) => this.#answerError(stream, stream, context, err));
  }

  #answerError(req: NoiseRequest, res: NoiseResponse, context: NoiseRequestContext, err: unknown): void {
    const known = err instanceof HeadwayError;
    const status = known ? err.status : 500;
    const log = { [F.err]: err, [F.path]: pathOf(req), [F.session]: context.connectionId, code: known ? err.code : ControlErrors.HANDLER_FAILED.code };
    if (status >= 500) this.#log.error(log, 'noise request failed');
    else this.#log.debug(log, 'noise request refused');
    if (res.headersSent || res.closed) {
      if (!res.closed) res.reset(ErrorCode.INTERNAL_ERROR);
      return;
    }
    // 4xx messages are written for the client (no secrets in HeadwayError messages); 5xx are not.
    const body = status < 500 && known ? `${err.message}\n` : 'internal server error\n';
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(body);
  }

  #count(table: Record<string, number>, code: string): void {
    table[code] = (table[code] ?? 0) + 1;
  }
}

function requestUrl(req: IncomingMessage): URL | null {
  try {
    return new URL(req.url ?? '/', 'http://control.invalid');
  } catch {
    return null;
  }
}

function remoteOf(socket: Duplex): string {
  const tcp = socket as Partial<Socket>;
  return tcp.remoteAddress === undefined ? 'unknown peer' : `${tcp.remoteAddress}:${tcp.remotePort ?? '?'}`;
}

// Our TS2021 client: dials /ts2021 on a raw socket, runs the Noise initiator, reads the optional
// early payload, then speaks HTTP/2 (node:http2) over the Noise connection. Per connection it
// holds one socket, one NoiseConnection and one HTTP/2 session, and nothing else, so a load
// benchmark can run thousands in one process.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import {
  connect as http2Connect,
  constants as http2Constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { CURRENT_CAPVER } from '../tailcfg/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { Curve25519PrivateKey, publicKeyBytes, type MachinePublicKey } from '../key/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { NoiseConnection, beginClientHandshake, readFrameHeader, MessageType, RESPONSE_BYTES } from '../noise/index.js';
import { ClientErrors } from './errors.js';
import { parseServerUrl, type ServerAddress } from './server-url.js';
import { fetchServerKey } from './server-key.js';
import { upgradeToNoise } from './http-upgrade.js';
import { StreamReader } from './stream-reader.js';
import { readEarlyPayload } from './early-payload-reader.js';
import { MapStream, type MapStreamOptions } from './map-stream.js';

export interface DialOptions {
  /** Control server URL, `http://host:port` or `https://host`. */
  serverUrl: string;
  /** The client's machine key; a fresh one when absent. */
  machineKey?: Curve25519PrivateKey;
  /** The server's Noise key; fetched from /key when absent (share one fetch across clients). */
  serverKey?: MachinePublicKey;
  /** Capability version sent in the initiation header and /key?v=. */
  protocolVersion?: number;
  /** Whole dial: TCP, upgrade, handshake and early payload. */
  dialTimeoutMs?: number;
  /** For https URLs with a test certificate. */
  rejectUnauthorized?: boolean;
  /**
   * HTTP/2 receive windows the client advertises: per stream and for the connection (null
   * keeps HTTP/2's 65,535). Default as tailscaled (Go's HTTP/2): 4 MiB and 1 GiB.
   */
  http2Windows?: { stream: number; connection: number | null };
}

export interface NoiseDial {
  readonly noise: NoiseConnection;
  readonly earlyPayload: tailcfg.EarlyNoise | null;
  readonly machineKey: Curve25519PrivateKey;
  readonly serverKey: MachinePublicKey;
  readonly address: ServerAddress;
}

/** TCP (or TLS), POST /ts2021 upgrade, Noise handshake, early payload. */
export async function dialNoise(options: DialOptions): Promise<NoiseDial> {
  const address = parseServerUrl(options.serverUrl);
  const protocolVersion = options.protocolVersion ?? CURRENT_CAPVER;
  const serverKey = options.serverKey ?? (await fetchServerKey(options.serverUrl, { protocolVersion, rejectUnauthorized: options.rejectUnauthorized ?? true }));
  const machineKey = options.machineKey ?? Curve25519PrivateKey.generate();
  const initiation = beginClientHandshake({ machineKey, controlPublic: publicKeyBytes(serverKey), protocolVersion });
  const socket: Socket = address.secure
    ? tlsConnect({ host: address.hostname, port: address.port, servername: address.hostname, ALPNProtocols: ['http/1.1'], rejectUnauthorized: options.rejectUnauthorized ?? true })
    : netConnect({ host: address.hostname, port: address.port });
  socket.setNoDelay(true);
  const timeoutMs = options.dialTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new HeadwayError(ClientErrors.DIAL_TIMEOUT, `client: dialing ${address.base}: no Noise connection within ${timeoutMs} ms`);
      socket.destroy(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    return await Promise.race([timeout, handshake(socket, address, initiation, machineKey, serverKey)]);
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function handshake(
  socket: Socket,
  address: ServerAddress,
  initiation: ReturnType<typeof beginClientHandshake>,
  machineKey: Curve25519PrivateKey,
  serverKey: MachinePublicKey,
): Promise<NoiseDial> {
  const raw = await upgradeToNoise(socket, address.base, address.authority, initiation.message.toString('base64'));
  let frame: Buffer;
  try {
    await raw.need(3, 'the handshake response header');
    const { type, length } = readFrameHeader(raw.buffered);
    // An error frame is shorter than a response; read exactly what its header announces.
    await raw.need(type === MessageType.error ? 3 + length : RESPONSE_BYTES, 'the handshake response');
    frame = raw.take(type === MessageType.error ? 3 + length : RESPONSE_BYTES);
  } catch (err) {
    raw.release();
    throw err instanceof HeadwayError
      ? err
      : new HeadwayError(ClientErrors.UPGRADE_FAILED, `client: ${address.base}: reading the handshake response: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const session = initiation.finish(frame);
  const noise = new NoiseConnection(socket, session, { initialData: raw.release(), label: `connection to ${address.base}` });
  // Until HTTP/2 owns it, a failing connection must not throw an unhandled 'error'.
  const holdErrors = (): void => {};
  noise.on('error', holdErrors);
  const plain = new StreamReader(noise);
  try {
    const earlyPayload = await readEarlyPayload(plain, address.base);
    const rest = plain.release();
    if (rest.length > 0) noise.unshift(rest);
    noise.off('error', holdErrors);
    return { noise, earlyPayload, machineKey, serverKey, address };
  } catch (err) {
    plain.release();
    noise.destroy();
    throw err;
  }
}

export interface JsonResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body parsed as JSON; undefined when it is not JSON. */
  readonly json: unknown;
}

export interface RequestOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  /** Resets the stream when it fires. */
  signal?: AbortSignal;
}

/** One Noise connection with HTTP/2 on top. */
export class ControlClient {
  readonly machineKey: Curve25519PrivateKey;
  readonly serverKey: MachinePublicKey;
  readonly earlyPayload: tailcfg.EarlyNoise | null;
  readonly noise: NoiseConnection;
  readonly session: ClientHttp2Session;
  /** Resolves when the HTTP/2 session has closed (for whatever reason). */
  readonly closed: Promise<void>;

  private constructor(dial: NoiseDial, session: ClientHttp2Session) {
    this.machineKey = dial.machineKey;
    this.serverKey = dial.serverKey;
    this.earlyPayload = dial.earlyPayload;
    this.noise = dial.noise;
    this.session = session;
    this.closed = new Promise((resolve) => session.once('close', () => resolve()));
  }

  static async connect(options: DialOptions): Promise<ControlClient> {
    const dial = await dialNoise(options);
    // Tailscale builds request URLs as https://<control host>/...; the :scheme says https even
    // over plain port 80, because the Noise layer is the security.
    const session = http2Connect(`https://${dial.address.authority}`, {
      createConnection: () => dial.noise,
      // tailscaled (Go's HTTP/2) advertises a 4 MiB stream window and a 1 GiB connection
      // window; with Node's 64 KiB default a big netmap would wait for round trips.
      settings: { enablePush: false, initialWindowSize: options.http2Windows?.stream ?? 4 << 20 },
    });
    const connectionWindow = options.http2Windows === undefined ? 1 << 30 : options.http2Windows.connection;
    if (connectionWindow !== null) session.once('connect', () => session.setLocalWindowSize(connectionWindow));
    // A failed session is reported through requests and `closed`; never as an uncaught error.
    session.on('error', () => {});
    session.setTimeout(0);
    return new ControlClient(dial, session);
  }

  /** The machine key as `mkey:<hex>`. */
  get machinePublicKey(): MachinePublicKey {
    return this.machineKey.publicKey('machine');
  }

  /** Sends one request and reads the whole answer (bodies are small outside map streams). */
  async request(path: string, body?: Buffer | string, options: RequestOptions = {}): Promise<JsonResponse> {
    const stream = this.#open(path, options.method ?? (body === undefined ? 'GET' : 'POST'), options.headers ?? {}, options.signal);
    stream.end(body);
    const [headers, data] = await Promise.all([responseHeaders(stream, path), collect(stream, path)]);
    let json: unknown;
    try {
      json = data.length > 0 ? JSON.parse(data.toString('utf8')) : undefined;
    } catch {
      json = undefined;
    }
    return { status: Number(headers[':status']), headers, body: data, json };
  }

  /** POST `body` as JSON (what tailscaled does for /machine/register and lite map updates). */
  postJson(path: string, body: unknown, options: RequestOptions = {}): Promise<JsonResponse> {
    return this.request(path, JSON.stringify(body), { ...options, method: 'POST', headers: { 'content-type': 'application/json', ...options.headers } });
  }

  /**
   * POST /machine/map and read the streamed MapResponses. Rejects (before any message) when the
   * answer is not 200. Whether messages are zstd follows `request.Compress`.
   */
  async openMapStream(request: tailcfg.MapRequest | Record<string, unknown>, options: MapStreamOptions & RequestOptions = {}): Promise<MapStream> {
    const stream = this.#open('/machine/map', 'POST', { 'content-type': 'application/json', ...options.headers }, options.signal);
    stream.end(JSON.stringify(request));
    const headers = await responseHeaders(stream, '/machine/map');
    const status = Number(headers[':status']);
    if (status !== 200) {
      const text = (await collect(stream, '/machine/map')).toString('utf8').trim().slice(0, 200);
      throw new HeadwayError(ClientErrors.REQUEST_FAILED, `client: POST /machine/map: HTTP ${status}: ${text}`);
    }
    const compressed = (request as Record<string, unknown>)['Compress'] === 'zstd';
    return new MapStream(stream, compressed, options);
  }

  /** Ends the HTTP/2 session and the Noise connection. */
  async close(): Promise<void> {
    // Close the Noise connection and let HTTP/2 follow its socket: destroying the session first
    // makes it write GOAWAY, which trips http2's socket wrapper if a write is still in flight.
    this.noise.destroy();
    await this.closed;
  }

  #open(path: string, method: string, headers: OutgoingHttpHeaders, signal: AbortSignal | undefined): ClientHttp2Stream {
    const stream = this.session.request({ ':method': method, ':path': path, ...headers }, signal === undefined ? {} : { signal });
    // Errors surface through responseHeaders/collect; keep them from being uncaught.
    stream.on('error', () => {});
    return stream;
  }
}

function responseHeaders(stream: ClientHttp2Stream, path: string): Promise<IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const onClose = (): void =>
      reject(new HeadwayError(ClientErrors.REQUEST_FAILED, `client: ${path}: stream closed before a response (code ${stream.rstCode ?? http2Constants.NGHTTP2_NO_ERROR})`));
    stream.once('response', (headers) => {
      stream.off('close', onClose);
      resolve(headers);
    });
    stream.once('close', onClose);
  });
}

function collect(stream: ClientHttp2Stream, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('close', () => {
      if (!stream.readableEnded) reject(new HeadwayError(ClientErrors.REQUEST_FAILED, `client: ${path}: stream reset (code ${stream.rstCode ?? '?'})`));
    });
  });
}

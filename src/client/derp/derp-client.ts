/**
 * @module client/derp/derp-client
 * A DERP client, written from the protocol (derp.md §3-4; tailscale/tailscale
 * derp/derp_client.go and derp/derphttp/derphttp_client.go @de9ec7ee), not from our server:
 * it shares no code with `src/derp`, so tests that pass through it check the server against an
 * independent reading of the protocol. Its NaCl box is tweetnacl's own (the server derives the
 * key natively), which also checks that the two derivations agree.
 *
 * Connects over plain HTTP(S) upgrade or WebSocket (subprotocol `derp`), performs the handshake,
 * then sends packets, pings, NotePreferred, and reports what the server sends.
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions as TlsOptions } from 'node:tls';
import nacl from 'tweetnacl';
import { WebSocket, createWebSocketStream } from 'ws';
import type { Curve25519PrivateKey, NodePublicKey } from '../../key/index.js';
import { publicKeyBytes, publicKeyFromBytes } from '../../key/index.js';
import type { HeadwayError } from '../../util/headway-error.js';
import { derpClientError } from './errors.js';

/** Frame types this client reads or writes (byte layouts: src/derp/frame.ts and derp.md §4.1). */
export const ClientFrameType = {
  ServerKey: 0x01,
  ClientInfo: 0x02,
  ServerInfo: 0x03,
  SendPacket: 0x04,
  RecvPacket: 0x05,
  KeepAlive: 0x06,
  NotePreferred: 0x07,
  PeerGone: 0x08,
  PeerPresent: 0x09,
  ForwardPacket: 0x0a,
  WatchConns: 0x10,
  Ping: 0x12,
  Pong: 0x13,
  Health: 0x14,
  Restarting: 0x15,
} as const;

const HEADER_BYTES = 5;
const KEY_BYTES = 32;
const NONCE_BYTES = 24;
const MAX_PACKET_BYTES = 64 << 10;
/** Go's client refuses frames above 1 MiB. */
const MAX_FRAME_BYTES = 1 << 20;
const SERVER_KEY_MAGIC = Buffer.from('DERP🔑', 'utf8');
const MAX_HTTP_HEADER_BYTES = 16 << 10;

export interface DerpClientOptions {
  /**
   * Where the relay is: `http://host:port`, `https://host:port` (plain DERP upgrade) or
   * `ws://`/`wss://` (WebSocket). The path defaults to `/derp`.
   */
  readonly url: string;
  /** The node's key; its public half is the client's DERP address. */
  readonly privateKey: Curve25519PrivateKey;
  /** Declared in ClientInfo; when true, the client answers server Pings. Default true. */
  readonly canAckPings?: boolean;
  readonly appName?: string;
  /** Resolve connect() only once ServerInfo arrived (i.e. the server admitted us). Default true. */
  readonly waitForServerInfo?: boolean;
  /** For the whole connect(). Default 10 000. */
  readonly timeoutMs?: number;
  /** TLS options for https/wss (e.g. `ca`, `servername`, `rejectUnauthorized`). */
  readonly tls?: TlsOptions;
  /** Extra request headers (e.g. `Derp-Fast-Start: 1` in tests). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent in ClientInfo by another relay of the region (a mesh connection). */
  readonly meshKey?: string;
}

/** ServerInfo (`derp.ServerInfo`). */
export interface DerpServerInfo {
  readonly version: number;
  /** 0 = no limit. The client drops its own sends beyond it, as Go's client does. */
  readonly tokenBucketBytesPerSecond: number;
  readonly tokenBucketBytesBurst: number;
}

export interface DerpPeerGone {
  readonly peer: NodePublicKey;
  /** 0 = disconnected, 1 = not here. */
  readonly reason: number;
}

export interface DerpClientCounters {
  packetsReceived: number;
  bytesReceived: number;
  packetsSent: number;
  bytesSent: number;
  /** Sends dropped by the client's own token bucket (from ServerInfo). */
  packetsDroppedByRateLimit: number;
  keepAlives: number;
  pingsAnswered: number;
}

type Listener<A extends unknown[]> = (...args: A) => void;

class Listeners<A extends unknown[]> {
  readonly #set = new Set<Listener<A>>();
  add(fn: Listener<A>): () => void {
    this.#set.add(fn);
    return () => this.#set.delete(fn);
  }
  emit(...args: A): void {
    for (const fn of this.#set) fn(...args);
  }
}

export class DerpClient {
  readonly publicKey: NodePublicKey;
  readonly counters: DerpClientCounters = {
    packetsReceived: 0,
    bytesReceived: 0,
    packetsSent: 0,
    bytesSent: 0,
    packetsDroppedByRateLimit: 0,
    keepAlives: 0,
    pingsAnswered: 0,
  };
  /** Resolves when the connection is gone: null for a close we asked for, else the cause. */
  readonly closed: Promise<HeadwayError | null>;

  readonly #privateKey: Curve25519PrivateKey;
  readonly #publicRaw: Buffer;
  readonly #canAckPings: boolean;
  readonly #stream: Duplex;
  #serverKeyRaw: Buffer | null = null;
  #serverInfo: DerpServerInfo | null = null;
  /** Received bytes not yet parsed, joined only once a whole frame is there. */
  #chunks: Buffer[] = [];
  #buffered = 0;
  #needed = HEADER_BYTES;
  #isClosed = false;
  #closeError: HeadwayError | null = null;
  #resolveClosed!: (err: HeadwayError | null) => void;
  #rate: { perMs: number; burst: number; tokens: number; at: number } | null = null;
  readonly #pendingPings = new Map<string, (data: Buffer) => void>();
  readonly #sourceNames = new Map<string, NodePublicKey>();
  readonly #onPacket = new Listeners<[src: NodePublicKey, packet: Buffer]>();
  readonly #onPeerGone = new Listeners<[gone: DerpPeerGone]>();
  readonly #onKeepAlive = new Listeners<[]>();
  readonly #onHealth = new Listeners<[problem: string]>();
  readonly #onServerInfo = new Listeners<[info: DerpServerInfo]>();
  readonly #onFrame = new Listeners<[type: number, payload: Buffer]>();
  readonly #onClose = new Listeners<[err: HeadwayError | null]>();
  #onServerKey: ((err: HeadwayError | null) => void) | null = null;

  private constructor(stream: Duplex, options: DerpClientOptions, initial: Buffer) {
    this.#stream = stream;
    this.#privateKey = options.privateKey;
    this.#publicRaw = options.privateKey.publicBytes;
    this.publicKey = options.privateKey.publicKey('node');
    this.#canAckPings = options.canAckPings ?? true;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('error', (err) => this.#finish(derpClientError('closed', `derp client: connection error: ${err.message}`, { cause: err })));
    stream.on('end', () => this.#finish(derpClientError('closed', 'derp client: the server closed the connection')));
    stream.on('close', () => this.#finish(derpClientError('closed', 'derp client: the connection closed')));
    if (initial.length > 0) this.#onData(initial);
    // The upgrade left the socket paused; from here on we read.
    stream.resume();
  }

  /** Connects, reads ServerKey, sends ClientInfo and (by default) waits for ServerInfo. */
  static async connect(options: DerpClientOptions): Promise<DerpClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    let stream: Duplex | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        stream?.destroy();
        reject(derpClientError('timeout', `derp client: ${options.url}: handshake did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      const opened = await Promise.race([openTransport(options), timeout]);
      stream = opened.stream;
      const client = new DerpClient(opened.stream, options, opened.rest);
      await Promise.race([client.#handshake(options), timeout]);
      return client;
    } catch (err) {
      stream?.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  get serverPublicKey(): NodePublicKey {
    return publicKeyFromBytes('node', this.#serverKeyRaw!);
  }

  /** The ServerInfo, once it arrived. */
  get serverInfo(): DerpServerInfo | null {
    return this.#serverInfo;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** True when the socket's write buffer is over its high-water mark; see waitForDrain. */
  get needsDrain(): boolean {
    return this.#stream.writableNeedDrain;
  }

  waitForDrain(): Promise<void> {
    if (!this.#stream.writableNeedDrain || this.#isClosed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#stream.off('drain', done);
        this.#stream.off('close', done);
        resolve();
      };
      this.#stream.on('drain', done);
      this.#stream.on('close', done);
    });
  }

  onPacket(fn: (src: NodePublicKey, packet: Buffer) => void): () => void {
    return this.#onPacket.add(fn);
  }
  onPeerGone(fn: (gone: DerpPeerGone) => void): () => void {
    return this.#onPeerGone.add(fn);
  }
  onKeepAlive(fn: () => void): () => void {
    return this.#onKeepAlive.add(fn);
  }
  onHealth(fn: (problem: string) => void): () => void {
    return this.#onHealth.add(fn);
  }
  /** Every frame after the handshake, raw (tests). */
  onFrame(fn: (type: number, payload: Buffer) => void): () => void {
    return this.#onFrame.add(fn);
  }
  onClose(fn: (err: HeadwayError | null) => void): () => void {
    return this.#onClose.add(fn);
  }

  /**
   * Sends `packet` to the node with key `dst`. Returns false if the client's own rate limit
   * (from ServerInfo) dropped it. Throws for a packet over 64 KiB or a closed client.
   */
  sendPacket(dst: NodePublicKey, packet: Uint8Array): boolean {
    if (packet.length > MAX_PACKET_BYTES) {
      throw derpClientError('packetTooLarge', `derp client: packet of ${packet.length} bytes, want at most ${MAX_PACKET_BYTES}`);
    }
    this.#assertOpen();
    if (this.#rate !== null && !this.#allow(HEADER_BYTES + KEY_BYTES + packet.length)) {
      this.counters.packetsDroppedByRateLimit++;
      return false;
    }
    const frame = Buffer.allocUnsafe(HEADER_BYTES + KEY_BYTES + packet.length);
    frame[0] = ClientFrameType.SendPacket;
    frame.writeUInt32BE(KEY_BYTES + packet.length, 1);
    publicKeyBytes(dst).copy(frame, HEADER_BYTES);
    frame.set(packet, HEADER_BYTES + KEY_BYTES);
    this.#stream.write(frame);
    this.counters.packetsSent++;
    this.counters.bytesSent += packet.length;
    return true;
  }

  /** Sends a Ping and resolves with the echoed 8 bytes when the Pong arrives. */
  ping(options: { timeoutMs?: number } = {}): Promise<Buffer> {
    this.#assertOpen();
    const data = randomBytes(8);
    const id = data.toString('hex');
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pendingPings.delete(id);
        reject(derpClientError('timeout', `derp client: no pong within ${timeoutMs} ms`));
      }, timeoutMs);
      const stopOnClose = this.onClose((err) => {
        clearTimeout(timer);
        this.#pendingPings.delete(id);
        reject(err ?? derpClientError('closed', 'derp client: closed while waiting for a pong'));
      });
      this.#pendingPings.set(id, (echo) => {
        clearTimeout(timer);
        stopOnClose();
        resolve(echo);
      });
      this.sendFrame(ClientFrameType.Ping, data);
    });
  }

  /** Tells the server whether it is this client's home DERP (stats only). */
  notePreferred(preferred: boolean): void {
    this.sendFrame(ClientFrameType.NotePreferred, Buffer.from([preferred ? 1 : 0]));
  }

  /** Writes one frame as given (tests use it for malformed frames). */
  sendFrame(type: number, payload: Uint8Array, options: { declaredLength?: number } = {}): void {
    this.#assertOpen();
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header[0] = type;
    header.writeUInt32BE(options.declaredLength ?? payload.length, 1);
    this.#stream.write(Buffer.concat([header, payload]));
  }

  /** Writes raw bytes (tests: truncated frames, garbage). */
  writeRaw(bytes: Uint8Array): void {
    this.#assertOpen();
    this.#stream.write(bytes);
  }

  /** Stops reading from the socket (simulates a slow receiver in tests and benchmarks). */
  pauseReading(): void {
    this.#stream.pause();
  }

  resumeReading(): void {
    this.#stream.resume();
  }

  /** Closes the connection; `closed` resolves with null. */
  close(): void {
    this.#finish(null);
  }

  // --- internals ----------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#isClosed) throw derpClientError('closed', 'derp client: the connection is closed');
  }

  #allow(cost: number): boolean {
    const rate = this.#rate!;
    const now = performance.now();
    rate.tokens = Math.min(rate.burst, rate.tokens + (now - rate.at) * rate.perMs);
    rate.at = now;
    if (rate.tokens < cost) return false;
    rate.tokens -= cost;
    return true;
  }

  async #handshake(options: DerpClientOptions): Promise<void> {
    if (this.#isClosed) throw this.#closeError ?? derpClientError('closed', 'derp client: the server closed the connection before ServerKey');
    if (this.#serverKeyRaw === null) await new Promise<void>((resolve, reject) => {
      this.#onServerKey = (err) => (err === null ? resolve() : reject(err));
      const stop = this.onClose((err) => {
        stop();
        reject(err ?? derpClientError('closed', 'derp client: closed before ServerKey'));
      });
    });
    const info: Record<string, unknown> = { version: 2, CanAckPings: this.#canAckPings };
    if (options.appName !== undefined) info['AppName'] = options.appName;
    if (options.meshKey !== undefined) info['meshKey'] = options.meshKey;
    const nonce = nacl.randomBytes(NONCE_BYTES);
    const box = nacl.box(Buffer.from(JSON.stringify(info)), nonce, this.#serverKeyRaw!, this.#privateKey.rawBytes());
    this.sendFrame(ClientFrameType.ClientInfo, Buffer.concat([this.#publicRaw, nonce, box]));
    if (options.waitForServerInfo === false) return;
    await new Promise<void>((resolve, reject) => {
      const stopInfo = this.#onServerInfo.add(() => {
        stopInfo();
        stopClose();
        resolve();
      });
      const stopClose = this.onClose((err) => {
        stopInfo();
        stopClose();
        reject(err ?? derpClientError('closed', 'derp client: closed before ServerInfo'));
      });
      if (this.#isClosed) reject(this.#closeError ?? derpClientError('closed', 'derp client: the server closed the connection before ServerInfo (refused?)'));
    });
  }

  #onData(chunk: Buffer): void {
    if (this.#isClosed) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered < this.#needed) return;
    const buffer = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
    let at = 0;
    this.#needed = HEADER_BYTES;
    while (buffer.length - at >= HEADER_BYTES) {
      const type = buffer[at]!;
      const length = buffer.readUInt32BE(at + 1);
      if (length > MAX_FRAME_BYTES) {
        this.#finish(derpClientError('handshake', `derp client: frame of ${length} bytes from the server, want at most ${MAX_FRAME_BYTES}`));
        return;
      }
      if (buffer.length - at - HEADER_BYTES < length) {
        this.#needed = HEADER_BYTES + length;
        break;
      }
      const payload = buffer.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length);
      at += HEADER_BYTES + length;
      this.#onFrameReceived(type, payload);
      if (this.#isClosed) return;
    }
    const rest = buffer.subarray(at);
    this.#chunks = rest.length === 0 ? [] : [rest];
    this.#buffered = rest.length;
  }

  #onFrameReceived(type: number, payload: Buffer): void {
    if (this.#serverKeyRaw === null) {
      // The first frame must be ServerKey: magic + 32-byte key, at most 1 KiB (Go's limits).
      if (type !== ClientFrameType.ServerKey || payload.length < SERVER_KEY_MAGIC.length + KEY_BYTES || payload.length > 1024 || !payload.subarray(0, 8).equals(SERVER_KEY_MAGIC)) {
        const err = derpClientError('handshake', `derp client: invalid server greeting (frame type 0x${type.toString(16)}, ${payload.length} bytes)`);
        this.#onServerKey?.(err);
        this.#finish(err);
        return;
      }
      this.#serverKeyRaw = Buffer.from(payload.subarray(8, 8 + KEY_BYTES));
      this.#onServerKey?.(null);
      this.#onServerKey = null;
      return;
    }
    this.#onFrame.emit(type, payload);
    switch (type) {
      case ClientFrameType.RecvPacket: {
        if (payload.length < KEY_BYTES) return;
        this.counters.packetsReceived++;
        this.counters.bytesReceived += payload.length - KEY_BYTES;
        this.#onPacket.emit(this.#sourceName(payload), payload.subarray(KEY_BYTES));
        return;
      }
      case ClientFrameType.KeepAlive:
        this.counters.keepAlives++;
        this.#onKeepAlive.emit();
        return;
      case ClientFrameType.PeerGone:
        if (payload.length < KEY_BYTES) return;
        this.#onPeerGone.emit({ peer: this.#sourceName(payload), reason: payload.length > KEY_BYTES ? payload[KEY_BYTES]! : 0 });
        return;
      case ClientFrameType.Ping:
        if (payload.length < 8 || !this.#canAckPings) return;
        this.counters.pingsAnswered++;
        this.sendFrame(ClientFrameType.Pong, payload.subarray(0, 8));
        return;
      case ClientFrameType.Pong: {
        if (payload.length < 8) return;
        const echo = Buffer.from(payload.subarray(0, 8));
        const waiter = this.#pendingPings.get(echo.toString('hex'));
        if (waiter !== undefined) {
          this.#pendingPings.delete(echo.toString('hex'));
          waiter(echo);
        }
        return;
      }
      case ClientFrameType.ServerInfo:
        this.#parseServerInfo(payload);
        return;
      case ClientFrameType.Health:
        this.#onHealth.emit(payload.toString('utf8'));
        return;
      default:
        return;
    }
  }

  #parseServerInfo(payload: Buffer): void {
    if (payload.length < NONCE_BYTES) {
      this.#finish(derpClientError('handshake', 'derp client: short ServerInfo frame'));
      return;
    }
    const opened = nacl.box.open(payload.subarray(NONCE_BYTES), payload.subarray(0, NONCE_BYTES), this.#serverKeyRaw!, this.#privateKey.rawBytes());
    if (opened === null) {
      this.#finish(derpClientError('handshake', 'derp client: ServerInfo box does not open with the server key'));
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(opened).toString('utf8'));
    } catch {
      this.#finish(derpClientError('handshake', 'derp client: ServerInfo is not JSON'));
      return;
    }
    const fields = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
    const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
    const info: DerpServerInfo = {
      version: num(fields['version']),
      tokenBucketBytesPerSecond: num(fields['TokenBucketBytesPerSecond']),
      tokenBucketBytesBurst: num(fields['TokenBucketBytesBurst']),
    };
    this.#serverInfo = info;
    this.#rate =
      info.tokenBucketBytesPerSecond > 0
        ? { perMs: info.tokenBucketBytesPerSecond / 1000, burst: info.tokenBucketBytesBurst, tokens: info.tokenBucketBytesBurst, at: performance.now() }
        : null;
    this.#onServerInfo.emit(info);
  }

  #sourceName(payload: Buffer): NodePublicKey {
    const id = payload.toString('latin1', 0, KEY_BYTES);
    let name = this.#sourceNames.get(id);
    if (name === undefined) {
      name = publicKeyFromBytes('node', payload.subarray(0, KEY_BYTES));
      if (this.#sourceNames.size > 4096) this.#sourceNames.clear();
      this.#sourceNames.set(id, name);
    }
    return name;
  }

  #finish(err: HeadwayError | null): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#closeError = err;
    this.#stream.destroy();
    this.#resolveClosed(err);
    this.#onClose.emit(err);
  }
}

interface OpenedTransport {
  readonly stream: Duplex;
  /** Bytes read past the HTTP response headers (the start of the DERP stream). */
  readonly rest: Buffer;
}

function openTransport(options: DerpClientOptions): Promise<OpenedTransport> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (err) {
    return Promise.reject(derpClientError('connect', `derp client: ${JSON.stringify(options.url)} is not a URL`, { cause: err }));
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/derp';
  if (url.protocol === 'ws:' || url.protocol === 'wss:') return openWebSocket(url, options);
  if (url.protocol === 'http:' || url.protocol === 'https:') return openHttpUpgrade(url, options);
  return Promise.reject(derpClientError('connect', `derp client: ${url.protocol} is not http, https, ws or wss`));
}

function openWebSocket(url: URL, options: DerpClientOptions): Promise<OpenedTransport> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['derp'], { perMessageDeflate: false, headers: { ...options.headers }, ...(options.tls ?? {}) });
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => {
      if (ws.protocol !== 'derp') {
        ws.terminate();
        reject(derpClientError('connect', `derp client: ${url.href}: server chose subprotocol ${JSON.stringify(ws.protocol)}, want "derp"`));
        return;
      }
      resolve({ stream: createWebSocketStream(ws), rest: Buffer.alloc(0) });
    });
    ws.once('unexpected-response', (_req, res) => {
      ws.terminate();
      reject(derpClientError('connect', `derp client: ${url.href}: HTTP ${res.statusCode ?? '?'}, want 101`));
    });
    ws.once('error', (err) => reject(derpClientError('connect', `derp client: ${url.href}: ${err.message}`, { cause: err })));
  });
}

function openHttpUpgrade(url: URL, options: DerpClientOptions): Promise<OpenedTransport> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port !== '' ? Number(url.port) : secure ? 443 : 80;
    const socket: Duplex = secure
      ? tlsConnect({ host, port, servername: host, ALPNProtocols: ['http/1.1'], ...(options.tls ?? {}) })
      : netConnect({ host, port, noDelay: true });
    let received = Buffer.alloc(0);
    const fail = (err: HeadwayError): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error): void => fail(derpClientError('connect', `derp client: ${url.host}: ${err.message}`, { cause: err }));
    const onEnd = (): void => fail(derpClientError('connect', `derp client: ${url.host}: connection closed during the upgrade`));
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        if (received.length > MAX_HTTP_HEADER_BYTES) fail(derpClientError('connect', `derp client: ${url.host}: response headers too long`));
        return;
      }
      const statusLine = received.toString('latin1', 0, received.indexOf('\r\n'));
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
      if (status !== '101') {
        fail(derpClientError('connect', `derp client: ${url.host}${url.pathname}: HTTP ${status ?? '?'} (${JSON.stringify(statusLine.slice(0, 60))}), want 101`));
        return;
      }
      cleanup();
      socket.pause();
      resolve({ stream: socket, rest: received.subarray(end + 4) });
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('end', onEnd);
    const headers: Record<string, string> = {
      Host: url.host,
      Upgrade: 'DERP',
      Connection: 'Upgrade',
      ...options.headers,
    };
    const request =
      `GET ${url.pathname}${url.search} HTTP/1.1\r\n` +
      Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('') +
      '\r\n';
    socket.write(request);
  });
}

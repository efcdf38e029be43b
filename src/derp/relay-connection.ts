/**
 * @module derp/relay-connection
 * One client connection of the relay: handshake, reading frames, its bounded send queues and
 * keep-alives. Routing between connections belongs to `RelayHost` (the DerpServer).
 *
 * Node has no goroutines, so the Go server's reader/sender pair becomes: a `data` handler that
 * parses and routes synchronously, writing each packet straight into the receiver's socket
 * (corked for the length of one incoming chunk, so a chunk becomes one writev per receiver). A
 * slow receiver never blocks a sender: when its socket buffer passes `maxWriteBufferBytes` we
 * stop writing to it, its bounded queues fill, and the oldest packet is dropped
 * (`queue_head`), as Tailscale does; the 'drain' event writes the queues out.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Curve25519PrivateKey, NodePublicKey } from '../key/index.js';
import { publicKeyFromBytes, shortKey } from '../key/index.js';
import {
  FRAME_HEADER_BYTES,
  FrameReader,
  FrameRejectedError,
  FrameType,
  KEY_BYTES,
  MAX_CLIENT_INFO_BYTES,
  MAX_PACKET_BYTES,
  MAX_PING_BYTES,
  NONCE_BYTES,
  SERVER_KEY_MAGIC,
  encodeFrame,
  type FrameDecision,
} from './frame.js';
import type { DerpCloseReason, DerpStats } from './metrics.js';
import { boxSharedKey, openWithSharedKey, sealWithSharedKey } from './nacl-box.js';
import { TokenBucket } from './token-bucket.js';

/** What a client told us about itself in ClientInfo (`derp.ClientInfo`). */
export interface DerpClientInfo {
  readonly version: number;
  readonly canAckPings: boolean;
  readonly isProber: boolean;
  readonly appName: string;
  /** Another relay of the region presenting the mesh key (64 hex); '' for clients. */
  readonly meshKey: string;
}

/** Settings a connection reads; resolved from DerpServerOptions by the server. */
export interface RelayConnectionSettings {
  readonly keepAliveMs: number;
  readonly keepAliveJitterMs: number;
  readonly handshakeTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly sendQueueDepth: number;
  readonly maxWriteBufferBytes: number;
  readonly rateLimit: { readonly bytesPerSecond: number; readonly burstBytes: number } | null;
}

/** What a connection needs from the relay that owns it. */
export interface RelayHost {
  readonly stats: DerpStats;
  readonly settings: RelayConnectionSettings;
  readonly privateKey: Curve25519PrivateKey;
  readonly logger: Logger;
  /** `nodekey` admission; undefined = everyone. */
  admit(nodeKey: NodePublicKey, remoteAddress: string): boolean | Promise<boolean>;
  register(conn: RelayConnection): void;
  unregister(conn: RelayConnection): void;
  forget(conn: RelayConnection): void;
  noteActivity(conn: RelayConnection): void;
  route(sender: RelayConnection, sendPacketFrame: Buffer): void;
  /** True when `meshKey` is this region's mesh key (high availability; docs/ha.md). */
  isMeshKey(meshKey: string): boolean;
  /** A mesh peer asked to hear of every key connecting and leaving here (WatchConns). */
  watchConns(conn: RelayConnection): void;
  /** A mesh peer forwarded a packet for a client connected here (ForwardPacket). */
  forwarded(conn: RelayConnection, forwardPacketFrame: Buffer): void;
  /** Runs `work` with writes to receivers corked, then uncorks them: one writev per receiver. */
  batch(work: () => void): void;
  /** Inside batch(): remembers a receiver to uncork when the batch ends. */
  corked(conn: RelayConnection): void;
  readonly batching: boolean;
}

type ConnState = 'handshake' | 'admitting' | 'open' | 'closed';

/**
 * A frame the Go server's clamp uses: rate limiting charges at most one maximal SendPacket per
 * frame, so one oversized header cannot stall a client for minutes before we close it.
 */
const MAX_RATE_CHARGE = MAX_PACKET_BYTES + KEY_BYTES;

const KEEP_ALIVE_FRAME = encodeFrame(FrameType.KeepAlive);

export class RelayConnection {
  readonly remoteAddress: string;
  readonly idealNode: string | undefined;
  /** Raw public key; set once ClientInfo opens. */
  keyRaw: Buffer = Buffer.alloc(0);
  /** The key as a latin1 string: the relay's map key (cheap to make from wire bytes). */
  keyId = '';
  nodeKey: NodePublicKey | null = null;
  info: DerpClientInfo | null = null;
  /** Another relay of the region (it presented the mesh key): may watch and forward. */
  isMesh = false;
  preferred = false;
  /** Keys this connection has received packets from (PeerGone bookkeeping, derp.md §4.4). */
  readonly sawSources = new Set<string>();
  /** Per-sender limit on PeerGone(NotHere) replies: 1/s, burst 3, as Tailscale. */
  readonly peerGoneLimiter = new TokenBucket(1, 3);
  /** The host's per-key record this connection belongs to; set by register(). */
  keySet: { conns: RelayConnection[] } | null = null;

  readonly #host: RelayHost;
  readonly #stream: Duplex;
  readonly #reader: FrameReader;
  #state: ConnState = 'handshake';
  #sharedKey: Uint8Array | null = null;
  readonly #dataQueue: Buffer[] = [];
  readonly #discoQueue: Buffer[] = [];
  readonly #controlQueue: Buffer[] = [];
  #pongQueued = false;
  #waitingDrain = false;
  #corked = false;
  #handshakeTimer: NodeJS.Timeout | null = null;
  #keepAliveTimer: NodeJS.Timeout | null = null;
  #writeTimer: NodeJS.Timeout | null = null;
  #rateTimer: NodeJS.Timeout | null = null;
  readonly #rate: TokenBucket | null;

  constructor(host: RelayHost, stream: Duplex, options: { remoteAddress: string; idealNode?: string; preamble?: Buffer; head?: Buffer }) {
    this.#host = host;
    this.#stream = stream;
    this.remoteAddress = options.remoteAddress;
    this.idealNode = options.idealNode;
    const limit = host.settings.rateLimit;
    this.#rate = limit === null ? null : new TokenBucket(limit.bytesPerSecond, limit.burstBytes);
    this.#reader = new FrameReader((type, length) => this.#decide(type, length));

    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('error', this.#onError);
    stream.on('close', this.#onClose);
    // An upgraded HTTP socket may have been left paused; we read from here on.
    stream.resume();

    const serverKey = encodeFrame(FrameType.ServerKey, Buffer.concat([SERVER_KEY_MAGIC, host.privateKey.publicBytes]));
    stream.write(options.preamble === undefined ? serverKey : Buffer.concat([options.preamble, serverKey]));
    if (host.settings.handshakeTimeoutMs > 0) {
      this.#handshakeTimer = setTimeout(() => this.close('handshake_timeout'), host.settings.handshakeTimeoutMs);
      this.#handshakeTimer.unref();
    }
    if (options.head !== undefined && options.head.length > 0) this.#onData(options.head);
  }

  get state(): ConnState {
    return this.#state;
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  // --- reading ------------------------------------------------------------------------------

  readonly #onData = (chunk: Buffer): void => {
    if (this.#state === 'closed') return;
    this.#reader.push(chunk);
    this.#host.batch(this.#pump);
  };

  readonly #onEnd = (): void => {
    if (this.#state === 'closed') return;
    if (this.#state !== 'open') this.close('eof_in_handshake');
    else if (this.#reader.midFrame) this.close('truncated_frame');
    else this.close('eof');
  };

  readonly #onError = (err: Error): void => {
    this.close('socket_error', err.message);
  };

  readonly #onClose = (): void => {
    // Destroyed without an 'end' (reset, or destroyed by someone else).
    if (this.#state !== 'closed') this.close(this.#state === 'open' ? 'eof' : 'eof_in_handshake');
  };

  #decide(type: number, length: number): FrameDecision {
    if (this.#state === 'handshake') {
      if (type !== FrameType.ClientInfo) {
        return { reject: 'bad_first_frame', detail: `first frame has type 0x${type.toString(16)}, want ClientInfo (0x02)` };
      }
      if (length < KEY_BYTES + NONCE_BYTES) return { reject: 'bad_client_info', detail: `ClientInfo of ${length} bytes, want at least 56` };
      if (length > MAX_CLIENT_INFO_BYTES) return { reject: 'bad_client_info', detail: `ClientInfo of ${length} bytes, want at most 256 KiB` };
      return 'read';
    }
    if (this.#rate !== null) this.#rate.take(Math.min(length, MAX_RATE_CHARGE));
    switch (type) {
      case FrameType.SendPacket:
        if (length < KEY_BYTES) return { reject: 'bad_frame', detail: `SendPacket of ${length} bytes, want at least 32` };
        if (length - KEY_BYTES > MAX_PACKET_BYTES) {
          return { reject: 'frame_too_large', detail: `SendPacket packet of ${length - KEY_BYTES} bytes, want at most ${MAX_PACKET_BYTES}` };
        }
        return 'read';
      case FrameType.NotePreferred:
        if (length !== 1) return { reject: 'bad_frame', detail: `NotePreferred of ${length} bytes, want 1` };
        return 'read';
      case FrameType.Ping:
        if (length < 8 || length > MAX_PING_BYTES) return { reject: 'bad_frame', detail: `Ping of ${length} bytes, want 8 to ${MAX_PING_BYTES}` };
        return 'read';
      case FrameType.ForwardPacket:
        if (!this.isMesh) return { reject: 'mesh_frame', detail: `mesh frame 0x${type.toString(16)} from a client without the mesh key` };
        if (length < 2 * KEY_BYTES || length - 2 * KEY_BYTES > MAX_PACKET_BYTES) return { reject: 'bad_frame', detail: `ForwardPacket of ${length} bytes` };
        return 'read';
      case FrameType.WatchConns:
        if (!this.isMesh) return { reject: 'mesh_frame', detail: `mesh frame 0x${type.toString(16)} from a client without the mesh key` };
        return 'read';
      case FrameType.ClosePeer:
        return { reject: 'mesh_frame', detail: `mesh frame 0x${type.toString(16)} from a client without the mesh key` };
      default:
        // Unknown and server-to-client types: skipped unread, for forward compatibility.
        this.#host.stats.framesSkipped++;
        return 'skip';
    }
  }

  readonly #pump = (): void => {
    while (this.#state === 'handshake' || this.#state === 'open') {
      if (this.#rateTimer !== null) return;
      let frame: Buffer | null;
      try {
        frame = this.#reader.next();
      } catch (err) {
        if (err instanceof FrameRejectedError) {
          this.close(err.reason as DerpCloseReason, err.message);
          return;
        }
        throw err;
      }
      if (frame !== null) {
        if (this.#state === 'handshake') this.#onClientInfo(frame);
        else this.#onFrame(frame);
      }
      if (this.#rate !== null && this.#state === 'open') {
        const waitMs = this.#rate.waitMs();
        if (waitMs > 0) {
          this.#host.stats.rateLimitWaits++;
          this.#stream.pause();
          this.#rateTimer = setTimeout(() => {
            this.#rateTimer = null;
            if (this.#state !== 'open') return;
            this.#stream.resume();
            this.#host.batch(this.#pump);
          }, waitMs);
          return;
        }
      }
      if (frame === null) return;
    }
  };

  #onClientInfo(frame: Buffer): void {
    const keyRaw = Buffer.from(frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + KEY_BYTES));
    let sharedKey: Uint8Array;
    try {
      sharedKey = boxSharedKey(this.#host.privateKey, keyRaw);
    } catch {
      this.close('bad_client_info', 'ClientInfo key is a low-order point');
      return;
    }
    const message = openWithSharedKey(sharedKey, frame.subarray(FRAME_HEADER_BYTES + KEY_BYTES));
    if (message === null) {
      this.close('bad_client_info', 'ClientInfo box does not open with the client key');
      return;
    }
    const info = parseClientInfo(message);
    if (info === null) {
      this.close('bad_client_info', 'ClientInfo is not a JSON object');
      return;
    }
    this.keyRaw = keyRaw;
    this.keyId = keyRaw.toString('latin1');
    this.nodeKey = publicKeyFromBytes('node', keyRaw);
    this.info = info;
    this.#sharedKey = sharedKey;
    this.#state = 'admitting';
    // A relay of the same region: admitted by the mesh key, not by node-key admission.
    if (info.meshKey !== '' && this.#host.isMeshKey(info.meshKey)) {
      this.isMesh = true;
      this.#admitted(true);
      return;
    }

    let verdict: boolean | Promise<boolean>;
    try {
      verdict = this.#host.admit(this.nodeKey, this.remoteAddress);
    } catch (err) {
      this.#admitFailed(err);
      return;
    }
    if (typeof verdict === 'boolean') {
      this.#admitted(verdict);
      return;
    }
    // Hold further frames until the answer comes: the client may send packets right after
    // ClientInfo, and they must not be read (nor buffered without bound) before admission.
    this.#stream.pause();
    verdict.then(
      (ok) => {
        if (this.#state !== 'admitting') return;
        this.#stream.resume();
        this.#admitted(ok === true);
        this.#host.batch(this.#pump);
      },
      (err: unknown) => {
        if (this.#state === 'admitting') this.#admitFailed(err);
      },
    );
  }

  #admitFailed(err: unknown): void {
    this.#host.logger.warn({ err, node: this.nodeKey === null ? undefined : shortKey(this.nodeKey) }, 'derp admission check failed; refusing client');
    this.close('admit_error');
  }

  #admitted(ok: boolean): void {
    if (!ok) {
      this.close('refused');
      return;
    }
    if (this.#handshakeTimer !== null) {
      clearTimeout(this.#handshakeTimer);
      this.#handshakeTimer = null;
    }
    this.#state = 'open';
    this.#host.stats.clientsAdmitted++;
    this.#host.register(this);

    const limit = this.#host.settings.rateLimit;
    const serverInfo: Record<string, number> = { version: 2 };
    if (limit !== null) {
      serverInfo['TokenBucketBytesPerSecond'] = limit.bytesPerSecond;
      serverInfo['TokenBucketBytesBurst'] = limit.burstBytes;
    }
    const sealed = sealWithSharedKey(this.#sharedKey!, Buffer.from(JSON.stringify(serverInfo)));
    this.enqueueControl(encodeFrame(FrameType.ServerInfo, sealed));

    const { keepAliveMs, keepAliveJitterMs } = this.#host.settings;
    if (keepAliveMs > 0) {
      const interval = keepAliveMs + Math.floor(Math.random() * (keepAliveJitterMs + 1));
      this.#keepAliveTimer = setInterval(() => {
        this.#host.stats.keepAlivesSent++;
        this.enqueueControl(KEEP_ALIVE_FRAME);
      }, interval);
      this.#keepAliveTimer.unref();
    }
    this.#host.logger.debug({ node: shortKey(this.nodeKey!), remote: this.remoteAddress }, 'derp client connected');
  }

  #onFrame(frame: Buffer): void {
    const stats = this.#host.stats;
    if (this.keySet !== null && this.keySet.conns.length > 1) this.#host.noteActivity(this);
    switch (frame[0]) {
      case FrameType.SendPacket:
        stats.packetsReceived++;
        stats.bytesReceived += frame.length - FRAME_HEADER_BYTES - KEY_BYTES;
        this.#host.route(this, frame);
        return;
      case FrameType.NotePreferred: {
        const preferred = frame[FRAME_HEADER_BYTES] !== 0;
        if (preferred !== this.preferred) {
          this.preferred = preferred;
          stats.homeClients += preferred ? 1 : -1;
        }
        return;
      }
      case FrameType.WatchConns:
        this.#host.watchConns(this);
        return;
      case FrameType.ForwardPacket:
        this.#host.forwarded(this, frame);
        return;
      case FrameType.Ping:
        stats.pingsReceived++;
        // One pong pending at most: a client that pings faster than we write gets fewer pongs.
        if (this.#pongQueued) return;
        this.#pongQueued = true;
        this.enqueueControl(encodeFrame(FrameType.Pong, frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 8)));
        return;
      default:
        return;
    }
  }

  // --- writing ------------------------------------------------------------------------------

  /**
   * Delivers a RecvPacket frame: straight into the socket while its buffer is below
   * `maxWriteBufferBytes` (libuv then writes it to the kernel at once), else into a bounded
   * queue that drops its oldest packet when full. Packets wait only while this receiver is
   * backed up, never for the end of an event-loop turn: libuv may read megabytes from one
   * sender per turn, and a per-turn batch would overflow a 32-packet queue on its own.
   */
  enqueuePacket(frame: Buffer, disco: boolean): void {
    if (this.#state !== 'open') {
      this.#host.stats.dropped.gone_disconnected++;
      return;
    }
    if (!this.#waitingDrain && this.#nothingQueued()) {
      this.#write(frame);
      return;
    }
    const queue = disco ? this.#discoQueue : this.#dataQueue;
    if (queue.length >= this.#host.settings.sendQueueDepth) {
      queue.shift();
      this.#host.stats.dropped.queue_head++;
    }
    queue.push(frame);
  }

  /** Sends a small server frame (ServerInfo, Pong, KeepAlive, PeerGone); queued ahead of packets. */
  enqueueControl(frame: Buffer): void {
    if (this.#state === 'closed') return;
    if (!this.#waitingDrain && this.#nothingQueued()) {
      this.#write(frame);
      return;
    }
    this.#controlQueue.push(frame);
  }

  #nothingQueued(): boolean {
    return this.#controlQueue.length === 0 && this.#discoQueue.length === 0 && this.#dataQueue.length === 0;
  }

  #write(frame: Buffer): void {
    const stats = this.#host.stats;
    switch (frame[0]) {
      case FrameType.RecvPacket:
        stats.packetsSent++;
        stats.bytesSent += frame.length - FRAME_HEADER_BYTES - KEY_BYTES;
        break;
      case FrameType.Pong:
        this.#pongQueued = false;
        stats.pongsSent++;
        break;
      default:
        break;
    }
    const stream = this.#stream;
    if (this.#host.batching && !this.#corked) {
      stream.cork();
      this.#corked = true;
      this.#host.corked(this);
    }
    stream.write(frame);
    // writableNeedDrain: 'drain' is sure to come (a limit below the stream's high-water mark
    // would otherwise wait for an event that never fires).
    if (stream.writableNeedDrain && stream.writableLength >= this.#host.settings.maxWriteBufferBytes) {
      this.#waitingDrain = true;
      stream.once('drain', this.#onDrain);
      const timeoutMs = this.#host.settings.writeTimeoutMs;
      if (timeoutMs > 0) {
        this.#writeTimer = setTimeout(() => this.close('write_timeout'), timeoutMs);
        this.#writeTimer.unref();
      }
    }
  }

  /** Ends a batch: hands everything written since cork() to the socket in one writev. */
  uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#stream.uncork();
  }

  /** The socket drained: write what queued up meanwhile, control frames first, then disco. */
  readonly #onDrain = (): void => {
    this.#waitingDrain = false;
    if (this.#writeTimer !== null) {
      clearTimeout(this.#writeTimer);
      this.#writeTimer = null;
    }
    if (this.#state === 'closed') return;
    const stream = this.#stream;
    stream.cork();
    while (!this.#waitingDrain) {
      const frame = this.#controlQueue.shift() ?? this.#discoQueue.shift() ?? this.#dataQueue.shift();
      if (frame === undefined) break;
      this.#write(frame);
    }
    stream.uncork();
  };

  // --- closing ------------------------------------------------------------------------------

  close(reason: DerpCloseReason, detail?: string): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    const stats = this.#host.stats;
    stats.closed[reason]++;
    for (const timer of [this.#handshakeTimer, this.#writeTimer, this.#rateTimer]) if (timer !== null) clearTimeout(timer);
    if (this.#keepAliveTimer !== null) clearInterval(this.#keepAliveTimer);
    this.#handshakeTimer = this.#writeTimer = this.#rateTimer = this.#keepAliveTimer = null;
    stats.dropped.gone_disconnected += this.#dataQueue.length + this.#discoQueue.length;
    this.#dataQueue.length = 0;
    this.#discoQueue.length = 0;
    this.#controlQueue.length = 0;
    if (this.preferred) {
      stats.homeClients--;
      this.preferred = false;
    }
    if (wasOpen) this.#host.unregister(this);
    this.#host.forget(this);
    this.#stream.off('data', this.#onData);
    this.#stream.destroy();
    this.#host.logger.debug(
      { node: this.nodeKey === null ? undefined : shortKey(this.nodeKey), remote: this.remoteAddress, reason, detail },
      'derp connection closed',
    );
  }
}

function parseClientInfo(message: Uint8Array): DerpClientInfo | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(message).toString('utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const fields = parsed as Record<string, unknown>;
  // Go's encoding/json matches field names case-insensitively; so do we.
  const get = (name: string): unknown => {
    const lower = name.toLowerCase();
    for (const [k, v] of Object.entries(fields)) if (k.toLowerCase() === lower) return v;
    return undefined;
  };
  const version = get('version');
  const canAckPings = get('CanAckPings');
  const isProber = get('IsProber');
  const appName = get('AppName');
  const meshKey = get('meshKey');
  return {
    meshKey: typeof meshKey === 'string' ? meshKey.slice(0, 128) : '',
    version: typeof version === 'number' ? version : 0,
    canAckPings: canAckPings === true,
    isProber: isProber === true,
    appName: typeof appName === 'string' ? appName.slice(0, 256) : '',
  };
}

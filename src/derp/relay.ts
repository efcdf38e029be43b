/**
 * @module derp/relay
 * The DERP relay: who is connected under which node key, forwarding SendPacket to the
 * destination's connection as RecvPacket, PeerGone bookkeeping, duplicate connections of one
 * key. Transport-agnostic: `accept()` takes any Duplex (a hijacked HTTP socket, a WebSocket
 * stream). Behaviour follows tailscale/tailscale derp/derpserver/derpserver.go @de9ec7ee.
 *
 * Not implemented (a single embedded node needs none of it): mesh (WatchConns, PeerPresent,
 * ForwardPacket, ClosePeer; a client sending those is closed, as Go closes a client without the
 * mesh key), the meta certificate for fast start, verify-client URLs, and the "disable
 * fighters" duplicate policy.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Curve25519PrivateKey, NodePublicKey } from '../key/index.js';
import { publicKeyBytes } from '../key/index.js';
import { silentLogger } from '../log/index.js';
import { derpError } from './errors.js';
import { FRAME_HEADER_BYTES, FrameType, KEY_BYTES, MAX_PACKET_BYTES, PeerGoneReason, encodeFrame, looksLikeDisco } from './frame.js';
import { newDerpStats, registerDerpMetrics, type DerpStats } from './metrics.js';
import { RelayConnection, type RelayConnectionSettings, type RelayHost } from './relay-connection.js';

/**
 * Decides whether a node key may use the relay: the state layer answers "is this the node key
 * of a node of some tailnet". A thrown error or rejected promise refuses the client.
 */
export type DerpAdmitFn = (nodeKey: NodePublicKey, meta: { readonly remoteAddress: string }) => boolean | Promise<boolean>;

export interface DerpRateLimit {
  /** Sustained bytes per second a client may send (frame payload bytes, as Go counts). */
  readonly bytesPerSecond: number;
  /** Bucket depth in bytes; raised to one maximal SendPacket (65 568) if lower. Default: bytesPerSecond. */
  readonly burstBytes?: number;
}

export interface DerpServerOptions {
  /** The relay's Curve25519 key (loaded from derp.server.private_key_path by the caller). */
  readonly privateKey: Curve25519PrivateKey;
  /** Admission (derp.server.verify_clients). Absent: every client is admitted. */
  readonly admit?: DerpAdmitFn;
  readonly logger?: Logger;
  /** prom-client registry for `headway_derp_*` metrics. */
  readonly metrics?: Registry;
  /** KeepAlive interval. Default 60 000 (Tailscale); 0 disables. */
  readonly keepAliveMs?: number;
  /** Random extra per connection, 0..this. Default 5 000 (Tailscale). */
  readonly keepAliveJitterMs?: number;
  /** From accept to admission. Default 10 000 (Tailscale); 0 disables. */
  readonly handshakeTimeoutMs?: number;
  /** How long a client may leave our writes undrained before it is closed. Default 2 000 (Tailscale); 0 disables. */
  readonly writeTimeoutMs?: number;
  /** Packets queued per client and per queue (data, disco). Default 32 (Tailscale). */
  readonly sendQueueDepth?: number;
  /** Bytes we let sit in a client's socket buffer before queueing. Default 64 KiB. */
  readonly maxWriteBufferBytes?: number;
  /** Per-client receive rate limit; advertised to clients in ServerInfo. Absent: none. */
  readonly rateLimit?: DerpRateLimit;
  /**
   * The region's mesh key (64 hex): a connection presenting it is another relay of the region
   * and may watch connections and forward packets (high availability; docs/ha.md). Absent: no mesh.
   */
  readonly meshKey?: string;
}

/**
 * Sends a packet for a key not connected here to the mesh peer where it is connected; false when
 * no peer has it. `packet` is only valid during the call.
 */
export type DerpMeshForwarder = (srcKeyRaw: Buffer, dstKeyId: string, packet: Buffer) => boolean;

export interface DerpAcceptOptions {
  /** The client's address, for logs and the admission callback. */
  readonly remoteAddress: string;
  /** Bytes already read past the HTTP request (Node's `head`). */
  readonly head?: Buffer;
  /** Bytes to write before the ServerKey frame (the 101 response). */
  readonly preamble?: Buffer;
  /** `Ideal-Node` request header, if any (stats only). */
  readonly idealNode?: string;
}

/** The connections of one node key; the last element is the active one ("last writer is active"). */
interface KeySet {
  conns: RelayConnection[];
}

/** Smallest bucket that lets one maximal SendPacket frame through (Go: minRateLimitTokenBucketSize). */
const MIN_BURST_BYTES = MAX_PACKET_BYTES + KEY_BYTES;

/** The relay's state and the hooks its connections call; DerpServer is its public face. */
class RelayCore implements RelayHost {
  readonly privateKey: Curve25519PrivateKey;
  readonly publicKey: NodePublicKey;
  readonly logger: Logger;
  readonly stats: DerpStats = newDerpStats();
  readonly settings: RelayConnectionSettings;
  readonly #admit: DerpAdmitFn | undefined;
  readonly #keys = new Map<string, KeySet>();
  readonly #all = new Set<RelayConnection>();
  /** Source key id -> connections that received packets from it (to tell them it is gone). */
  readonly #watchers = new Map<string, Set<RelayConnection>>();
  readonly #meshKey: Buffer | null;
  /** Mesh peers that sent WatchConns: told of every client key arriving and leaving. */
  readonly #meshWatchers = new Set<RelayConnection>();
  meshForwarder: DerpMeshForwarder | null = null;
  #closed = false;
  #batchDepth = 0;
  #corked: RelayConnection[] = [];

  constructor(options: DerpServerOptions) {
    this.privateKey = options.privateKey;
    this.publicKey = options.privateKey.publicKey('node');
    this.logger = (options.logger ?? silentLogger()).child({ part: 'derp' });
    this.#admit = options.admit;
    this.settings = resolveSettings(options);
    this.#meshKey = options.meshKey === undefined || options.meshKey === '' ? null : Buffer.from(options.meshKey, 'utf8');
    if (options.metrics !== undefined) registerDerpMetrics(options.metrics, this.stats);
  }

  /** Runs the DERP protocol on `stream`, which the relay now owns (it destroys it when done). */
  accept(stream: Duplex, options: DerpAcceptOptions): void {
    if (this.#closed) {
      stream.destroy();
      return;
    }
    this.stats.connectionsAccepted++;
    const conn = new RelayConnection(this, stream, options);
    if (conn.state !== 'closed') this.#all.add(conn);
  }

  /** True when some connection of `nodeKey` is admitted and open. */
  isConnected(nodeKey: NodePublicKey): boolean {
    return this.#keys.has(publicKeyBytes(nodeKey).toString('latin1'));
  }

  /** Closes every connection of `nodeKey` (e.g. its node was deleted). Returns how many. */
  disconnect(nodeKey: NodePublicKey): number {
    const set = this.#keys.get(publicKeyBytes(nodeKey).toString('latin1'));
    if (set === undefined) return 0;
    const conns = [...set.conns];
    for (const conn of conns) conn.close('disconnected_by_server');
    return conns.length;
  }

  /** Closes every connection and refuses new ones. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of [...this.#all]) conn.close('server_closed');
  }

  // --- RelayHost -----------------------------------------------------------------------------

  admit(nodeKey: NodePublicKey, remoteAddress: string): boolean | Promise<boolean> {
    if (this.#admit === undefined) return true;
    return this.#admit(nodeKey, { remoteAddress });
  }

  register(conn: RelayConnection): void {
    let set = this.#keys.get(conn.keyId);
    if (set === undefined) {
      set = { conns: [] };
      this.#keys.set(conn.keyId, set);
      this.stats.currentKeys++;
      if (!conn.isMesh && this.#meshWatchers.size > 0) {
        const present = encodeFrame(FrameType.PeerPresent, conn.keyRaw);
        for (const watcher of this.#meshWatchers) watcher.enqueueControl(present);
      }
    }
    // The newest connection of a key becomes the active one; older ones stay open and are
    // read from, and become active again if they send something (Tailscale's lastWriterIsActive).
    set.conns.push(conn);
    conn.keySet = set;
    this.stats.currentClients++;
  }

  unregister(conn: RelayConnection): void {
    this.stats.currentClients--;
    this.#meshWatchers.delete(conn);
    const set = this.#keys.get(conn.keyId);
    if (set !== undefined) {
      const index = set.conns.indexOf(conn);
      if (index >= 0) set.conns.splice(index, 1);
      if (set.conns.length === 0) {
        this.#keys.delete(conn.keyId);
        this.stats.currentKeys--;
        this.#notePeerGone(conn);
        if (!conn.isMesh && this.#meshWatchers.size > 0) {
          const gone = peerGoneFrame(conn.keyRaw, PeerGoneReason.Disconnected);
          for (const watcher of this.#meshWatchers) watcher.enqueueControl(gone);
        }
      }
    }
    conn.keySet = null;
    for (const source of conn.sawSources) {
      const watchers = this.#watchers.get(source);
      if (watchers === undefined) continue;
      watchers.delete(conn);
      if (watchers.size === 0) this.#watchers.delete(source);
    }
    conn.sawSources.clear();
  }

  forget(conn: RelayConnection): void {
    this.#all.delete(conn);
  }

  noteActivity(conn: RelayConnection): void {
    const set = conn.keySet;
    if (set === null || set.conns[set.conns.length - 1] === conn) return;
    const index = set.conns.indexOf(conn);
    if (index >= 0) set.conns.splice(index, 1);
    set.conns.push(conn);
  }

  route(sender: RelayConnection, frame: Buffer): void {
    const dstId = frame.toString('latin1', FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + KEY_BYTES);
    const set = this.#keys.get(dstId);
    const disco = looksLikeDisco(frame, FRAME_HEADER_BYTES + KEY_BYTES);
    if (set === undefined) {
      // Connected to another relay of the region: hand it over the mesh.
      if (this.meshForwarder !== null && this.meshForwarder(sender.keyRaw, dstId, frame.subarray(FRAME_HEADER_BYTES + KEY_BYTES))) return;
      this.stats.dropped.unknown_dest++;
      // Tell the sender only for disco packets, and at most ~1/s: a disco ping to an absent
      // peer is how a client learns that its route hint through us is stale.
      if (disco && sender.peerGoneLimiter.tryTake(1)) {
        this.stats.peerGoneNotHereSent++;
        sender.enqueueControl(peerGoneFrame(frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + KEY_BYTES), PeerGoneReason.NotHere));
      }
      return;
    }
    const dst = set.conns[set.conns.length - 1]!;
    // SendPacket and RecvPacket payloads have the same length (32-byte key + packet), so the
    // frame is rewritten in place: new type, source key over the destination key.
    frame[0] = FrameType.RecvPacket;
    sender.keyRaw.copy(frame, FRAME_HEADER_BYTES);
    if (!dst.sawSources.has(sender.keyId)) {
      dst.sawSources.add(sender.keyId);
      let watchers = this.#watchers.get(sender.keyId);
      if (watchers === undefined) {
        watchers = new Set();
        this.#watchers.set(sender.keyId, watchers);
      }
      watchers.add(dst);
    }
    dst.enqueuePacket(frame, disco);
  }

  isMeshKey(meshKey: string): boolean {
    if (this.#meshKey === null) return false;
    const presented = Buffer.from(meshKey, 'utf8');
    return presented.length === this.#meshKey.length && timingSafeEqual(presented, this.#meshKey);
  }

  watchConns(conn: RelayConnection): void {
    if (this.#meshWatchers.has(conn)) return;
    this.#meshWatchers.add(conn);
    for (const set of this.#keys.values()) {
      const first = set.conns[0];
      if (first === undefined || first.isMesh) continue;
      conn.enqueueControl(encodeFrame(FrameType.PeerPresent, first.keyRaw));
    }
  }

  forwarded(_conn: RelayConnection, frame: Buffer): void {
    const srcStart = FRAME_HEADER_BYTES;
    const dstStart = srcStart + KEY_BYTES;
    const set = this.#keys.get(frame.toString('latin1', dstStart, dstStart + KEY_BYTES));
    if (set === undefined) {
      this.stats.dropped.unknown_dest++;
      return;
    }
    const packet = frame.subarray(dstStart + KEY_BYTES);
    const out = encodeFrame(FrameType.RecvPacket, Buffer.concat([frame.subarray(srcStart, dstStart), packet]));
    set.conns[set.conns.length - 1]!.enqueuePacket(out, looksLikeDisco(out, FRAME_HEADER_BYTES + KEY_BYTES));
  }

  get batching(): boolean {
    return this.#batchDepth > 0;
  }

  batch(work: () => void): void {
    this.#batchDepth++;
    try {
      work();
    } finally {
      if (--this.#batchDepth === 0 && this.#corked.length > 0) {
        const corked = this.#corked;
        this.#corked = [];
        for (const conn of corked) conn.uncork();
      }
    }
  }

  corked(conn: RelayConnection): void {
    this.#corked.push(conn);
  }

  #notePeerGone(conn: RelayConnection): void {
    const watchers = this.#watchers.get(conn.keyId);
    if (watchers === undefined) return;
    this.#watchers.delete(conn.keyId);
    const frame = peerGoneFrame(conn.keyRaw, PeerGoneReason.Disconnected);
    for (const watcher of watchers) {
      if (!watcher.isOpen) continue;
      this.stats.peerGoneDisconnectedSent++;
      // The frame is shared: written as-is, never mutated.
      watcher.enqueueControl(frame);
    }
  }
}

/**
 * The embedded DERP relay. Hand it transports with `accept()` (attachDerp does that for HTTP
 * upgrades); it owns them from then on.
 */
export class DerpServer {
  readonly #core: RelayCore;

  constructor(options: DerpServerOptions) {
    this.#core = new RelayCore(options);
  }

  /** The relay's DERP identity (sent in ServerKey and the 101's Derp-Public-Key). */
  get publicKey(): NodePublicKey {
    return this.#core.publicKey;
  }

  /** Live counters (the same numbers the prom-client metrics export). */
  get stats(): Readonly<DerpStats> {
    return this.#core.stats;
  }

  /** Runs the DERP protocol on `stream`, which the relay now owns (it destroys it when done). */
  accept(stream: Duplex, options: DerpAcceptOptions): void {
    this.#core.accept(stream, options);
  }

  /** True when some connection of `nodeKey` is admitted and open. */
  isConnected(nodeKey: NodePublicKey): boolean {
    return this.#core.isConnected(nodeKey);
  }

  /** Admitted connections now (several may share a key). */
  get clientCount(): number {
    return this.#core.stats.currentClients;
  }

  /** Closes every connection of `nodeKey` (e.g. its node was deleted). Returns how many. */
  disconnect(nodeKey: NodePublicKey): number {
    return this.#core.disconnect(nodeKey);
  }

  /** Closes every connection and refuses new ones. */
  close(): void {
    this.#core.close();
  }

  /** Where packets for keys connected to other relays of the region go (high availability). */
  setMeshForwarder(forwarder: DerpMeshForwarder | null): void {
    this.#core.meshForwarder = forwarder;
  }
}

function peerGoneFrame(keyRaw: Uint8Array, reason: number): Buffer {
  const payload = Buffer.allocUnsafe(KEY_BYTES + 1);
  payload.set(keyRaw, 0);
  payload[KEY_BYTES] = reason;
  return encodeFrame(FrameType.PeerGone, payload);
}

function resolveSettings(options: DerpServerOptions): RelayConnectionSettings {
  const nonNegative = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isFinite(v) || v < 0) throw derpError('badOption', `derp server: ${name}: ${v} is not a non-negative number of milliseconds or bytes`);
    return v;
  };
  const sendQueueDepth = options.sendQueueDepth ?? 32;
  if (!Number.isInteger(sendQueueDepth) || sendQueueDepth < 1) {
    throw derpError('badOption', `derp server: sendQueueDepth: ${sendQueueDepth} is not a positive integer`);
  }
  let rateLimit: RelayConnectionSettings['rateLimit'] = null;
  if (options.rateLimit !== undefined && options.rateLimit.bytesPerSecond > 0) {
    const bytesPerSecond = options.rateLimit.bytesPerSecond;
    if (!Number.isFinite(bytesPerSecond)) throw derpError('badOption', `derp server: rateLimit.bytesPerSecond: ${bytesPerSecond} is not a number`);
    rateLimit = {
      bytesPerSecond: Math.floor(bytesPerSecond),
      burstBytes: Math.max(Math.floor(options.rateLimit.burstBytes ?? bytesPerSecond), MIN_BURST_BYTES),
    };
  }
  return {
    keepAliveMs: nonNegative('keepAliveMs', options.keepAliveMs, 60_000),
    keepAliveJitterMs: nonNegative('keepAliveJitterMs', options.keepAliveJitterMs, 5_000),
    handshakeTimeoutMs: nonNegative('handshakeTimeoutMs', options.handshakeTimeoutMs, 10_000),
    writeTimeoutMs: nonNegative('writeTimeoutMs', options.writeTimeoutMs, 2_000),
    sendQueueDepth,
    maxWriteBufferBytes: Math.max(1, nonNegative('maxWriteBufferBytes', options.maxWriteBufferBytes, 64 << 10)),
    rateLimit,
  };
}

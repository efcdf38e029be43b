/**
 * @module derp/frame
 * DERP framing: the frame-type constants with their byte layouts, the size limits, and a
 * streaming reader that turns TCP chunks into frames without copying a frame that sits inside
 * one chunk. Checked against tailscale/tailscale derp/derp.go, derp/derp_client.go and
 * derp/derpserver/derpserver.go @de9ec7ee.
 *
 * Every frame, both directions:
 *
 *     0      1      2      3      4      5
 *     +------+------+------+------+------+--------------------------+
 *     | type |  payload length (uint32, big-endian) | payload ...   |
 *     +------+------+------+------+------+--------------------------+
 *
 * The length counts the payload only, not the 5 header bytes.
 */

/** Bytes before every payload: type (1) + big-endian uint32 length (4). */
export const FRAME_HEADER_BYTES = 5;
/** A Curve25519 public key on the wire. */
export const KEY_BYTES = 32;
/** A NaCl box nonce. */
export const NONCE_BYTES = 24;
/** The largest packet a client may relay (the bytes after the destination key): 64 KiB. */
export const MAX_PACKET_BYTES = 64 << 10;
/** The largest ClientInfo payload the server reads before it trusts the client (Go: 256 KiB). */
export const MAX_CLIENT_INFO_BYTES = 256 << 10;
/** The largest ServerInfo box a client accepts (Go: nonce + 1 MiB). */
export const MAX_SERVER_INFO_BYTES = NONCE_BYTES + (1 << 20);
/** Ping payloads longer than this close the connection (Go: "unreasonably extra large"). */
export const MAX_PING_BYTES = 1000;
/** The DERP protocol version we speak: v2 puts the source key in RecvPacket. */
export const PROTOCOL_VERSION = 2;

/** `DERP🔑`: the 8 magic bytes that open the ServerKey payload. */
export const SERVER_KEY_MAGIC = Buffer.from([0x44, 0x45, 0x52, 0x50, 0xf0, 0x9f, 0x94, 0x91]);
/** `TS💬`: the 6 bytes that open a disco packet; followed by a 32-byte key and a 24-byte nonce. */
export const DISCO_MAGIC = Buffer.from([0x54, 0x53, 0xf0, 0x9f, 0x92, 0xac]);

/*
Protocol flow (plain upgrade; see derp.md §3):

  client                                   server
    GET /derp, Upgrade: DERP      ---->
                                  <----    101 Switching Protocols (skipped on Derp-Fast-Start: 1)
                                  <----    ServerKey
    ClientInfo                    ---->    (10 s deadline for the steps so far, then admission)
                                  <----    ServerInfo
    SendPacket / Ping / NotePreferred ...  RecvPacket / KeepAlive / PeerGone / Pong ...
*/
export const FrameType = {
  /**
   * S->C, first frame of every connection.
   *
   *     | magic "DERP🔑" (8) | server public key (32) | future use (0+, ignored) |
   */
  ServerKey: 0x01,
  /**
   * C->S, must be the client's first frame. 56 <= length <= 256 KiB.
   *
   *     | client public key (32) | nonce (24) | NaCl box of JSON ClientInfo (16 tag + n) |
   *
   * JSON: {"version":2,"meshKey":"<hex>"?,"CanAckPings":bool,"IsProber":bool?,"AppName":str?}
   */
  ClientInfo: 0x02,
  /**
   * S->C, after admission.
   *
   *     | nonce (24) | NaCl box of JSON ServerInfo (16 tag + n) |
   *
   * JSON: {"version":2,"TokenBucketBytesPerSecond":int?,"TokenBucketBytesBurst":int?}
   */
  ServerInfo: 0x03,
  /**
   * C->S. Packet part at most 64 KiB, else the server closes the connection.
   *
   *     | destination public key (32) | packet (0..65536) |
   */
  SendPacket: 0x04,
  /**
   * S->C (protocol v2). Same length as the SendPacket it came from, which lets the relay
   * rewrite a SendPacket frame into a RecvPacket frame in place.
   *
   *     | source public key (32) | packet |
   */
  RecvPacket: 0x05,
  /** S->C, empty payload. Sent every 60 s (+0..5 s jitter); the client's read timeout is 120 s. */
  KeepAlive: 0x06,
  /**
   * C->S, exactly 1 byte, else the server closes the connection. Stats only.
   *
   *     | 0x01 = this is my home DERP, 0x00 = it is not |
   */
  NotePreferred: 0x07,
  /**
   * S->C. Tells a client that a key it received packets from has gone (its last connection
   * closed), or that a key it sent a disco packet to is not connected here.
   *
   *     | peer public key (32) | reason (1): 0x00 disconnected, 0x01 not here |
   *
   * Old servers omitted the reason byte; clients read a missing byte as "disconnected".
   */
  PeerGone: 0x08,
  /**
   * S->C, mesh watchers only (not sent by us: we have no mesh).
   *
   *     | peer public key (32) | IP (16, v4-mapped) | port (2, BE) | flags (1) |
   */
  PeerPresent: 0x09,
  /**
   * Mesh peer->S, needs the mesh key (we have none, so it closes the connection).
   *
   *     | source public key (32) | destination public key (32) | packet |
   */
  ForwardPacket: 0x0a,
  /** Mesh peer->S, empty payload; needs the mesh key (closes the connection here). */
  WatchConns: 0x10,
  /**
   * Mesh peer->S; needs the mesh key (closes the connection here).
   *
   *     | public key of the peer to close (32) |
   */
  ClosePeer: 0x11,
  /**
   * Both ways. 8 <= length <= 1000 from a client (else closed); the answer echoes the first 8.
   *
   *     | opaque data (8) | ignored (0..992) |
   */
  Ping: 0x12,
  /**
   * Both ways, the answer to a Ping.
   *
   *     | the 8 bytes of the Ping |
   */
  Pong: 0x13,
  /** S->C. UTF-8 text describing a problem with this connection; empty = healthy again. */
  Health: 0x14,
  /**
   * S->C, the server is restarting.
   *
   *     | reconnect in, ms (uint32 BE) | keep trying for, ms (uint32 BE) |
   */
  Restarting: 0x15,
} as const;

export type FrameTypeNumber = (typeof FrameType)[keyof typeof FrameType];

/** PeerGone reason byte. */
export const PeerGoneReason = {
  /** The peer's last connection to this server closed. */
  Disconnected: 0x00,
  /** The server has no client with that key (sent in reply to a disco packet only). */
  NotHere: 0x01,
} as const;

export type PeerGoneReasonNumber = (typeof PeerGoneReason)[keyof typeof PeerGoneReason];

/** A whole frame, header included, ready to write. */
export function encodeFrame(type: number, payload?: Uint8Array): Buffer {
  const length = payload === undefined ? 0 : payload.length;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  frame[0] = type;
  frame.writeUInt32BE(length, 1);
  if (payload !== undefined) frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** True when a relayed packet is a disco message (the relay prioritises and answers those). */
export function looksLikeDisco(packet: Uint8Array, offset = 0): boolean {
  if (packet.length - offset < DISCO_MAGIC.length + KEY_BYTES + NONCE_BYTES) return false;
  for (let i = 0; i < DISCO_MAGIC.length; i++) {
    if (packet[offset + i] !== DISCO_MAGIC[i]) return false;
  }
  return true;
}

/**
 * What the reader does with a frame once it has seen its header: read it whole, skip its
 * payload without buffering it (unknown types, as Go's server does), or fail with a reason
 * (which becomes the connection's close reason).
 */
export type FrameDecision = 'read' | 'skip' | { readonly reject: string; readonly detail: string };

export class FrameRejectedError extends Error {
  override name = 'FrameRejectedError';
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(detail);
  }
}

/**
 * A streaming frame reader. `push` chunks as they arrive, then call `next()` until it returns
 * null. A frame that lies inside one chunk is returned as a view of that chunk (no copy); one
 * that spans chunks is assembled into a buffer of exactly its size, each byte copied once.
 * The returned buffer holds the 5-byte header too, so a caller may rewrite it in place.
 */
export class FrameReader {
  readonly #decide: (type: number, length: number) => FrameDecision;
  #chunk: Buffer = Buffer.alloc(0);
  #pos = 0;
  /** Header bytes gathered across chunks. */
  #header = Buffer.alloc(FRAME_HEADER_BYTES);
  #headerFill = 0;
  /** A frame being assembled across chunks. */
  #partial: Buffer | null = null;
  #partialFill = 0;
  /** Payload bytes still to discard for a skipped frame. */
  #skipRemaining = 0;
  #framesSkipped = 0;

  constructor(decide: (type: number, length: number) => FrameDecision) {
    this.#decide = decide;
  }

  /** Frames whose payload was discarded unread. */
  get framesSkipped(): number {
    return this.#framesSkipped;
  }

  /** True when the reader holds part of a frame (so an EOF now truncates a frame). */
  get midFrame(): boolean {
    return this.#headerFill > 0 || this.#partial !== null || this.#skipRemaining > 0 || this.#pos < this.#chunk.length;
  }

  push(chunk: Buffer): void {
    if (this.#pos < this.#chunk.length) {
      // Unconsumed bytes are left only when the caller stopped pulling (paused); keep them.
      this.#chunk = Buffer.concat([this.#chunk.subarray(this.#pos), chunk]);
    } else {
      this.#chunk = chunk;
    }
    this.#pos = 0;
  }

  /** The next whole frame, or null when more bytes are needed. Throws FrameRejectedError. */
  next(): Buffer | null {
    for (;;) {
      const chunk = this.#chunk;
      let available = chunk.length - this.#pos;
      if (this.#skipRemaining > 0) {
        const n = Math.min(available, this.#skipRemaining);
        this.#pos += n;
        this.#skipRemaining -= n;
        if (this.#skipRemaining > 0) return null;
        available -= n;
      }
      if (this.#partial !== null) {
        const partial = this.#partial;
        const n = Math.min(available, partial.length - this.#partialFill);
        chunk.copy(partial, this.#partialFill, this.#pos, this.#pos + n);
        this.#pos += n;
        this.#partialFill += n;
        if (this.#partialFill < partial.length) return null;
        this.#partial = null;
        this.#partialFill = 0;
        return partial;
      }
      if (available === 0) return null;

      // A header: straight from the chunk when it holds all 5 bytes, else gathered.
      let type: number;
      let length: number;
      let headerInChunk = false;
      if (this.#headerFill === 0 && available >= FRAME_HEADER_BYTES) {
        type = chunk[this.#pos]!;
        length = chunk.readUInt32BE(this.#pos + 1);
        headerInChunk = true;
      } else {
        const n = Math.min(available, FRAME_HEADER_BYTES - this.#headerFill);
        chunk.copy(this.#header, this.#headerFill, this.#pos, this.#pos + n);
        this.#pos += n;
        this.#headerFill += n;
        if (this.#headerFill < FRAME_HEADER_BYTES) return null;
        type = this.#header[0]!;
        length = this.#header.readUInt32BE(1);
      }

      const decision = this.#decide(type, length);
      if (decision === 'skip') {
        if (headerInChunk) this.#pos += FRAME_HEADER_BYTES;
        this.#headerFill = 0;
        this.#skipRemaining = length;
        this.#framesSkipped++;
        continue;
      }
      if (decision !== 'read') throw new FrameRejectedError(decision.reject, decision.detail);

      if (headerInChunk) {
        const end = this.#pos + FRAME_HEADER_BYTES + length;
        if (end <= chunk.length) {
          const frame = chunk.subarray(this.#pos, end);
          this.#pos = end;
          return frame;
        }
        const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
        const have = chunk.length - this.#pos;
        chunk.copy(frame, 0, this.#pos);
        this.#pos = chunk.length;
        this.#partial = frame;
        this.#partialFill = have;
        return null;
      }
      // The header was gathered across chunks.
      this.#headerFill = 0;
      const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
      this.#header.copy(frame, 0);
      this.#partial = frame;
      this.#partialFill = FRAME_HEADER_BYTES;
      if (length === 0) {
        this.#partial = null;
        this.#partialFill = 0;
        return frame;
      }
    }
  }
}

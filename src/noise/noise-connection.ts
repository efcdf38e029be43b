// A finished TS2021 session as a Node Duplex of plaintext over any byte Duplex (a net.Socket, a
// TLS socket, a WebSocket stream). An HTTP/2 implementation runs on it unchanged (protocol.md
// §6), or takes the plaintext directly through a PlaintextTap. It fails
// closed: the first bad record, a truncated record at end of stream, or a transport error
// destroys it with a HeadwayError that names the step, and both ciphers are dropped.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { HeadwayError } from '../util/headway-error.js';
import { publicKeyFromBytes, type MachinePublicKey } from '../key/index.js';
import { NoiseErrors } from './errors.js';
import { RecordDecoder, encodeRecords } from './record-layer.js';
import type { NoiseSession } from './control-handshake.js';

export interface NoiseConnectionOptions {
  /** Bytes that arrived after the handshake frame and belong to the record stream. */
  initialData?: Buffer;
  /** Names the connection in error messages, e.g. `connection from 10.0.0.5:51234`. */
  label?: string;
}

/**
 * Sits between the plaintext Duplex and the records, for a protocol layer that must see or
 * insert bytes of its own (the control server's HTTP/2 connection). It receives what the
 * Duplex side writes and owns the write from then on: it calls `sealAndSend` (now or later, in
 * order) and then `callback`. Inbound plaintext goes to `inbound` and is never readable on the
 * Duplex.
 */
export interface PlaintextTap {
  outbound(parts: Buffer[], callback: (error?: Error | null) => void): void;
  inbound(plaintext: Buffer): void;
  /** The connection is gone: fail any write still held. */
  closed(error: Error): void;
}

export interface NoiseConnectionStats {
  recordsIn: number;
  recordsOut: number;
  plaintextBytesIn: number;
  plaintextBytesOut: number;
}

export class NoiseConnection extends Duplex {
  /** The byte stream the records travel on. */
  readonly transport: Duplex;
  /** The peer's static key, raw: the client's machine key on a server, the control key on a client. */
  readonly peerStatic: Buffer;
  /** The protocol version of the initiation header (the client's capability version). */
  readonly protocolVersion: number;
  /** The Noise handshake hash, usable as a channel binding. */
  readonly handshakeHash: Buffer;
  readonly #send: NoiseSession['send'];
  readonly #receive: NoiseSession['receive'];
  readonly #decoder: RecordDecoder;
  readonly #label: string;
  #transportPaused = false;
  #ended = false;
  #drainWaiter: (() => void) | null = null;
  #pendingWriteCallback: ((error?: Error | null) => void) | null = null;
  #tap: PlaintextTap | null = null;
  #stats: NoiseConnectionStats = { recordsIn: 0, recordsOut: 0, plaintextBytesIn: 0, plaintextBytesOut: 0 };
  readonly #onData = (chunk: Buffer): void => this.#receiveChunk(chunk);
  readonly #onEnd = (): void => this.#transportEnded();
  readonly #onError = (err: Error): void => {
    this.destroy(new HeadwayError(NoiseErrors.TRANSPORT_FAILED, `noise: ${this.#label}: transport failed: ${err.message}`, { cause: err }));
  };
  // The transport is gone, so nothing more can be sent; plaintext already decrypted stays
  // readable until consumed, then the connection closes.
  readonly #onClose = (): void => {
    if (this.destroyed) return;
    if (!this.readableEnded) this.#transportEnded();
    if (this.destroyed) return;
    if (this.readableLength === 0) this.destroy();
    else this.once('end', () => this.destroy());
  };

  constructor(transport: Duplex, session: NoiseSession, options: NoiseConnectionOptions = {}) {
    // No half-open state: TS2021 has no close_notify, so the end of either direction ends both.
    super({ allowHalfOpen: false });
    this.transport = transport;
    this.peerStatic = session.peerStatic;
    this.protocolVersion = session.protocolVersion;
    this.handshakeHash = session.handshakeHash;
    this.#send = session.send;
    this.#receive = session.receive;
    this.#label = options.label ?? describeTransport(transport);
    this.#decoder = new RecordDecoder(this.#receive, () => this.#label);
    transport.on('error', this.#onError);
    transport.on('end', this.#onEnd);
    transport.on('close', this.#onClose);
    if (options.initialData !== undefined && options.initialData.length > 0) this.#receiveChunk(options.initialData);
    transport.on('data', this.#onData);
    // Whoever read the handshake may have left the transport paused; records flow from now on.
    transport.resume();
  }

  /** The peer's static key as `mkey:<hex>`. */
  get peerMachineKey(): MachinePublicKey {
    return publicKeyFromBytes('machine', this.peerStatic);
  }

  get label(): string {
    return this.#label;
  }

  stats(): NoiseConnectionStats {
    return { ...this.#stats, recordsIn: this.#decoder.recordsOpened };
  }

  // Node's http2 asks its socket for these; a bare Duplex would make it fall back quietly.
  get remoteAddress(): string | undefined {
    return (this.transport as Partial<Socket>).remoteAddress;
  }

  get remotePort(): number | undefined {
    return (this.transport as Partial<Socket>).remotePort;
  }

  /**
   * Routes plaintext through `tap` from now on. Plaintext already readable must have been read
   * (read() it first) and no write may be pending, or the order would break.
   */
  interpose(tap: PlaintextTap): void {
    if (this.readableLength > 0 || this.writableLength > 0) {
      throw new HeadwayError(NoiseErrors.INVALID_USE, `noise: ${this.#label}: a tap must be set while no plaintext is unread and no write is pending`);
    }
    this.#tap = tap;
  }

  /**
   * Seals `parts` (one byte sequence) into records and writes them to the transport in one
   * write, bypassing the Duplex: only a tap may call this, which keeps the order. Returns the
   * transport's answer (false: wait for its 'drain'); false without writing once destroyed.
   */
  sealAndSend(parts: readonly Buffer[]): boolean {
    if (this.destroyed) return false;
    let plaintextBytes = 0;
    for (const part of parts) plaintextBytes += part.length;
    if (plaintextBytes === 0) return true;
    const wire = encodeRecords(this.#send, parts);
    this.#stats.recordsOut += Math.ceil(plaintextBytes / 4077);
    this.#stats.plaintextBytesOut += plaintextBytes;
    return this.transport.write(wire);
  }

  override _read(): void {
    if (this.#transportPaused) {
      this.#transportPaused = false;
      this.transport.resume();
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#sendParts([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: (error?: Error | null) => void): void {
    this.#sendParts(chunks.map((c) => c.chunk), callback);
  }

  // Calls back at once: waiting for the transport's 'finish' would hang whenever the transport
  // is already errored, and http2's socket wrapper (JSStreamSocket) must never wait forever on a
  // shutdown, or its next write trips an internal assertion.
  override _final(callback: (error?: Error | null) => void): void {
    if (!this.transport.destroyed && !this.transport.writableEnded) this.transport.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.transport.off('data', this.#onData);
    this.transport.off('end', this.#onEnd);
    this.transport.off('close', this.#onClose);
    // Keep an error listener: a late transport error must not become an uncaught exception.
    this.transport.off('error', this.#onError);
    this.transport.on('error', ignoreError);
    // A write waiting for 'drain' will never get it: fail it, so whoever wrote (http2's socket
    // wrapper) is not left with a write in flight.
    const pendingWrite = this.#pendingWriteCallback;
    if (this.#drainWaiter !== null) {
      this.transport.off('drain', this.#drainWaiter);
      this.#drainWaiter = null;
      this.#pendingWriteCallback = null;
    }
    this.#send.destroy();
    this.#receive.destroy();
    this.transport.destroy();
    const closedError = error ?? new HeadwayError(NoiseErrors.TRANSPORT_FAILED, `noise: ${this.#label}: connection closed with a write pending`);
    pendingWrite?.(closedError);
    this.#tap?.closed(closedError);
    callback(error);
  }

  #sendParts(parts: Buffer[], callback: (error?: Error | null) => void): void {
    if (this.#tap !== null) {
      this.#tap.outbound(parts, callback);
      return;
    }
    let wire: Buffer;
    let plaintextBytes = 0;
    for (const part of parts) plaintextBytes += part.length;
    if (plaintextBytes === 0) {
      callback();
      return;
    }
    try {
      wire = encodeRecords(this.#send, parts);
    } catch (err) {
      callback(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.#stats.recordsOut += Math.ceil(plaintextBytes / 4077);
    this.#stats.plaintextBytesOut += plaintextBytes;
    if (this.transport.write(wire)) {
      callback();
      return;
    }
    const waiter = (): void => {
      this.#drainWaiter = null;
      this.#pendingWriteCallback = null;
      callback();
    };
    this.#drainWaiter = waiter;
    this.#pendingWriteCallback = callback;
    this.transport.once('drain', waiter);
  }

  #receiveChunk(chunk: Buffer): void {
    if (this.destroyed) return;
    let plaintexts: Buffer[];
    try {
      plaintexts = this.#decoder.decode(chunk);
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    let wantsMore = true;
    for (const plaintext of plaintexts) {
      this.#stats.plaintextBytesIn += plaintext.length;
      if (this.#tap === null) {
        wantsMore = this.push(plaintext);
        continue;
      }
      try {
        this.#tap.inbound(plaintext);
      } catch (err) {
        this.destroy(err instanceof Error ? err : new Error(String(err)));
        return;
      }
    }
    if (!wantsMore && !this.#transportPaused) {
      this.#transportPaused = true;
      this.transport.pause();
    }
  }

  #transportEnded(): void {
    if (this.destroyed || this.#ended) return;
    this.#ended = true;
    if (this.#decoder.pendingBytes > 0) {
      this.destroy(
        new HeadwayError(
          NoiseErrors.TRUNCATED,
          `noise: ${this.#label}: stream ended inside record ${this.#decoder.recordsOpened} (${this.#decoder.pendingBytes} bytes of it received)`,
        ),
      );
      return;
    }
    this.push(null);
  }
}

function ignoreError(): void {}

function describeTransport(transport: Duplex): string {
  const socket = transport as Partial<Socket>;
  if (typeof socket.remoteAddress === 'string') return `connection with ${socket.remoteAddress}:${socket.remotePort ?? '?'}`;
  return 'connection';
}

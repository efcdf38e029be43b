// HTTP/2 DATA frames of long-lived map streams, written below node:http2.
//
// A map frame sent through node:http2 costs a JS stream write, nghttp2's framing, its socket
// wrapper (JSStreamSocket, which completes every write on a later tick) and the NoiseConnection
// Duplex before the record is sealed. For a spliced stream we build the DATA frames here and
// seal them straight into Noise records: one seal and one transport write per flush.
//
// node:http2 keeps everything else (SETTINGS, PING, HEADERS, other requests, the END_STREAM of
// a spliced stream), so this layer sees both directions as HTTP/2 frames (a PlaintextTap):
// - outbound: node:http2's bytes pass in order; ours go only at a frame boundary outside a
//   header block, and only once the stream's response HEADERS have gone out.
// - flow control: we own the client's real connection window. Every DATA frame (node:http2's
//   too) is charged to it; node:http2 output that would overrun it is held (with everything
//   after it) until the client credits more. node:http2 hears only part of the client's
//   connection credit, enough to keep its own idea of the window at most 2^30, so it can never
//   overflow however much map data we send. WINDOW_UPDATEs for spliced streams are ours alone
//   and never reach node:http2 (whose stream window would otherwise overflow after 2 GiB).
// - SETTINGS_INITIAL_WINDOW_SIZE from the client adjusts spliced streams' windows as RFC 9113
//   §6.9.2 says; DATA frames never exceed 16,384 bytes (the smallest SETTINGS_MAX_FRAME_SIZE).
// - RST_STREAM either way ends our writing on that stream at once.
import type { NoiseConnection, PlaintextTap } from '../noise/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { ControlErrors } from './errors.js';

const FRAME_HEADER_BYTES = 9;
const CLIENT_PREFACE_BYTES = 24;
const TYPE_DATA = 0x0;
const TYPE_HEADERS = 0x1;
const TYPE_RST_STREAM = 0x3;
const TYPE_SETTINGS = 0x4;
const TYPE_WINDOW_UPDATE = 0x8;
const TYPE_CONTINUATION = 0x9;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTING_BYTES = 6;
const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
/** The smallest SETTINGS_MAX_FRAME_SIZE a peer may announce, so always allowed. */
const MAX_DATA_PAYLOAD = 16_384;
/** node:http2's idea of the connection window never grows past this (see the header). */
const NGHTTP2_WINDOW_CAP = 2 ** 30;

export interface H2SpliceStats {
  /** DATA frames written by the splice (not node:http2). */
  dataFrames: number;
  /** Transport writes made by the splice for its own frames. */
  writes: number;
}

interface FrameHeader {
  readonly length: number;
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
}

function frameHeaderOf(header: Buffer): FrameHeader {
  return { length: header.readUIntBE(0, 3), type: header[3]!, flags: header[4]!, streamId: header.readUInt32BE(5) & 0x7fffffff };
}

/** One spliced response stream: a byte sink with back-pressure, ended through node:http2. */
export class SplicedStream {
  readonly id: number;
  /** The client's stream window, as RFC 9113 counts it (may go negative after SETTINGS). */
  window: number;
  headersSent = false;
  /** RST_STREAM seen either way, or released: nothing more is written. */
  closed = false;
  readonly queue: Buffer[] = [];
  queueHead = 0;
  queuedBytes = 0;
  drainListeners: Array<() => void> = [];
  endThen: (() => void) | null = null;
  readonly #splice: H2DataSplice;

  constructor(splice: H2DataSplice, id: number, window: number) {
    this.#splice = splice;
    this.id = id;
    this.window = window;
  }

  /** Queues `bytes` and sends what the windows allow; false when anything is left waiting. */
  write(bytes: Buffer): boolean {
    if (this.closed || this.endThen !== null) return false;
    if (bytes.length > 0) {
      this.queue.push(bytes);
      this.queuedBytes += bytes.length;
      this.#splice.pump();
    }
    return this.queuedBytes === 0 && !this.#splice.blocked;
  }

  /** `listener` runs once, when everything written has gone to the transport and it is writable. */
  onceDrain(listener: () => void): void {
    if (this.closed) return;
    this.drainListeners.push(listener);
    this.#splice.pump();
  }

  /** Runs `then` (which ends the response through node:http2) once the queue is empty. */
  end(then: () => void): void {
    if (this.closed) {
      then();
      return;
    }
    this.endThen = then;
    this.#splice.pump();
  }

  /** The stream closed (node:http2's 'close'): forget it. */
  release(): void {
    this.#splice.release(this);
  }

  /** Takes up to `limit` queued bytes as slices, in order. */
  take(limit: number, into: Buffer[]): number {
    let taken = 0;
    while (taken < limit && this.queue.length > 0) {
      const head = this.queue[0]!;
      const available = head.length - this.queueHead;
      const n = Math.min(available, limit - taken);
      into.push(n === head.length ? head : head.subarray(this.queueHead, this.queueHead + n));
      taken += n;
      if (n === available) {
        this.queue.shift();
        this.queueHead = 0;
      } else {
        this.queueHead += n;
      }
    }
    this.queuedBytes -= taken;
    return taken;
  }

  drop(): void {
    this.closed = true;
    this.queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
    this.drainListeners = [];
  }
}

export class H2DataSplice implements PlaintextTap {
  readonly #noise: NoiseConnection;
  readonly #streams: SplicedStream[] = [];
  #closed = false;
  /** The client's connection window, all DATA counted. */
  #connectionWindow = DEFAULT_WINDOW;
  /** What node:http2 believes the connection window is. */
  #nghttp2Window = DEFAULT_WINDOW;
  /** The client's SETTINGS_INITIAL_WINDOW_SIZE. */
  #initialStreamWindow = DEFAULT_WINDOW;
  #pumping = false;
  #pumpAgain = false;
  #waitingDrain = false;
  readonly #stats: H2SpliceStats = { dataFrames: 0, writes: 0 };

  // node:http2's write in progress: its parts, where we are in them, and its callback.
  #pendingParts: Buffer[] | null = null;
  #partIndex = 0;
  #partOffset = 0;
  #pendingCallback: ((error?: Error | null) => void) | null = null;
  /** The callback of a write already sent, to run when the transport drains. */
  #callbackAfterDrain: ((error?: Error | null) => void) | null = null;
  // Outbound framing state.
  readonly #outHeader = Buffer.alloc(FRAME_HEADER_BYTES);
  #outHeaderFill = 0;
  #outRemaining = 0;
  #inHeaderBlock = false;
  #headerBlockStream = 0;

  // Inbound framing state.
  #prefaceLeft = CLIENT_PREFACE_BYTES;
  readonly #inHeader = Buffer.alloc(FRAME_HEADER_BYTES);
  #inHeaderFill = 0;
  #inRemaining = 0;
  #collecting: Buffer | null = null;
  #collectFill = 0;

  readonly #onDrain = (): void => {
    this.#waitingDrain = false;
    const callback = this.#callbackAfterDrain;
    this.#callbackAfterDrain = null;
    callback?.();
    this.pump();
  };

  constructor(noise: NoiseConnection) {
    this.#noise = noise;
    noise.interpose(this);
  }

  /** The transport is full: writes wait for its 'drain'. */
  get blocked(): boolean {
    return this.#waitingDrain;
  }

  stats(): H2SpliceStats {
    return { ...this.#stats };
  }

  /**
   * Takes over the DATA of response stream `id`. Call before its response headers are
   * submitted; from then on write its body only through the returned stream.
   */
  open(id: number): SplicedStream {
    const stream = new SplicedStream(this, id, this.#initialStreamWindow);
    if (this.#closed) stream.drop();
    else this.#streams.push(stream);
    return stream;
  }

  release(stream: SplicedStream): void {
    stream.drop();
    const at = this.#streams.indexOf(stream);
    if (at >= 0) this.#streams.splice(at, 1);
  }

  // --- PlaintextTap ------------------------------------------------------------------------

  outbound(parts: Buffer[], callback: (error?: Error | null) => void): void {
    this.#pendingParts = parts;
    this.#partIndex = 0;
    this.#partOffset = 0;
    this.#pendingCallback = callback;
    this.pump();
  }

  closed(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const stream of this.#streams) stream.drop();
    this.#streams.length = 0;
    const callbacks = [this.#pendingCallback, this.#callbackAfterDrain];
    this.#pendingCallback = null;
    this.#callbackAfterDrain = null;
    this.#pendingParts = null;
    this.#noise.transport.off('drain', this.#onDrain);
    for (const callback of callbacks) callback?.(error);
  }

  inbound(plaintext: Buffer): readonly Buffer[] {
    const passed: Buffer[] = [];
    let offset = 0;
    while (offset < plaintext.length) {
      const left = plaintext.length - offset;
      if (this.#prefaceLeft > 0) {
        const n = Math.min(left, this.#prefaceLeft);
        passed.push(plaintext.subarray(offset, offset + n));
        this.#prefaceLeft -= n;
        offset += n;
      } else if (this.#inRemaining > 0) {
        const n = Math.min(left, this.#inRemaining);
        passed.push(plaintext.subarray(offset, offset + n));
        this.#inRemaining -= n;
        offset += n;
      } else if (this.#collecting !== null) {
        const frame = this.#collecting;
        const n = plaintext.copy(frame, this.#collectFill, offset, offset + Math.min(left, frame.length - this.#collectFill));
        this.#collectFill += n;
        offset += n;
        if (this.#collectFill === frame.length) {
          this.#collecting = null;
          this.#inspect(frame, passed);
        }
      } else {
        const n = plaintext.copy(this.#inHeader, this.#inHeaderFill, offset, offset + Math.min(left, FRAME_HEADER_BYTES - this.#inHeaderFill));
        this.#inHeaderFill += n;
        offset += n;
        if (this.#inHeaderFill === FRAME_HEADER_BYTES) {
          this.#inHeaderFill = 0;
          this.#inboundHeader(passed);
        }
      }
    }
    if (this.#pumpAgain) this.pump();
    return passed;
  }

  /** A complete inbound frame header: pass the frame through, or collect it to inspect it. */
  #inboundHeader(passed: Buffer[]): void {
    const header = this.#inHeader;
    const { length, type, flags, streamId } = frameHeaderOf(header);
    const inspect =
      (type === TYPE_WINDOW_UPDATE && length === 4) ||
      (type === TYPE_SETTINGS && (flags & FLAG_ACK) === 0 && streamId === 0 && length % SETTING_BYTES === 0 && length <= MAX_DATA_PAYLOAD);
    if (type === TYPE_RST_STREAM) this.#streamOf(streamId)?.drop();
    if (!inspect || length === 0) {
      passed.push(Buffer.from(header));
      this.#inRemaining = length;
      return;
    }
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
    header.copy(frame);
    this.#collecting = frame;
    this.#collectFill = FRAME_HEADER_BYTES;
  }

  #inspect(frame: Buffer, passed: Buffer[]): void {
    if (frame[3] === TYPE_SETTINGS) {
      for (let at = FRAME_HEADER_BYTES; at < frame.length; at += SETTING_BYTES) {
        if (frame.readUInt16BE(at) !== SETTINGS_INITIAL_WINDOW_SIZE) continue;
        const value = frame.readUInt32BE(at + 2);
        // Above 2^31-1 is the client's FLOW_CONTROL_ERROR; node:http2 answers it.
        if (value > MAX_WINDOW) continue;
        const delta = value - this.#initialStreamWindow;
        this.#initialStreamWindow = value;
        for (const stream of this.#streams) stream.window += delta;
        if (delta > 0) this.#pumpAgain = true;
      }
      passed.push(frame);
      return;
    }
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    const increment = frame.readUInt32BE(FRAME_HEADER_BYTES) & 0x7fffffff;
    // A zero increment is a protocol error that node:http2 reports.
    if (increment === 0) {
      passed.push(frame);
      return;
    }
    if (streamId === 0) {
      this.#connectionWindow += increment;
      if (this.#connectionWindow > MAX_WINDOW) {
        throw new HeadwayError(
          ControlErrors.FLOW_CONTROL,
          `control: ${this.#noise.label}: the client's connection window update of ${increment} takes the window past 2^31-1`,
        );
      }
      const forNghttp2 = Math.min(increment, Math.max(0, NGHTTP2_WINDOW_CAP - this.#nghttp2Window));
      if (forNghttp2 > 0) {
        this.#nghttp2Window += forNghttp2;
        if (forNghttp2 !== increment) frame.writeUInt32BE(forNghttp2, FRAME_HEADER_BYTES);
        passed.push(frame);
      }
      this.#pumpAgain = true;
      return;
    }
    const stream = this.#streamOf(streamId);
    if (stream === undefined) {
      passed.push(frame);
      return;
    }
    // Ours alone: node:http2 never sends DATA on this stream, so it never needs the credit.
    stream.window += increment;
    if (stream.window > MAX_WINDOW) {
      stream.window = MAX_WINDOW;
      stream.drop();
      throw new HeadwayError(
        ControlErrors.FLOW_CONTROL,
        `control: ${this.#noise.label}: the client's window update of ${increment} for stream ${streamId} takes it past 2^31-1`,
      );
    }
    this.#pumpAgain = true;
  }

  #streamOf(id: number): SplicedStream | undefined {
    for (const stream of this.#streams) if (stream.id === id) return stream;
    return undefined;
  }

  // --- writing -------------------------------------------------------------------------------

  /** Sends node:http2's pending bytes, then ours, as far as order and windows allow. */
  pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#pumpOnce();
      } while (this.#pumpAgain && !this.#closed);
    } finally {
      this.#pumping = false;
    }
  }

  #pumpOnce(): void {
    if (this.#closed || this.#waitingDrain) return;
    const out: Buffer[] = [];
    let nghttp2Done = false;
    if (this.#pendingParts !== null) nghttp2Done = this.#takeNghttp2(out);
    let ours = 0;
    if (this.#pendingParts === null && this.#atBoundary()) ours = this.#takeOurs(out);
    if (out.length > 0 && !this.#noise.sealAndSend(out)) {
      this.#waitingDrain = true;
      this.#noise.transport.once('drain', this.#onDrain);
    }
    if (ours > 0) this.#stats.writes++;
    if (nghttp2Done) {
      const callback = this.#pendingCallback;
      this.#pendingCallback = null;
      // Back-pressure for node:http2 as the Duplex gives it: its write completes on 'drain'.
      if (this.#waitingDrain) this.#callbackAfterDrain = callback;
      else {
        callback?.();
        // Its callback may already have handed us the next write (Writable flushes its buffer).
        if (this.#pendingParts !== null) this.#pumpAgain = true;
      }
    }
    if (!this.#waitingDrain) this.#notifyDrained();
  }

  #atBoundary(): boolean {
    return this.#outRemaining === 0 && this.#outHeaderFill === 0 && !this.#inHeaderBlock;
  }

  /**
   * Moves node:http2's bytes into `out`, charging DATA to the connection window; stops before a
   * DATA frame the window cannot take. True when the whole write was taken.
   */
  #takeNghttp2(out: Buffer[]): boolean {
    const parts = this.#pendingParts!;
    while (this.#partIndex < parts.length) {
      const part = parts[this.#partIndex]!;
      if (this.#partOffset >= part.length) {
        this.#partIndex++;
        this.#partOffset = 0;
        continue;
      }
      const left = part.length - this.#partOffset;
      if (this.#outRemaining > 0) {
        const n = Math.min(left, this.#outRemaining);
        out.push(n === part.length ? part : part.subarray(this.#partOffset, this.#partOffset + n));
        this.#outRemaining -= n;
        this.#partOffset += n;
        continue;
      }
      if (this.#outHeaderFill < FRAME_HEADER_BYTES) {
        const n = part.copy(this.#outHeader, this.#outHeaderFill, this.#partOffset, this.#partOffset + Math.min(left, FRAME_HEADER_BYTES - this.#outHeaderFill));
        this.#outHeaderFill += n;
        this.#partOffset += n;
        if (this.#outHeaderFill < FRAME_HEADER_BYTES) continue;
      }
      if (!this.#acceptOutboundHeader(out)) return false;
    }
    // A header completed by the last part is accepted here too.
    if (this.#outHeaderFill === FRAME_HEADER_BYTES && !this.#acceptOutboundHeader(out)) return false;
    this.#pendingParts = null;
    return true;
  }

  /** node:http2's frame header is complete: let it out unless it is DATA the window lacks. */
  #acceptOutboundHeader(out: Buffer[]): boolean {
    const header = this.#outHeader;
    const { length, type, flags, streamId } = frameHeaderOf(header);
    if (type === TYPE_DATA) {
      if (length > this.#connectionWindow) return false;
      this.#connectionWindow -= length;
      this.#nghttp2Window -= length;
    } else if (type === TYPE_HEADERS || type === TYPE_CONTINUATION) {
      const blockStream = type === TYPE_HEADERS ? streamId : this.#headerBlockStream;
      if ((flags & FLAG_END_HEADERS) === 0) {
        this.#inHeaderBlock = true;
        this.#headerBlockStream = blockStream;
      } else {
        this.#inHeaderBlock = false;
        const stream = this.#streamOf(blockStream);
        if (stream !== undefined) stream.headersSent = true;
      }
    } else if (type === TYPE_RST_STREAM) {
      this.#streamOf(streamId)?.drop();
    }
    out.push(Buffer.from(header));
    this.#outHeaderFill = 0;
    this.#outRemaining = length;
    return true;
  }

  /** Our DATA frames, stream by stream, within both windows. Returns how many frames. */
  #takeOurs(out: Buffer[]): number {
    let frames = 0;
    for (const stream of this.#streams) {
      if (!stream.headersSent || stream.closed) continue;
      while (stream.queuedBytes > 0 && this.#connectionWindow > 0 && stream.window > 0) {
        const length = Math.min(MAX_DATA_PAYLOAD, this.#connectionWindow, stream.window, stream.queuedBytes);
        const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
        header.writeUIntBE(length, 0, 3);
        header[3] = TYPE_DATA;
        header[4] = 0;
        header.writeUInt32BE(stream.id, 5);
        out.push(header);
        stream.take(length, out);
        this.#connectionWindow -= length;
        stream.window -= length;
        frames++;
      }
    }
    this.#stats.dataFrames += frames;
    return frames;
  }

  /** Runs drain listeners and deferred ends of streams with nothing left queued. */
  #notifyDrained(): void {
    for (let i = 0; i < this.#streams.length; i++) {
      const stream = this.#streams[i]!;
      if (stream.queuedBytes > 0) continue;
      if (stream.drainListeners.length > 0) {
        const listeners = stream.drainListeners;
        stream.drainListeners = [];
        for (const listener of listeners) listener();
      }
      if (stream.endThen !== null) {
        const then = stream.endThen;
        stream.endThen = null;
        then();
      }
    }
  }
}

// The server side of one HTTP/2 connection (RFC 9113, prior knowledge) over a plaintext wire: a
// Noise connection in production, any byte Duplex in tests (wires.ts). It checks the client
// preface, sends our SETTINGS first, answers SETTINGS, PING and WINDOW_UPDATE, keeps flow
// control both ways (the sending half, framing and back-pressure are connection-output.ts),
// and enforces the stream state rules and limits. Header blocks are assembled and decoded in
// header-block.ts, SETTINGS values checked in client-settings.ts, the reset bookkeeping kept in
// stream-resets.ts. A client that breaks the protocol gets GOAWAY with the RFC's error code and
// the connection closes; a bad stream gets RST_STREAM. Nothing a client sends throws out of
// `receive`.
import { ConnectionOutput, type PlaintextWire } from './connection-output.js';
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FrameReader,
  FrameSizeError,
  FrameType,
  H2ProtocolError,
  MAX_WINDOW,
  SETTINGS_ACK,
  Setting,
  goawayFrame,
  pingAck,
  rstStreamFrame,
  settingsFrame,
  unpad,
  windowUpdateFrame,
  type FrameHeader,
} from './frames.js';
import { readClientSettings } from './client-settings.js';
import { HeaderBlockAssembler, type ReceivedHeaderBlock } from './header-block.js';
import { checkRequestHeaders } from './request-headers.js';
import { ServerStream, type StreamOwner } from './server-stream.js';
import { StreamResets } from './stream-resets.js';

export type { PlaintextWire } from './connection-output.js';
export { H2ProtocolError } from './frames.js';

export interface ServerConnectionOptions {
  readonly maxConcurrentStreams: number;
  readonly maxRequestBodyBytes: number;
  /** Called for each request, with the stream as request and response. */
  readonly onRequest: (stream: ServerStream) => void;
  /** The client's first SETTINGS arrived (its preface is complete). */
  readonly onPreface?: () => void;
  readonly onStreamCount?: (delta: 1 | -1) => void;
  /** A protocol error by the client (the connection is closing), or a listener that threw. */
  readonly onError?: (err: H2ProtocolError | Error) => void;
  /** How long a closing connection waits for the client to close its side. */
  readonly closeGraceMs?: number;
}

/** SETTINGS_MAX_HEADER_LIST_SIZE we announce; a larger request gets 431. */
const MAX_HEADER_LIST = 64 * 1024;

export class H2ServerConnection implements StreamOwner {
  readonly #wire: PlaintextWire;
  readonly #options: ServerConnectionOptions;
  readonly #reader = new FrameReader(DEFAULT_MAX_FRAME_SIZE);
  readonly #headerBlocks: HeaderBlockAssembler;
  readonly #streams = new Map<number, ServerStream>();
  #prefaceLeft = CLIENT_PREFACE.length;
  #settingsReceived = false;
  /** The stream whose header block awaits CONTINUATION, 0 when none (every frame checks it). */
  /** Highest client stream id seen: lower ids not in #streams are closed, higher are idle. */
  #lastStreamId = 0;

  readonly #output: ConnectionOutput;
  /** The client's SETTINGS_INITIAL_WINDOW_SIZE. */
  #peerInitialWindow = DEFAULT_WINDOW;

  // Receiving.
  #recvWindow = DEFAULT_WINDOW;
  #owedConnectionCredit = 0;
  /** Streams owed a WINDOW_UPDATE at the end of this read; made on first use (most never are). */
  #owingStreams: Set<ServerStream> | null = null;

  /** Made at the first reset either way; most connections never see one. */
  #resets: StreamResets | null = null;
  #goawaySent = false;
  #goawayReceived = false;
  #closed = false;

  constructor(wire: PlaintextWire, options: ServerConnectionOptions) {
    this.#wire = wire;
    this.#output = new ConnectionOutput(wire, () => this.#sendAll());
    this.#options = options;
    this.#headerBlocks = new HeaderBlockAssembler(MAX_HEADER_LIST);
    // Server preface (RFC 9113 §3.4): SETTINGS is our first frame. ENABLE_PUSH 0 as node:http2
    // sent it; the initial windows stay at their defaults.
    this.#output.queue(
      settingsFrame([
        [Setting.MAX_CONCURRENT_STREAMS, options.maxConcurrentStreams],
        [Setting.ENABLE_PUSH, 0],
        [Setting.MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST],
      ]),
    );
    this.#output.flush();
  }

  get blocked(): boolean {
    return this.#output.blocked;
  }

  /** Plaintext from the client. */
  receive(chunk: Buffer): void {
    if (this.#closed || this.#goawaySent) return;
    this.#output.cork();
    try {
      let at = 0;
      if (this.#prefaceLeft > 0) {
        const n = Math.min(this.#prefaceLeft, chunk.length);
        const offset = CLIENT_PREFACE.length - this.#prefaceLeft;
        if (!chunk.subarray(0, n).equals(CLIENT_PREFACE.subarray(offset, offset + n))) {
          throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'the client did not send the HTTP/2 connection preface');
        }
        this.#prefaceLeft -= n;
        at = n;
      }
      if (at < chunk.length) this.#reader.push(at === 0 ? chunk : chunk.subarray(at), (header, payload) => this.#onFrame(header, payload));
      this.#sendCredit();
    } catch (err) {
      this.#connectionError(err);
    } finally {
      this.#output.uncork();
    }
  }

  /** Graceful close: GOAWAY(NO_ERROR) with the last stream we took, then the wire ends. */
  close(): void {
    this.#shutdown(ErrorCode.NO_ERROR, '');
  }

  /** The wire is gone: every open stream is aborted. */
  wireClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#headerBlocks.discard();
    this.#output.discard();
    for (const stream of [...this.#streams.values()]) this.#closeStream(stream, true);
  }

  // --- frames in -----------------------------------------------------------------------------

  /** One frame; false stops the reader (the connection is closing). */
  #onFrame(header: FrameHeader, payload: Buffer): boolean {
    if (this.#goawaySent || this.#closed) return false;
    if (!this.#settingsReceived && header.type !== FrameType.SETTINGS) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `the client's first frame was type ${header.type}, not SETTINGS`);
    }
    const blockStreamId = this.#headerBlocks.openStreamId;
    if (blockStreamId !== 0 && (header.type !== FrameType.CONTINUATION || header.streamId !== blockStreamId)) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `frame type ${header.type} inside the header block of stream ${blockStreamId}`);
    }
    switch (header.type) {
      case FrameType.DATA:
        this.#onData(header, payload);
        break;
      case FrameType.HEADERS: {
        const block = this.#headerBlocks.headers(header, payload);
        if (block !== null) this.#onHeaderBlock(block);
        break;
      }
      case FrameType.PRIORITY:
        if (header.streamId === 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (header.length !== 5) {
          // A stream error, but RST_STREAM may not be sent on an idle stream (§6.4).
          if (header.streamId > this.#lastStreamId) throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, `PRIORITY of ${header.length} bytes`);
          this.#streamError(header.streamId, ErrorCode.FRAME_SIZE_ERROR);
        }
        break;
      case FrameType.RST_STREAM:
        this.#onRstStream(header);
        break;
      case FrameType.SETTINGS:
        this.#onSettings(header, payload);
        break;
      case FrameType.PUSH_PROMISE:
        throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'a client may not send PUSH_PROMISE');
      case FrameType.PING:
        if (header.streamId !== 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (header.length !== 8) throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, `PING of ${header.length} bytes`);
        if ((header.flags & Flag.ACK) === 0) this.#output.queueControl(pingAck(payload));
        break;
      case FrameType.GOAWAY:
        if (header.streamId !== 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
        if (header.length < 8) throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, `GOAWAY of ${header.length} bytes`);
        this.#goawayReceived = true;
        if (this.#streams.size === 0) this.close();
        break;
      case FrameType.WINDOW_UPDATE:
        this.#onWindowUpdate(header, payload);
        break;
      case FrameType.CONTINUATION: {
        const block = this.#headerBlocks.continuation(header, payload);
        if (block !== null) this.#onHeaderBlock(block);
        break;
      }
      default:
        // §5.5: unknown frame types are ignored.
        break;
    }
    return !this.#goawaySent && !this.#closed;
  }

  #onData(header: FrameHeader, payload: Buffer): void {
    const id = header.streamId;
    if (id === 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    if (id > this.#lastStreamId) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
    const data = unpad(header, payload);
    // §6.9: the whole frame counts against the connection window, whatever becomes of it.
    this.#recvWindow -= header.length;
    if (this.#recvWindow < 0) throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, `DATA of ${header.length} bytes overruns the connection window`);
    this.#owedConnectionCredit += header.length;
    const stream = this.#streams.get(id);
    if (stream === undefined && this.#resets?.resetLately(id) === true) return;
    if (stream === undefined || stream.remoteEnded) {
      // Closed, or half-closed (remote): a stream error (§5.1).
      this.#streamError(id, ErrorCode.STREAM_CLOSED);
      return;
    }
    stream.recvWindow -= header.length;
    if (stream.recvWindow < 0) {
      this.#streamError(id, ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    stream.owedCredit += header.length;
    stream.receiveData(data);
    if (stream.declaredLength >= 0 && stream.bodyBytes > stream.declaredLength) {
      this.#streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (stream.reading && !stream.overLimit) (this.#owingStreams ??= new Set()).add(stream);
    if (header.flags & Flag.END_STREAM) this.#remoteEnd(stream);
  }

  #remoteEnd(stream: ServerStream): void {
    // §8.1.1: a content-length that does not match the DATA makes the request malformed.
    if (stream.declaredLength >= 0 && !stream.overLimit && stream.bodyBytes !== stream.declaredLength) {
      this.#streamError(stream.id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    this.#owingStreams?.delete(stream);
    stream.receiveEnd();
    if (stream.localEnded) this.#closeStream(stream, false);
  }

  #onHeaderBlock(block: ReceivedHeaderBlock): void {
    const id = block.streamId;
    const decoded = block.decoded;
    const existing = this.#streams.get(id);
    if (existing !== undefined) {
      // Trailers: they must end the stream (§8.1).
      if (existing.remoteEnded) this.#streamError(id, ErrorCode.STREAM_CLOSED);
      else if (!block.endStream) this.#streamError(id, ErrorCode.PROTOCOL_ERROR);
      else this.#remoteEnd(existing);
      return;
    }
    if (id <= this.#lastStreamId) throw new H2ProtocolError(ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${id}`);
    if (id % 2 === 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `the client opened even stream ${id}`);
    this.#lastStreamId = id;
    if (this.#streams.size >= this.#options.maxConcurrentStreams) {
      this.#streamError(id, ErrorCode.REFUSED_STREAM);
      return;
    }
    const checked = checkRequestHeaders(decoded.fields);
    if (checked === null) {
      this.#streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    const stream = new ServerStream(this, {
      id,
      method: checked.method,
      url: checked.path,
      headers: checked.headers,
      recvWindow: DEFAULT_WINDOW,
      sendWindow: this.#peerInitialWindow,
      maxBodyBytes: this.#options.maxRequestBodyBytes,
    });
    this.#streams.set(id, stream);
    this.#options.onStreamCount?.(1);
    if (block.endStream) this.#remoteEnd(stream);
    if (decoded.listSize > MAX_HEADER_LIST) {
      // §10.5.1: too large a header list gets 431 rather than the handler.
      stream.writeHead(431, { 'content-type': 'text/plain; charset=utf-8' });
      stream.end(`request header list of ${decoded.listSize} bytes exceeds ${MAX_HEADER_LIST}\n`);
      return;
    }
    this.#options.onRequest(stream);
  }

  #onRstStream(header: FrameHeader): void {
    if (header.streamId === 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (header.length !== 4) throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, `RST_STREAM of ${header.length} bytes`);
    if (header.streamId > this.#lastStreamId) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${header.streamId}`);
    const stream = this.#streams.get(header.streamId);
    if (stream === undefined) return;
    this.#closeStream(stream, true);
    if (!stream.localEnded) (this.#resets ??= new StreamResets()).spendCancelToken();
  }

  #onSettings(header: FrameHeader, payload: Buffer): void {
    const initialWindow = readClientSettings(header, payload, this.#peerInitialWindow);
    if (initialWindow === null) return;
    const windowDelta = initialWindow - this.#peerInitialWindow;
    this.#peerInitialWindow = initialWindow;
    if (windowDelta !== 0) {
      // §6.9.2: every stream window moves by the difference, and may go negative.
      for (const stream of this.#streams.values()) {
        stream.sendWindow += windowDelta;
        if (stream.sendWindow > MAX_WINDOW) throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE takes stream ${stream.id} past 2^31-1`);
      }
    }
    this.#output.queueControl(SETTINGS_ACK);
    if (!this.#settingsReceived) {
      this.#settingsReceived = true;
      this.#options.onPreface?.();
    }
    if (windowDelta > 0) this.#sendAll();
  }

  #onWindowUpdate(header: FrameHeader, payload: Buffer): void {
    if (header.length !== 4) throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, `WINDOW_UPDATE of ${header.length} bytes`);
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    const id = header.streamId;
    if (id === 0) {
      if (increment === 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'connection WINDOW_UPDATE of 0');
      this.#output.window += increment;
      if (this.#output.window > MAX_WINDOW) throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, `connection WINDOW_UPDATE of ${increment} takes the window past 2^31-1`);
      this.#sendAll();
      return;
    }
    if (id > this.#lastStreamId) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    if (increment === 0) {
      this.#streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) {
      this.#streamError(id, ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    this.sendStream(stream);
    // Sending can only block the output, never unblock it: only this stream may have drained.
    if (!this.#output.blocked && stream.needDrain && stream.queuedBytes === 0) stream.drained();
  }

  // --- streams (StreamOwner) ------------------------------------------------------------------

  sendStream(stream: ServerStream): void {
    if (stream.closed || this.#closed) return;
    this.#output.frameStream(stream);
    if (stream.localEnded) {
      if (!stream.remoteEnded) {
        // §8.1: the response is complete; the rest of the request is not wanted.
        this.#noteReset(stream.id);
        this.#output.queue(rstStreamFrame(stream.id, ErrorCode.NO_ERROR));
      }
      this.#closeStream(stream, false);
    }
    this.#output.flush();
  }

  creditStream(stream: ServerStream): void {
    if (stream.owedCredit === 0 || stream.closed) return;
    (this.#owingStreams ??= new Set()).add(stream);
    this.#sendCredit();
    this.#output.flush();
  }

  resetStream(stream: ServerStream, code: number): void {
    this.#noteReset(stream.id);
    this.#output.queue(rstStreamFrame(stream.id, code));
    this.#closeStream(stream, true);
    this.#output.flush();
  }

  runListener(listener: () => void): void {
    try {
      listener();
    } catch (err) {
      this.#options.onError?.(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** RST_STREAM for a stream error (§5.4.2); the stream, if open, is closed. */
  #streamError(id: number, code: number): void {
    this.#noteReset(id);
    this.#output.queueControl(rstStreamFrame(id, code));
    const stream = this.#streams.get(id);
    if (stream !== undefined) this.#closeStream(stream, true);
  }

  #noteReset(id: number): void {
    (this.#resets ??= new StreamResets()).noteReset(id);
  }

  #closeStream(stream: ServerStream, aborted: boolean): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    this.#owingStreams?.delete(stream);
    stream.markClosed(aborted || !stream.localEnded);
    this.#options.onStreamCount?.(-1);
    if (this.#goawayReceived && this.#streams.size === 0 && !this.#closed) queueMicrotask(() => this.close());
  }

  /** Sends what every stream has queued, after a window opened or the transport drained. */
  #sendAll(): void {
    if (this.#closed) return;
    this.#output.cork();
    try {
      for (const stream of this.#streams.values()) {
        if (stream.queuedBytes > 0 || stream.head !== null || (stream.endRequested && !stream.localEnded)) this.sendStream(stream);
      }
    } finally {
      this.#output.uncork();
    }
    this.#notifyDrained();
  }

  #notifyDrained(): void {
    if (this.#output.blocked) return;
    for (const stream of this.#streams.values()) {
      if (stream.needDrain && stream.queuedBytes === 0) stream.drained();
    }
  }

  // --- frames out ----------------------------------------------------------------------------

  #sendCredit(): void {
    if (this.#owedConnectionCredit > 0) {
      this.#output.queueControl(windowUpdateFrame(0, this.#owedConnectionCredit));
      this.#recvWindow += this.#owedConnectionCredit;
      this.#owedConnectionCredit = 0;
    }
    if (this.#owingStreams === null) return;
    for (const stream of this.#owingStreams) {
      if (stream.owedCredit > 0 && !stream.remoteEnded && !stream.overLimit) {
        this.#output.queueControl(windowUpdateFrame(stream.id, stream.owedCredit));
        stream.recvWindow += stream.owedCredit;
      }
      stream.owedCredit = 0;
    }
    this.#owingStreams = null;
  }

  // --- closing -------------------------------------------------------------------------------

  #connectionError(err: unknown): void {
    let error: H2ProtocolError;
    if (err instanceof H2ProtocolError) error = err;
    else if (err instanceof FrameSizeError) error = new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, err.message);
    else error = new H2ProtocolError(ErrorCode.INTERNAL_ERROR, err instanceof Error ? err.message : String(err));
    this.#options.onError?.(error);
    this.#shutdown(error.code, error.message);
  }

  #shutdown(code: number, debug: string): void {
    if (this.#goawaySent || this.#closed) return;
    this.#goawaySent = true;
    this.#output.queue(goawayFrame(this.#lastStreamId, code, debug));
    // Now, even inside a read or while the transport is full: the wire ends right after.
    this.#output.finish();
    if (code !== ErrorCode.NO_ERROR) {
      for (const stream of [...this.#streams.values()]) this.#closeStream(stream, true);
    }
    this.#wire.end();
    const timer = setTimeout(() => this.#wire.destroy(), this.#options.closeGraceMs ?? 1000);
    timer.unref();
  }
}

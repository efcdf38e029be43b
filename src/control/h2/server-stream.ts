// One HTTP/2 request stream of our server connection, seen by handlers as both the request
// (method, path, headers, a bounded body) and the response (status and headers, a body with
// back-pressure, end, reset). One object per stream: a map poll holds it for hours. Framing,
// windows and the wire belong to the connection (server-connection.ts); this holds the
// stream's state and queues.
import { bodyTooLarge, pathOf, type NoiseRequest, type NoiseResponse } from '../noise-request.js';
import { encodeResponseHeaders, type ResponseHeaders } from './hpack-encoder.js';

/** What a stream needs from its connection. */
export interface StreamOwner {
  /** Sends what the stream has queued (head, DATA, END_STREAM) as far as the windows allow. */
  sendStream(stream: ServerStream): void;
  /** The stream now reads its body: credit what it has been sent. */
  creditStream(stream: ServerStream): void;
  /** RST_STREAM with `code` and close the stream. */
  resetStream(stream: ServerStream, code: number): void;
  /** Whether the transport is full (writes wait for 'drain'). */
  readonly blocked: boolean;
  /** Runs a listener and reports (not throws) what it throws. */
  runListener(listener: () => void): void;
}

type StreamEvent = 'close' | 'drain';

interface BodyWaiter {
  readonly maxBytes: number;
  readonly resolve: (body: Buffer) => void;
  readonly reject: (err: Error) => void;
}

export class ServerStream implements NoiseRequest, NoiseResponse {
  readonly id: number;
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly #owner: StreamOwner;

  // Receiving.
  /** Our receive window for this stream, as the client counts it. */
  recvWindow: number;
  /** Received bytes not yet credited back with WINDOW_UPDATE. */
  owedCredit = 0;
  /** END_STREAM received. */
  remoteEnded = false;
  /** readBody was called: received data is credited as it arrives. */
  reading = false;
  /** The body passed the connection's limit: no more is kept or credited. */
  overLimit = false;
  readonly #maxBodyBytes: number;
  /** content-length as declared, or -1. */
  readonly declaredLength: number;
  bodyBytes = 0;
  #body: Buffer[] = [];
  #waiter: BodyWaiter | null = null;

  // Sending.
  /** The client's window for this stream (may go negative after SETTINGS, RFC 9113 §6.9.2). */
  sendWindow: number;
  /** Encoded response header block not yet framed. */
  head: Buffer | null = null;
  #headersSent = false;
  readonly queue: Buffer[] = [];
  queuedBytes = 0;
  #queueOffset = 0;
  /** end() was called: END_STREAM goes out after the queue. */
  endRequested = false;
  /** END_STREAM framed. */
  localEnded = false;
  /** A write returned false: emit 'drain' when the queue empties. */
  needDrain = false;
  #closed = false;
  #destroyed = false;
  #listeners: Array<{ event: StreamEvent; listener: () => void; once: boolean }> | null = null;

  constructor(
    owner: StreamOwner,
    init: { id: number; method: string; url: string; headers: Record<string, string>; recvWindow: number; sendWindow: number; maxBodyBytes: number },
  ) {
    this.#owner = owner;
    this.id = init.id;
    this.method = init.method;
    this.url = init.url;
    this.headers = init.headers;
    this.recvWindow = init.recvWindow;
    this.sendWindow = init.sendWindow;
    this.#maxBodyBytes = init.maxBodyBytes;
    const declared = init.headers['content-length'];
    this.declaredLength = declared !== undefined && /^\d{1,15}$/.test(declared) ? Number(declared) : -1;
  }

  // --- request ---------------------------------------------------------------------------------

  readBody(maxBytes: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.#destroyed && !this.remoteEnded) {
        reject(new Error(`${pathOf(this)}: request aborted by the client`));
        return;
      }
      const limit = Math.min(maxBytes, this.#maxBodyBytes);
      if (this.declaredLength > limit) {
        reject(bodyTooLarge(pathOf(this), this.declaredLength, limit));
        return;
      }
      if (this.overLimit || this.bodyBytes > limit) {
        reject(bodyTooLarge(pathOf(this), this.bodyBytes, limit));
        return;
      }
      if (this.remoteEnded) {
        resolve(this.#takeBody());
        return;
      }
      this.#waiter = { maxBytes: limit, resolve, reject };
      if (!this.reading) {
        this.reading = true;
        this.#owner.creditStream(this);
      }
    });
  }

  /** Body bytes from a DATA frame (padding removed). */
  receiveData(data: Buffer): void {
    if (this.overLimit) return;
    this.bodyBytes += data.length;
    const limit = this.#waiter?.maxBytes ?? this.#maxBodyBytes;
    if (this.bodyBytes > limit) {
      this.overLimit = true;
      this.#body = [];
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter?.reject(bodyTooLarge(pathOf(this), this.bodyBytes, limit));
      return;
    }
    if (data.length > 0) this.#body.push(data);
  }

  receiveEnd(): void {
    this.remoteEnded = true;
    const waiter = this.#waiter;
    if (waiter === null) return;
    this.#waiter = null;
    waiter.resolve(this.#takeBody());
  }

  #takeBody(): Buffer {
    const parts = this.#body;
    this.#body = [];
    // A view into a decrypted record would pin the record: handlers get their own bytes
    // (Buffer.concat already copies).
    if (parts.length === 1) return Buffer.from(parts[0]!);
    return Buffer.concat(parts, this.bodyBytes);
  }

  // --- response --------------------------------------------------------------------------------

  get headersSent(): boolean {
    return this.#headersSent;
  }

  get writableEnded(): boolean {
    return this.endRequested;
  }

  /** The stream is closed: the response completed, or it was reset, or the connection went away. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closed before the response completed. */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  writeHead(status: number, headers: ResponseHeaders = {}): this {
    if (this.#headersSent) throw new Error(`${pathOf(this)}: response headers already sent`);
    this.#headersSent = true;
    if (this.#closed) return this;
    this.head = encodeResponseHeaders(status, headers);
    // Sent with the first body write or end in this tick (one record), else on its own.
    queueMicrotask(() => {
      if (this.head !== null) this.#owner.sendStream(this);
    });
    return this;
  }

  write(chunk: Buffer | string): boolean {
    if (this.#closed || this.endRequested) return false;
    if (!this.#headersSent) this.writeHead(200);
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (bytes.length > 0) {
      this.queue.push(bytes);
      this.queuedBytes += bytes.length;
    }
    this.#owner.sendStream(this);
    const drained = this.queuedBytes === 0 && !this.#owner.blocked;
    if (!drained) this.needDrain = true;
    return drained;
  }

  end(chunk?: Buffer | string): void {
    if (this.#closed || this.endRequested) return;
    if (!this.#headersSent) this.writeHead(200);
    if (chunk !== undefined && chunk.length > 0) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      this.queue.push(bytes);
      this.queuedBytes += bytes.length;
    }
    this.endRequested = true;
    this.#owner.sendStream(this);
  }

  /** Ends the stream at once with RST_STREAM(code) (RFC 9113 §7 codes). */
  reset(code: number): void {
    if (this.#closed) return;
    this.#owner.resetStream(this, code);
  }

  on(event: StreamEvent, listener: () => void): this {
    (this.#listeners ??= []).push({ event, listener, once: false });
    return this;
  }

  once(event: StreamEvent, listener: () => void): this {
    (this.#listeners ??= []).push({ event, listener, once: true });
    return this;
  }

  off(event: StreamEvent, listener: () => void): this {
    const at = this.#listeners?.findIndex((l) => l.event === event && l.listener === listener) ?? -1;
    if (at >= 0) this.#listeners!.splice(at, 1);
    return this;
  }

  // --- for the connection ------------------------------------------------------------------------

  /** Moves up to `limit` queued bytes into `into`, as views, in order. */
  take(limit: number, into: Buffer[]): number {
    let taken = 0;
    while (taken < limit && this.queue.length > 0) {
      const head = this.queue[0]!;
      const available = head.length - this.#queueOffset;
      const n = Math.min(available, limit - taken);
      into.push(n === head.length ? head : head.subarray(this.#queueOffset, this.#queueOffset + n));
      taken += n;
      if (n === available) {
        this.queue.shift();
        this.#queueOffset = 0;
      } else {
        this.#queueOffset += n;
      }
    }
    this.queuedBytes -= taken;
    return taken;
  }

  /** The stream is over: `aborted` when the response did not complete. Runs 'close' later. */
  markClosed(aborted: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#destroyed = aborted;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.head = null;
    this.#body = [];
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.reject(new Error(`${pathOf(this)}: request aborted by the client`));
    // As node's streams do: 'close' after the current operation, never inside the frame loop.
    process.nextTick(() => this.#emit('close'));
  }

  /** The queue emptied after a write returned false. */
  drained(): void {
    this.needDrain = false;
    this.#emit('drain');
  }

  #emit(event: StreamEvent): void {
    const listeners = this.#listeners;
    if (listeners === null) return;
    const matching = listeners.filter((l) => l.event === event);
    if (matching.length === 0) return;
    this.#listeners = listeners.filter((l) => l.event !== event || !l.once);
    for (const { listener } of matching) this.#owner.runListener(listener);
  }
}


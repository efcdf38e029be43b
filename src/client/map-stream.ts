// A /machine/map response stream as an async iterable of MapResponses. Decoding (zstd + JSON)
// is the expensive part for a load generator, so `shouldDecode` lets it sample: skipped
// messages are only counted. Undelivered decoded messages are bounded: past `highWaterMark`
// the HTTP/2 stream is paused (flow control then holds the server back).
import { constants as http2Constants, type ClientHttp2Stream } from 'node:http2';
import type * as tailcfg from '../tailcfg/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { ClientErrors } from './errors.js';
import { MapFrameDecoder, decodeMapMessage, DEFAULT_MAX_MAP_MESSAGE_BYTES } from './map-frame-decoder.js';

/**
 * Decoded messages shared between streams, by their compressed bytes. The server sends one
 * frame to all the peers of a change, so a load generator holding thousands of clients in one
 * process would otherwise decode the same bytes thousands of times and measure its own lag.
 * Messages from it are shared: treat them as read-only. Holds the last `capacity` payloads.
 */
export class SharedDecodeCache {
  readonly #capacity: number;
  readonly #entries = new Map<string, tailcfg.MapResponse>();
  hits = 0;

  constructor(capacity = 256) {
    this.#capacity = capacity;
  }

  decode(payload: Buffer, decode: () => tailcfg.MapResponse): tailcfg.MapResponse {
    const key = payload.toString('latin1');
    const cached = this.#entries.get(key);
    if (cached !== undefined) {
      this.hits++;
      return cached;
    }
    const message = decode();
    this.#entries.set(key, message);
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
    return message;
  }
}

export interface MapStreamOptions {
  /** Decode message `index` (0-based)? Default: every message. */
  shouldDecode?: (index: number) => boolean;
  /** Share decoded messages with other streams (see SharedDecodeCache). */
  decodeCache?: SharedDecodeCache;
  /** Decoded messages held before the stream is paused. Default 64. */
  highWaterMark?: number;
  maxMessageBytes?: number;
  /**
   * Called for each decoded message as it arrives, with the time its last bytes were read
   * (performance.now(), before decoding). A load generator measures delivery with it; the
   * message is still queued for next().
   */
  onMessage?: (message: tailcfg.MapResponse, arrivedAtMs: number) => void;
}

export interface MapStreamStats {
  /** Messages received (decoded or not). */
  messages: number;
  decoded: number;
  skipped: number;
  /** Bytes of message payloads on the wire (after the length prefixes, still compressed). */
  payloadBytes: number;
}

export class MapStream implements AsyncIterable<tailcfg.MapResponse> {
  readonly #stream: ClientHttp2Stream;
  readonly #compressed: boolean;
  readonly #decoder: MapFrameDecoder;
  readonly #shouldDecode: (index: number) => boolean;
  readonly #highWaterMark: number;
  readonly #onMessage: MapStreamOptions['onMessage'];
  readonly #decodeCache: SharedDecodeCache | null;
  readonly #queue: tailcfg.MapResponse[] = [];
  #waiter: (() => void) | null = null;
  #done = false;
  #failure: Error | null = null;
  readonly #stats: MapStreamStats = { messages: 0, decoded: 0, skipped: 0, payloadBytes: 0 };

  constructor(stream: ClientHttp2Stream, compressed: boolean, options: MapStreamOptions = {}) {
    this.#stream = stream;
    this.#compressed = compressed;
    this.#decoder = new MapFrameDecoder(options.maxMessageBytes ?? DEFAULT_MAX_MAP_MESSAGE_BYTES);
    this.#shouldDecode = options.shouldDecode ?? (() => true);
    this.#highWaterMark = options.highWaterMark ?? 64;
    this.#onMessage = options.onMessage;
    this.#decodeCache = options.decodeCache ?? null;
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.once('end', () => {
      if (!this.#decoder.atBoundary) this.#fail(new HeadwayError(ClientErrors.BAD_MAP_FRAME, `client: map stream ended inside message ${this.#decoder.messages}`));
      else this.#finish();
    });
    stream.once('close', () => {
      if (!stream.readableEnded) this.#fail(new HeadwayError(ClientErrors.REQUEST_FAILED, `client: map stream reset (code ${stream.rstCode ?? '?'})`));
      else this.#finish();
    });
  }

  get stats(): MapStreamStats {
    return { ...this.#stats };
  }

  /** The next decoded MapResponse, or null when the stream ended. Rejects on a stream failure. */
  async next(timeoutMs?: number): Promise<tailcfg.MapResponse | null> {
    let timer: NodeJS.Timeout | undefined;
    try {
      while (this.#queue.length === 0) {
        if (this.#failure !== null) throw this.#failure;
        if (this.#done) return null;
        await new Promise<void>((resolve, reject) => {
          this.#waiter = resolve;
          if (timeoutMs !== undefined) {
            timer = setTimeout(() => reject(new HeadwayError(ClientErrors.REQUEST_FAILED, `client: no map message within ${timeoutMs} ms`)), timeoutMs);
          }
        });
        clearTimeout(timer);
      }
      const message = this.#queue.shift() ?? null;
      if (this.#queue.length < this.#highWaterMark && this.#stream.isPaused()) this.#stream.resume();
      return message;
    } finally {
      clearTimeout(timer);
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<tailcfg.MapResponse> {
    for (;;) {
      const message = await this.next();
      if (message === null) return;
      yield message;
    }
  }

  /** Cancels the poll (RST_STREAM CANCEL, what tailscaled does when it drops a poll). */
  close(): void {
    if (!this.#stream.destroyed) this.#stream.close(http2Constants.NGHTTP2_CANCEL);
    this.#finish();
  }

  #onData(chunk: Buffer): void {
    const arrivedAtMs = performance.now();
    let payloads: Buffer[];
    try {
      payloads = this.#decoder.push(chunk);
    } catch (err) {
      this.#fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    for (const payload of payloads) {
      const index = this.#stats.messages++;
      this.#stats.payloadBytes += payload.length;
      if (!this.#shouldDecode(index)) {
        this.#stats.skipped++;
        continue;
      }
      try {
        const decode = (): tailcfg.MapResponse => decodeMapMessage<tailcfg.MapResponse>(payload, index, this.#compressed);
        const message = this.#decodeCache === null ? decode() : this.#decodeCache.decode(payload, decode);
        this.#onMessage?.(message, arrivedAtMs);
        this.#queue.push(message);
      } catch (err) {
        this.#fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.#stats.decoded++;
    }
    if (this.#queue.length >= this.#highWaterMark) this.#stream.pause();
    this.#wake();
  }

  #fail(err: Error): void {
    if (this.#failure !== null || this.#done) return;
    this.#failure = err;
    if (!this.#stream.destroyed) this.#stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
    this.#wake();
  }

  #finish(): void {
    this.#done = true;
    this.#wake();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }
}

// Pulls exact byte counts off a Readable before it is handed to something else (the HTTP/1.1
// head, the handshake frame, the early payload). `release()` detaches and returns what was read
// ahead, which the next owner takes as its first bytes.
import type { Readable } from 'node:stream';

export class StreamReader {
  readonly #stream: Readable;
  #buffered: Buffer = Buffer.alloc(0);
  #ended = false;
  #failure: Error | null = null;
  #wake: (() => void) | null = null;
  readonly #onData = (chunk: Buffer): void => {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    this.#notify();
  };
  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#notify();
  };
  readonly #onError = (err: Error): void => {
    this.#failure = err;
    this.#notify();
  };

  constructor(stream: Readable) {
    this.#stream = stream;
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('close', this.#onEnd);
    stream.on('error', this.#onError);
  }

  get buffered(): Buffer {
    return this.#buffered;
  }

  /** Resolves once at least `n` bytes are buffered; rejects if the stream ends first. */
  async need(n: number, what: string): Promise<void> {
    while (this.#buffered.length < n) {
      if (this.#failure !== null) throw this.#failure;
      if (this.#ended) throw new Error(`connection closed while reading ${what} (${this.#buffered.length} of ${n} bytes)`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Waits until `marker` appears within the first `limit` bytes; returns its offset. */
  async find(marker: Buffer, limit: number, what: string): Promise<number> {
    for (;;) {
      const at = this.#buffered.indexOf(marker);
      if (at !== -1 && at + marker.length <= limit) return at;
      if (this.#buffered.length >= limit) throw new Error(`${what} is longer than ${limit} bytes`);
      await this.need(this.#buffered.length + 1, what);
    }
  }

  take(n: number): Buffer {
    const out = this.#buffered.subarray(0, n);
    this.#buffered = this.#buffered.subarray(n);
    return out;
  }

  /** Stops reading and returns the bytes read ahead. The stream is left paused. */
  release(): Buffer {
    this.#stream.off('data', this.#onData);
    this.#stream.off('end', this.#onEnd);
    this.#stream.off('close', this.#onEnd);
    this.#stream.off('error', this.#onError);
    this.#stream.pause();
    const rest = this.#buffered;
    this.#buffered = Buffer.alloc(0);
    return rest;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

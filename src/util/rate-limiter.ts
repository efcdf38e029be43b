// Rate limits keyed by who is asking (a source address, a key prefix): one token bucket per
// key, refilled continuously. The table is bounded: past `maxKeys` the least recently
// inserted bucket is forgotten, so a flood of distinct keys cannot grow memory; a forgotten key
// merely starts again with a full bucket.

export interface RateLimit {
  /** Requests allowed per minute, sustained; also the burst. 0 turns the limit off. */
  readonly perMinute: number;
}

export class KeyedRateLimiter {
  readonly perMinute: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** key -> [tokens, last refill ms] */
  readonly #buckets = new Map<string, [number, number]>();

  constructor(limit: RateLimit, options: { maxKeys?: number; now?: () => number } = {}) {
    this.perMinute = limit.perMinute;
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Takes one token for `key`; false when the key is over its rate. */
  tryTake(key: string): boolean {
    if (this.perMinute <= 0) return true;
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxKeys) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      bucket = [this.perMinute, now];
      this.#buckets.set(key, bucket);
    } else {
      bucket[0] = Math.min(this.perMinute, bucket[0] + ((now - bucket[1]) * this.perMinute) / 60_000);
      bucket[1] = now;
    }
    if (bucket[0] < 1) return false;
    bucket[0] -= 1;
    return true;
  }

  /** Seconds until `key` has a token again (for Retry-After). */
  retryAfterSeconds(key: string): number {
    const bucket = this.#buckets.get(key);
    if (bucket === undefined || bucket[0] >= 1 || this.perMinute <= 0) return 0;
    return Math.ceil(((1 - bucket[0]) * 60) / this.perMinute);
  }

  get size(): number {
    return this.#buckets.size;
  }
}

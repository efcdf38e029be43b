/**
 * @module derp/token-bucket
 * A token bucket that may go into debt: a reader takes what a frame costs and, if the bucket
 * is now negative, waits `waitMs()` before reading more. That is how Tailscale's server paces a
 * client (it waits before reading, so TCP flow control pushes back) rather than dropping.
 */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  #tokens: number;
  #lastRefillMs: number;
  readonly #now: () => number;

  constructor(ratePerSecond: number, burst: number, now: () => number = () => performance.now()) {
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#tokens = burst;
    this.#now = now;
    this.#lastRefillMs = now();
  }

  #refill(): void {
    const now = this.#now();
    const elapsedMs = now - this.#lastRefillMs;
    if (elapsedMs > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsedMs * this.ratePerSecond) / 1000);
      this.#lastRefillMs = now;
    }
  }

  /** Takes n tokens, going into debt if needed. */
  take(n: number): void {
    this.#refill();
    this.#tokens -= n;
  }

  /** Takes n tokens only if they are all there. */
  tryTake(n: number): boolean {
    this.#refill();
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Milliseconds until the bucket is out of debt (0 when it is not in debt). */
  waitMs(): number {
    this.#refill();
    if (this.#tokens >= 0) return 0;
    return Math.ceil((-this.#tokens * 1000) / this.ratePerSecond);
  }
}

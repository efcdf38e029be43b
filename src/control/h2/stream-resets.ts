// Stream-reset bookkeeping of one HTTP/2 server connection: the streams we reset lately (their
// DATA still in flight is ignored, RFC 9113 §5.1 "closed") and the budget of streams the client
// may cancel (rapid reset, CVE-2023-44487). A connection makes one only once a stream is reset.
import { ErrorCode, H2ProtocolError } from './frames.js';

/** Client-cancelled streams allowed at once, and their refill per second (nghttp2's figures). */
const RESET_BURST = 1000;
const RESET_RATE = 33;
/** How many of our latest resets are remembered. */
const RECENT_RESETS = 16;

export class StreamResets {
  readonly #recent: number[] = [];
  #tokens = RESET_BURST;
  #refilledMs = 0;

  /** We reset stream `id` (RST_STREAM sent). */
  noteReset(id: number): void {
    if (this.#recent.length >= RECENT_RESETS) this.#recent.shift();
    this.#recent.push(id);
  }

  resetLately(id: number): boolean {
    return this.#recent.includes(id);
  }

  /**
   * Each stream the client cancels before its response ended costs a token; tokens refill at
   * RESET_RATE a second up to RESET_BURST. A client that opens and cancels streams faster makes
   * the server run handlers for nothing (rapid reset): it gets GOAWAY(ENHANCE_YOUR_CALM).
   */
  spendCancelToken(): void {
    const now = performance.now();
    this.#tokens = Math.min(RESET_BURST, this.#tokens + ((now - this.#refilledMs) / 1000) * RESET_RATE);
    this.#refilledMs = now;
    this.#tokens -= 1;
    if (this.#tokens < 0) throw new H2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, `the client cancelled more than ${RESET_BURST} streams at over ${RESET_RATE} a second`);
  }
}

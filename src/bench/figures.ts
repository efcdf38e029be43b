// Small arithmetic the benchmarks share: quantiles of sorted samples, one-decimal rounding for
// reports, and when a change reached the last of the peers that should hear it.

/** The q-quantile (0..1) of ascending samples; 0 for none. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** One decimal, as the reports print figures. */
export function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/**
 * When the last expected peer received a change (`arrivals`: receiving device index -> time),
 * or null when one of them never did. Peers are node ids; device index = node id - 1.
 */
export function lastArrival(arrivals: ReadonlyMap<number, number> | undefined, expectedPeers: readonly number[]): number | null {
  let last = 0;
  for (const peerId of expectedPeers) {
    const when = arrivals?.get(peerId - 1);
    if (when === undefined) return null;
    last = Math.max(last, when);
  }
  return last;
}

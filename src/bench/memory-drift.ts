// How flat a series of memory samples (one per soak round) is after warm-up. A single sample
// swings by about ±2% from one round to the next (the heap after a full collection still holds
// whatever sessions, frames and reconnects are in flight at that instant), so one sample makes a
// poor baseline: the baseline is the median of the first three samples after warm-up, and the
// trend (a least-squares line through every sample after warm-up, its rise over the run) is
// reported next to the largest single deviation.
import { round } from './figures.js';

export interface MemoryDrift {
  /** Samples discarded as warm-up: the first tenth of the run, at least one. */
  readonly warmupSamples: number;
  readonly baseline: number;
  /** Largest |sample - baseline| / baseline after warm-up, in %. */
  readonly maxDriftPct: number;
  /** Rise of the fitted line from the first to the last sample after warm-up, in % of the baseline. */
  readonly trendPct: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function memoryDrift(samples: readonly number[]): MemoryDrift {
  if (samples.length === 0) throw new Error('memoryDrift: no samples');
  const warmupSamples = samples.length > 1 ? Math.max(1, Math.ceil(samples.length / 10)) : 0;
  const warm = samples.slice(warmupSamples);
  const baseline = median(warm.slice(0, 3));
  const maxDriftPct = Math.max(...warm.map((s) => (Math.abs(s - baseline) / baseline) * 100));
  let trendPct = 0;
  if (warm.length > 1) {
    const n = warm.length;
    const meanX = (n - 1) / 2;
    const meanY = warm.reduce((a, b) => a + b, 0) / n;
    let sxy = 0;
    let sxx = 0;
    warm.forEach((y, x) => { sxy += (x - meanX) * (y - meanY); sxx += (x - meanX) ** 2; });
    trendPct = ((sxy / sxx) * (n - 1) / baseline) * 100;
  }
  return { warmupSamples, baseline, maxDriftPct: round(maxDriftPct), trendPct: round(trendPct) };
}

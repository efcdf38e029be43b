import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { memoryDrift } from './memory-drift.js';

describe('memoryDrift', () => {
  it('takes the median of three samples after a tenth of the run as the baseline', () => {
    const samples = [90, 60, 70, 61, 62, 60, 61, 62, 60, 61, 62, 60];
    const d = memoryDrift(samples);
    assert.equal(d.warmupSamples, 2);
    assert.equal(d.baseline, 62);
    assert.equal(d.maxDriftPct, 12.9); // the 70 right after warm-up
    assert.ok(Math.abs(d.trendPct) < 10);
  });

  it('sees a steady leak as a trend even when every step is small', () => {
    const samples = Array.from({ length: 30 }, (_, i) => 100 + i * 0.5);
    const d = memoryDrift(samples);
    assert.equal(d.warmupSamples, 3);
    assert.equal(d.baseline, 102);
    assert.equal(d.trendPct, 12.7); // 26 steps of 0.5 over a baseline of 102
    assert.equal(d.maxDriftPct, 12.3); // 114.5 against 102
  });

  it('reports a flat, noisy series as flat', () => {
    const samples = Array.from({ length: 30 }, (_, i) => 100 + (i % 2 === 0 ? 2 : -2));
    const d = memoryDrift(samples);
    assert.ok(Math.abs(d.trendPct) < 1, `trend ${d.trendPct}`);
    assert.ok(d.maxDriftPct <= 4.2);
  });

  it('refuses an empty series', () => {
    assert.throws(() => memoryDrift([]), /no samples/);
  });
});

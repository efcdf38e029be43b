// The benchmark workload's addresses must be ones the store accepts at every size the engine
// benchmark runs (it stopped past 65,535 nodes when slot 0x10d82 became `fd7a:115c:a1e0::10d82`).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { benchAddresses } from '../policy/policy.bench.js';
import { formatIP, tryParseIP } from '../util/ip.js';

describe('benchmark workload addresses', () => {
  it('are valid, canonical and distinct for 100,000 slots', () => {
    const seen = new Set<string>();
    for (let slot = 1; slot <= 100_000; slot++) {
      const { ipv4, ipv6 } = benchAddresses(slot);
      for (const text of [ipv4, ipv6]) {
        const parsed = tryParseIP(text);
        assert.ok(parsed !== null, `slot ${slot}: ${text} is not an address`);
        assert.equal(formatIP(parsed), text, `slot ${slot}: ${text} is not canonical`);
        assert.ok(!seen.has(text), `slot ${slot}: ${text} repeats`);
        seen.add(text);
      }
    }
    assert.deepEqual(benchAddresses(0x10d82), { ipv4: '100.65.13.130', ipv6: 'fd7a:115c:a1e0::1:d82' });
  });
});

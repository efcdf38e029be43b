import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedRateLimiter } from './rate-limiter.js';

describe('KeyedRateLimiter', () => {
  it('allows a burst of perMinute, then refills at perMinute per minute, per key', () => {
    let now = 0;
    const limiter = new KeyedRateLimiter({ perMinute: 3 }, { now: () => now });
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.tryTake('a')), [true, true, true, false]);
    assert.equal(limiter.tryTake('b'), true, 'another key has its own bucket');
    assert.equal(limiter.retryAfterSeconds('a'), 20);
    now += 20_000;
    assert.equal(limiter.tryTake('a'), true);
    assert.equal(limiter.tryTake('a'), false);
  });

  it('keeps at most maxKeys buckets', () => {
    const limiter = new KeyedRateLimiter({ perMinute: 1 }, { maxKeys: 10 });
    for (let i = 0; i < 1000; i++) limiter.tryTake(`k${i}`);
    assert.equal(limiter.size, 10);
  });

  it('does nothing when the limit is 0', () => {
    const limiter = new KeyedRateLimiter({ perMinute: 0 });
    for (let i = 0; i < 100; i++) assert.equal(limiter.tryTake('a'), true);
  });
});

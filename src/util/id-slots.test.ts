// IdSlots: values by node id, dense ids in a typed array and far ids in a Map.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IdSlots } from './id-slots.js';

describe('IdSlots', () => {
  it('returns what was set, and the absent value for ids never set or unset', () => {
    const slots = new IdSlots(-1, 4);
    assert.equal(slots.get(0), -1);
    slots.set(3, 7);
    slots.set(100_000, 9);
    assert.equal(slots.get(3), 7);
    assert.equal(slots.get(100_000), 9);
    assert.equal(slots.get(99_999), -1, 'cells opened by growth read as absent');
    slots.unset(3);
    assert.equal(slots.get(3), -1);
    assert.equal(slots.get(-5), -1);
  });

  it('keeps ids far past the dense range in a Map', () => {
    const slots = new IdSlots(-1);
    slots.set(2 ** 31, 5);
    assert.equal(slots.get(2 ** 31), 5);
    assert.equal(slots.get(2 ** 31 + 1), -1);
    slots.unset(2 ** 31);
    assert.equal(slots.get(2 ** 31), -1);
  });

  it('refuses an id that is not a non-negative integer, saying which', () => {
    const slots = new IdSlots(-1);
    assert.throws(() => slots.set(-1, 1), /id -1/);
    assert.throws(() => slots.set(1.5, 1), /id 1.5/);
  });
});

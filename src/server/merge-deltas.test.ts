// Several policy deltas applied one after the other, reported as one (a SCIM deactivation takes
// each of the user's devices out of the index in turn).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EMPTY_POLICY_DELTA, type PolicyDelta } from '../policy/index.js';
import { mergeDeltas } from './tailnet-policy.js';

const delta = (parts: Partial<PolicyDelta>): PolicyDelta => ({ ...EMPTY_POLICY_DELTA, ...parts });

describe('mergeDeltas', () => {
  it('cancels a pair lost then gained again, unions the rest, and drops nodes no longer present from the "after" lists', () => {
    const merged = mergeDeltas([
      delta({ lost: new Map([[1, [2, 3]]]), filterChanged: [1, 9], selfChanged: [1] }),
      delta({ gained: new Map([[1, [3]], [4, [5]]]), filterChanged: [4], sshChanged: [9] }),
    ], (id) => id !== 9);
    assert.deepEqual([...merged.lost], [[1, [2]]], 'lost 3 then gained 3 again: no change for the pair');
    assert.deepEqual([...merged.gained], [[4, [5]]]);
    assert.deepEqual(merged.filterChanged, [1, 4], 'node 9 is gone');
    assert.deepEqual(merged.sshChanged, []);
    assert.deepEqual(merged.selfChanged, [1]);
  });

  it('returns a single delta as it is', () => {
    const only = delta({ filterChanged: [7] });
    assert.equal(mergeDeltas([only], () => true), only);
  });
});

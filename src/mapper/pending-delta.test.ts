import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeId } from '../model/index.js';
import { MARK_FULL, PendingDelta } from './pending-delta.js';

const id = (n: number): NodeId => n as NodeId;
const marks = (p: PendingDelta): unknown[] => [...p.peers()].sort((a, b) => a[0] - b[0]);

describe('PendingDelta', () => {
  it('keeps one mark per peer, the strongest, merging patch fields', () => {
    const p = new PendingDelta(100);
    assert.ok(p.empty);
    p.markPatch(id(7), 1);
    p.markPatch(id(7), 4);
    assert.equal(p.peerCount, 1);
    assert.equal(p.onlyPeerId, 7);
    assert.equal(p.onlyPeerMark, 5);
    p.markFull(id(7));
    p.markPatch(id(7), 2);
    assert.equal(p.onlyPeerMark, MARK_FULL, 'a patch after a full mark changes nothing');
    p.markPatch(id(9), 2);
    assert.equal(p.peerCount, 2);
    assert.equal(p.onlyPeerId, null);
    p.markRemoved(id(9));
    p.markPatch(id(9), 1);
    assert.deepEqual(marks(p), [[7, { kind: 'full' }], [9, { kind: 'removed' }]]);
    assert.ok(p.onlyPeers);
  });

  it('starts empty again after clear, with one peer or many', () => {
    const p = new PendingDelta(100);
    for (const n of [1, 2, 3]) p.markPatch(id(n), 1);
    p.filterChanged = true;
    p.clear();
    assert.ok(p.empty);
    assert.deepEqual(marks(p), []);
    p.markPatch(id(4), 8);
    assert.equal(p.onlyPeerId, 4, 'back to the single-mark form');
    assert.deepEqual(marks(p), [[4, { kind: 'patch', fields: 8 }]]);
    p.clear();
    assert.equal(p.peerCount, 0);
    assert.equal(p.onlyPeerId, null);
  });

  it('falls back to a resync past its bound and drops the marks', () => {
    const p = new PendingDelta(2);
    p.markPatch(id(1), 1);
    p.markPatch(id(2), 1);
    assert.equal(p.resync, false);
    p.markPatch(id(3), 1);
    assert.equal(p.resync, true);
    assert.equal(p.peerCount, 0);
    p.markFull(id(4));
    assert.equal(p.peerCount, 0, 'nothing accumulates while a resync is due');
  });
});

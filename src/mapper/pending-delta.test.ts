import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeId } from '../model/index.js';
import { MARK_FULL, PendingDelta } from './pending-delta.js';
import { PatchField } from './tail-node.js';

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

  it('merges online marks as if each had been applied in turn, whatever came before or after', () => {
    const { Online, Endpoints } = PatchField;
    const p = new PendingDelta(100);
    p.markPatch(id(1), Online);
    p.markPatch(id(1), Online);
    assert.equal(p.peerCount, 1, 'one mark for a peer that came online twice');
    assert.equal(p.onlyPeerMark, Online);
    p.markPatch(id(2), Endpoints);
    p.markPatch(id(2), Online);
    p.markPatch(id(3), Online);
    p.markFull(id(3));
    p.markFull(id(4));
    p.markPatch(id(4), Online);
    p.markPatch(id(5), Online);
    p.markRemoved(id(5));
    p.markPatch(id(6), Online);
    p.markPatch(id(6), Endpoints);
    assert.deepEqual(marks(p), [
      [1, { kind: 'patch', fields: Online }], [2, { kind: 'patch', fields: Endpoints | Online }], [3, { kind: 'full' }],
      [4, { kind: 'full' }], [5, { kind: 'removed' }], [6, { kind: 'patch', fields: Endpoints | Online }],
    ]);
    const visited: Array<[number, number]> = [];
    p.forEachMark((peer, mark) => visited.push([peer, mark]));
    assert.deepEqual(visited.sort((a, b) => a[0] - b[0]), [[1, Online], [2, Endpoints | Online], [3, MARK_FULL], [4, MARK_FULL], [5, -2], [6, Endpoints | Online]]);
    p.clear();
    p.markPatch(id(7), Online);
    assert.ok(!p.empty, 'an online mark alone is something to send');
    p.clear();
    assert.ok(p.empty);
    assert.equal(p.peerCount, 0);
  });

  it('falls back to a resync when online marks pass its bound, even for the same few peers', () => {
    const p = new PendingDelta(3);
    for (let i = 0; i < 50; i++) p.markPatch(id(1 + (i % 2)), PatchField.Online);
    assert.equal(p.resync, false, 'two peers flapping stay two marks');
    assert.equal(p.peerCount, 2);
    for (const n of [3, 4, 5]) p.markPatch(id(n), PatchField.Online);
    assert.equal(p.peerCount, 0);
    assert.equal(p.resync, true);
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

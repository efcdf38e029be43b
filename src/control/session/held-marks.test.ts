// HeldMarks on its own, with a real PendingDelta: what is held, merged, spilled and dropped.
// The hub's use of it over a whole pipeline is in session-hub.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PatchField, PendingDelta } from '../../mapper/index.js';
import { HeldMarks } from './held-marks.js';

function drained(marks: HeldMarks): Array<[number, number, number, number]> {
  const out: Array<[number, number, number, number]> = [];
  marks.drain((nodeId, peer, fields, variant) => out.push([nodeId, peer, fields, variant]));
  return out;
}

describe('HeldMarks', () => {
  it('holds one peer per node, merges that peer\'s fields and refuses a second peer', () => {
    const marks = new HeldMarks();
    marks.open(7, 3, true);
    marks.open(5000, 1, true);
    assert.ok(marks.hold(7, 42, PatchField.Endpoints));
    assert.ok(marks.hold(7, 42, PatchField.Derp));
    assert.ok(!marks.hold(7, 43, PatchField.Endpoints), 'a second peer goes to the PendingDelta');
    assert.ok(marks.hold(5000, 42, PatchField.Endpoints), 'the cells grow for a larger id');
    assert.equal(marks.count, 2);
    assert.deepEqual(drained(marks), [[7, 42, PatchField.Endpoints | PatchField.Derp, 3], [5000, 42, PatchField.Endpoints, 1]]);
    assert.equal(marks.count, 0);
    assert.deepEqual(drained(marks), []);
  });

  it('spills a held mark into the PendingDelta and sends later marks there until settled', () => {
    const marks = new HeldMarks();
    const pending = new PendingDelta(16);
    marks.open(3, 2, true);
    assert.ok(marks.hold(3, 9, PatchField.Endpoints));
    assert.equal(marks.spill(3, pending), true);
    assert.equal(pending.onlyPeerId, 9);
    assert.equal(pending.onlyPeerMark, PatchField.Endpoints);
    assert.equal(marks.count, 0);
    assert.deepEqual(drained(marks), [], 'the spilled mark is not also drained');
    assert.ok(!marks.hold(3, 9, PatchField.Derp), 'the summary is not empty: no holding');
    assert.equal(marks.spill(3, pending), false, 'nothing held, nothing moved');
    marks.settled(3);
    assert.ok(marks.hold(3, 9, PatchField.Derp));
  });

  it('drops a held mark when the node stops having exactly one session, and starts from what it is told', () => {
    const marks = new HeldMarks();
    marks.open(4, 0, true);
    assert.ok(marks.hold(4, 1, PatchField.Endpoints));
    marks.close(4);
    assert.equal(marks.count, 0);
    assert.deepEqual(drained(marks), []);
    assert.ok(!marks.hold(4, 1, PatchField.Endpoints), 'several sessions: not held');
    marks.open(4, 0, false);
    assert.ok(!marks.hold(4, 1, PatchField.Endpoints), 'reopened with a non-empty summary');
    marks.open(4, 0, true);
    assert.ok(marks.hold(4, 1, PatchField.Endpoints));
  });

  it('never holds marks for ids it has no cells for', () => {
    const marks = new HeldMarks();
    const pending = new PendingDelta(16);
    marks.open(5_000_000, 1, true);
    assert.ok(!marks.hold(5_000_000, 1, PatchField.Endpoints));
    assert.equal(marks.spill(5_000_000, pending), false);
    assert.ok(!marks.hold(-1, 1, PatchField.Endpoints));
    assert.ok(!marks.hold(2048, 1, PatchField.Endpoints), 'an id past the cells that was never opened');
    const capped = new HeldMarks(1500);
    capped.open(1500, 1, true);
    capped.open(1501, 1, true);
    assert.ok(capped.hold(1500, 1, PatchField.Endpoints));
    assert.ok(!capped.hold(1501, 1, PatchField.Endpoints), 'past the largest id: the cells stop before it');
  });
});

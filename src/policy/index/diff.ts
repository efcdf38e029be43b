// The delta between two indexes of one tailnet, found by comparing every node's outputs: the
// oracle the incremental updates are checked against, and the server's recovery after a failed
// update. The index itself never calls it (it imports only delta.ts).
import { type PolicyDelta, newDeltaParts } from './delta.js';
import type { PolicyIndex } from './policy-index.js';

export { EMPTY_POLICY_DELTA, type PolicyDelta } from './delta.js';

function push(map: Map<number, number[]>, key: number, value: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Compares every node's outputs; O(nodes x peers). */
export function diffIndexes(before: PolicyIndex, after: PolicyIndex): PolicyDelta {
  const { gained, lost, viewChanged, filterChanged, sshChanged, selfChanged, sourceCapsChanged } = newDeltaParts();

  const beforeIds = new Set(before.nodeIds());
  const afterIds = new Set(after.nodeIds());
  // A node that is gone is lost by every viewer that remains: the loop below finds it in
  // their peers before and not after.
  for (const id of afterIds) {
    const peersAfter = new Set(after.peersOf(id));
    if (!beforeIds.has(id)) {
      for (const peer of peersAfter) push(gained, id, peer);
      continue;
    }
    const peersBefore = new Set(before.peersOf(id));
    for (const peer of peersAfter) {
      if (!peersBefore.has(peer)) push(gained, id, peer);
      else if (!same(before.peerView(id, peer), after.peerView(id, peer))) push(viewChanged, peer, id);
    }
    for (const peer of peersBefore) if (!peersAfter.has(peer)) push(lost, id, peer);
    if (!same(before.filterFor(id), after.filterFor(id))) filterChanged.push(id);
    if (!same(before.sshPolicyFor(id), after.sshPolicyFor(id))) sshChanged.push(id);
    if (!same(before.selfView(id), after.selfView(id))) selfChanged.push(id);
    if (!same(before.sourceCapsOf(id), after.sourceCapsOf(id))) sourceCapsChanged.push(id);
  }
  return { gained, lost, viewChanged, filterChanged, sshChanged, selfChanged, sourceCapsChanged };
}

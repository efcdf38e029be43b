// What changed in the policy's outputs between two indexes of one tailnet: who gained or lost
// which peers, whose view of a peer changed, and whose filter, SSH policy or self view changed.
// Used for policy edits and as the oracle the incremental updates are checked against.
import type { PolicyIndex } from './policy-index.js';

export interface PolicyDelta {
  /** viewer -> peers it sees now and did not before. */
  readonly gained: ReadonlyMap<number, readonly number[]>;
  /** viewer -> peers it no longer sees (including peers that no longer exist). */
  readonly lost: ReadonlyMap<number, readonly number[]>;
  /** peer -> viewers that saw it before and after, for whom peerView(viewer, peer) changed. */
  readonly viewChanged: ReadonlyMap<number, readonly number[]>;
  /** Nodes (present after) whose filterFor() changed. */
  readonly filterChanged: readonly number[];
  /** Nodes (present after) whose sshPolicyFor() changed. */
  readonly sshChanged: readonly number[];
  /** Nodes (present after) whose selfView() changed. */
  readonly selfChanged: readonly number[];
  /** Nodes (present before and after) whose sourceCapsOf() changed: every viewer needs them anew. */
  readonly sourceCapsChanged: readonly number[];
}

export const EMPTY_POLICY_DELTA: PolicyDelta = {
  gained: new Map(),
  lost: new Map(),
  viewChanged: new Map(),
  filterChanged: [],
  sshChanged: [],
  selfChanged: [],
  sourceCapsChanged: [],
};

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
  const gained = new Map<number, number[]>();
  const lost = new Map<number, number[]>();
  const viewChanged = new Map<number, number[]>();
  const filterChanged: number[] = [];
  const sshChanged: number[] = [];
  const selfChanged: number[] = [];
  const sourceCapsChanged: number[] = [];

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

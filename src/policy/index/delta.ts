// What changed in the policy's outputs, as one value the index's updates return and the
// mapper routes: who gained or lost which peers, whose view of a peer changed, and whose
// filter, SSH policy or self view changed. Plain data with no imports, so the index, the
// diff oracle and the server all depend on it and on nothing of each other.

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

/** A delta being assembled: fresh, empty, mutable collections. */
export interface DeltaParts {
  readonly gained: Map<number, number[]>;
  readonly lost: Map<number, number[]>;
  readonly viewChanged: Map<number, number[]>;
  readonly filterChanged: number[];
  readonly sshChanged: number[];
  readonly selfChanged: number[];
  readonly sourceCapsChanged: number[];
}

export function newDeltaParts(): DeltaParts {
  return { gained: new Map(), lost: new Map(), viewChanged: new Map(), filterChanged: [], sshChanged: [], selfChanged: [], sourceCapsChanged: [] };
}

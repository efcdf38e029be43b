// What the mapper needs from the compiled policy, per tailnet. The policy index implements it;
// the mapper never computes visibility or filters itself.
import type { NodeId } from '../model/index.js';
import type { PeerView, SelfView } from '../policy/index.js';
import type * as tailcfg from '../tailcfg/index.js';

export type { PeerView, SelfView };

export type FilterForm = 'ips' | 'caps';

export interface PolicyView {
  /** The peers `node` sees. Visibility is symmetric: also the nodes that must hear about `node`. */
  peersOf(node: NodeId): Iterable<NodeId>;
  /** Whether `viewer` sees `peer`. */
  sees(viewer: NodeId, peer: NodeId): boolean;
  peerView(viewer: NodeId, peer: NodeId): PeerView;
  /**
   * A key naming `peerView(viewer, peer)` among all viewers of `peer`: equal keys promise equal
   * views, so the peer's JSON can be serialised once per key. Most peers have one key for all.
   */
  peerViewKey(viewer: NodeId, peer: NodeId): string;
  selfView(node: NodeId): SelfView;
  /**
   * The node's packet filter (rules where the node is a destination), in the form its client
   * understands: `ips` lists source addresses; `caps` names node sources as `cap:` entries
   * matched against the CapMap the client holds for each peer (capver 109+).
   */
  filterFor(node: NodeId, form: FilterForm): readonly tailcfg.FilterRule[];
  /** A key naming `filterFor(node, form)`: equal keys promise equal filters, across both forms. */
  filterKey(node: NodeId, form: FilterForm): string;
  /** The caps a peer carries for `cap:` filter sources: the same for every viewer. */
  sourceCapsOf(node: NodeId): readonly string[];
  /** The node's SSH policy; null when the policy has no `ssh` section. */
  sshPolicyFor(node: NodeId): tailcfg.SSHPolicy | null;
}

/**
 * What a change did to the compiled policy's outputs, named precisely enough that the mapper
 * only touches the nodes concerned. Produced by the policy index for each structural event
 * (join, leave, retag, routes, user change, policy edit); live changes (endpoints, online) never
 * change the policy and produce none.
 */
export interface PolicyChange {
  /** viewer -> peers it sees now and did not before. */
  readonly gained: ReadonlyMap<NodeId, readonly NodeId[]>;
  /** viewer -> peers it no longer sees. */
  readonly lost: ReadonlyMap<NodeId, readonly NodeId[]>;
  /** peer -> viewers for whom its view (AllowedIPs, PrimaryRoutes, CapMap) changed. */
  readonly viewChanged: ReadonlyMap<NodeId, readonly NodeId[]>;
  /** Nodes whose packet filter changed. */
  readonly filterChanged: Iterable<NodeId>;
  /** Nodes whose SSH policy changed. */
  readonly sshChanged: Iterable<NodeId>;
  /** Nodes whose own view (AllowedIPs, PrimaryRoutes, CapMap) changed. */
  readonly selfChanged: Iterable<NodeId>;
  /** Nodes whose source caps changed: every viewer needs the peer anew. */
  readonly sourceCapsChanged: Iterable<NodeId>;
}

export const NO_POLICY_CHANGE: PolicyChange = {
  gained: new Map(),
  lost: new Map(),
  viewChanged: new Map(),
  filterChanged: [],
  sshChanged: [],
  selfChanged: [],
  sourceCapsChanged: [],
};

// Delta collection: what an update records before it changes the index (the node's class,
// routes, SSH contribution) and the Touched set it fills while it works, from which the
// PolicyDelta is assembled.
import type * as tailcfg from '../../tailcfg/index.js';
import type { NodeFacts, UserFacts } from '../facts.js';
import type { PolicyDelta } from './delta.js';
import { sameStrings } from './node-lists.js';
import type { NodeRec } from './records.js';
import type { SrcList } from './src-list.js';
import type { SshRuleInfo } from './ssh-rules.js';
import type { PeerView, SelfView } from './views.js';

/** An index's per-node outputs, as deltas compare them (the class diff reads more). */
export interface IndexOutputs {
  readonly nodes: ReadonlyMap<number, NodeRec>;
  ipv6Only(node: NodeRec): boolean;
  peersOf(nodeId: number): number[];
  peerView(viewerId: number, peerId: number): PeerView;
  filterFor(nodeId: number): tailcfg.FilterRule[];
  sshPolicyFor(nodeId: number): tailcfg.SSHPolicy | null;
  selfView(nodeId: number): SelfView;
  sourceCapsOf(nodeId: number): string[];
}

/** What an incremental update's delta reads of the index. */
export interface UpdateOutputs extends IndexOutputs {
  /** What a peer's view depends on, for a peer without subnet routes (NodeViews.viewKey). */
  viewKey(viewer: NodeRec, peer: NodeRec): string;
}

/** A node change for #applyNodes: new facts, or null for removal. */
export interface NodeChange {
  readonly id: number;
  readonly facts: NodeFacts | null;
}

export interface UserChange {
  readonly id: number;
  readonly facts: UserFacts | null;
}

/** A changed node's outputs before the change. */
export interface RouteNotes {
  /** router -> viewers whose view of it changed. */
  readonly pairs: Map<number, Set<number>>;
  readonly selfChanged: Set<number>;
}

/** What #settleRoutes needs from before routers changed. */
export interface RoutesBefore {
  readonly prefixes: ReadonlySet<string>;
  readonly via: Map<string, Map<NodeRec, number | null>>;
}

export interface NodeBefore {
  readonly node: NodeRec;
  /** Whether it served subnet routes (its views were recorded per viewer). */
  readonly router: boolean;
  readonly peers: ReadonlySet<number>;
  /** How peers saw it, by #viewKey. */
  readonly views: ReadonlyMap<string, string>;
  readonly viewerKeys: ReadonlyMap<number, string>;
  /** How it saw routers, exit nodes and other changed nodes. */
  readonly asViewer: ReadonlyMap<number, string>;
  readonly ipv6Only: boolean;
  readonly filter: string;
  readonly ssh: string;
  readonly self: string;
  readonly sourceCaps: string;
}

/** What one update touched, with the state it found, for #settle and #sshCandidates. */
export class Touched {
  /** Each touched list's size and key before, and the entries before of each node touched in it. */
  readonly lists = new Map<SrcList, { readonly size: number; readonly key: string; readonly hasNodeEntries: boolean; readonly nodes: Map<number, string> }>();
  /** Atom -> whether it existed (named some node) before. */
  readonly atoms = new Map<number, boolean>();
  readonly ssh = new Map<SshRuleInfo, Map<number, { before: string | null; after: string | null }>>();
  readonly localparts: { readonly info: SshRuleInfo; readonly userId: number }[] = [];
  /** Principal sequences before, of rules a moving node was a source of. */
  readonly principals = new Map<SshRuleInfo, string>();
  /** Classes whose templates must be rebuilt and compared. */
  readonly templates = new Set<number>();
  readonly newClasses = new Set<number>();

  noteList(list: SrcList, nodeId: number): void {
    let was = this.lists.get(list);
    if (was === undefined) this.lists.set(list, (was = { size: list.size, key: list.key, hasNodeEntries: list.hasNodeEntries, nodes: new Map() }));
    if (!was.nodes.has(nodeId)) was.nodes.set(nodeId, list.entriesOf(nodeId));
  }

  noteAtom(atom: number, existed: boolean): void {
    if (!this.atoms.has(atom)) this.atoms.set(atom, existed);
  }

  noteSsh(info: SshRuleInfo, nodeId: number, contribution: string | null, before: boolean): void {
    let byNode = this.ssh.get(info);
    if (byNode === undefined) this.ssh.set(info, (byNode = new Map()));
    const entry = byNode.get(nodeId);
    if (before) byNode.set(nodeId, { before: contribution, after: null });
    else if (entry === undefined) byNode.set(nodeId, { before: null, after: contribution });
    else entry.after = contribution;
  }
}

export function push(map: Map<number, number[]>, key: number, value: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/** Whether two facts of one node agree on everything but name and online. */
export function samePolicyFacts(a: NodeFacts, b: NodeFacts): boolean {
  return (
    a.ipv4 === b.ipv4 &&
    a.ipv6 === b.ipv6 &&
    a.userId === b.userId &&
    (a.registeredOrder ?? a.id) === (b.registeredOrder ?? b.id) &&
    sameStrings(a.tags, b.tags) &&
    sameStrings(a.advertisedRoutes, b.advertisedRoutes) &&
    sameStrings(a.approvedRoutes, b.approvedRoutes) &&
    JSON.stringify(a.postureAttributes ?? {}) === JSON.stringify(b.postureAttributes ?? {})
  );
}

/** What the delta needs to know about a node before it changes. */
export function recordBefore(index: UpdateOutputs, node: NodeRec, changed: ReadonlySet<number>): NodeBefore {
  const peers = new Set(index.peersOf(node.id));
  const views = new Map<string, string>();
  const viewerKeys = new Map<number, string>();
  const asViewer = new Map<number, string>();
  const router = node.routeTexts.length > 0;
  for (const id of peers) {
    const other = index.nodes.get(id)!;
    if (changed.has(id) || other.routeTexts.length > 0 || other.exitRoutes.length > 0) asViewer.set(id, JSON.stringify(index.peerView(node.id, id)));
    if (changed.has(id)) continue;
    // A router's view differs by viewer (which of its prefixes each viewer is given).
    const key = router ? `v${id}` : index.viewKey(other, node);
    viewerKeys.set(id, key);
    if (!views.has(key)) views.set(key, JSON.stringify(index.peerView(id, node.id)));
  }
  return {
    node,
    router,
    peers,
    views,
    viewerKeys,
    asViewer,
    ipv6Only: index.ipv6Only(node),
    filter: JSON.stringify(index.filterFor(node.id)),
    ssh: JSON.stringify(index.sshPolicyFor(node.id)),
    self: JSON.stringify(index.selfView(node.id)),
    sourceCaps: index.sourceCapsOf(node.id).join(' '),
  };
}

/**
 * The delta of an incremental update, from what was recorded before it (recordBefore of each
 * changed node) and what the parts noted while it ran: every node in `changes` is compared
 * directly; `filterChanged` and `sshChanged` (nodes the filters and SSH rules named) are
 * corrected for them; `routeNotes` adds viewers and routers that heard of route moves.
 */
export function collectDelta(
  index: UpdateOutputs,
  changes: readonly NodeChange[],
  changed: ReadonlySet<number>,
  before: ReadonlyMap<number, NodeBefore>,
  filterChanged: Set<number>,
  sshChanged: Set<number>,
  routeNotes: RouteNotes | null = null,
): PolicyDelta {
  const gained = new Map<number, number[]>();
  const lost = new Map<number, number[]>();
  const viewChanged = new Map<number, number[]>();
  const selfChanged: number[] = [];
  const sourceCapsChanged: number[] = [];
  for (const c of changes) {
    const was = before.get(c.id);
    const node = index.nodes.get(c.id);
    if (node === undefined) {
      // Gone: every remaining peer loses it (changed peers list it themselves).
      if (was !== undefined) for (const p of was.peers) if (!changed.has(p)) push(lost, p, c.id);
      continue;
    }
    const peers = index.peersOf(c.id);
    if (was === undefined) {
      for (const p of peers) {
        push(gained, c.id, p);
        if (!changed.has(p)) push(gained, p, c.id);
      }
      continue;
    }
    const after = new Set(peers);
    const views = new Map<string, string>();
    const ipv6Only = index.ipv6Only(node);
    for (const p of peers) {
      if (!was.peers.has(p)) {
        push(gained, c.id, p);
        if (!changed.has(p)) push(gained, p, c.id);
        continue;
      }
      const other = index.nodes.get(p)!;
      // The changed node as seen by p.
      if (!changed.has(p)) {
        const key = was.router || node.routeTexts.length > 0 ? `v${p}` : index.viewKey(other, node);
        let view = views.get(key);
        if (view === undefined) views.set(key, (view = JSON.stringify(index.peerView(p, c.id))));
        if (view !== was.views.get(was.viewerKeys.get(p)!)) push(viewChanged, c.id, p);
      }
      // p as seen by the changed node.
      const asViewer = was.asViewer.get(p);
      if (asViewer !== undefined) {
        if (asViewer !== JSON.stringify(index.peerView(c.id, p))) push(viewChanged, p, c.id);
      } else if (ipv6Only !== was.ipv6Only && other.v4Text !== null && !index.ipv6Only(other)) push(viewChanged, p, c.id);
    }
    for (const p of was.peers) {
      if (after.has(p)) continue;
      push(lost, c.id, p);
      if (!changed.has(p)) push(lost, p, c.id);
    }
    if (JSON.stringify(index.filterFor(c.id)) !== was.filter) filterChanged.add(c.id);
    else filterChanged.delete(c.id);
    if (JSON.stringify(index.sshPolicyFor(c.id)) !== was.ssh) sshChanged.add(c.id);
    else sshChanged.delete(c.id);
    if (JSON.stringify(index.selfView(c.id)) !== was.self) selfChanged.push(c.id);
    if (index.sourceCapsOf(c.id).join(' ') !== was.sourceCaps) sourceCapsChanged.push(c.id);
  }
  for (const id of changed) {
    if (!before.has(id)) {
      filterChanged.delete(id);
      sshChanged.delete(id);
    }
  }
  if (routeNotes !== null) {
    for (const [peer, viewers] of routeNotes.pairs) {
      const list = viewChanged.get(peer);
      if (list === undefined) {
        viewChanged.set(peer, [...viewers]);
        continue;
      }
      const listed = new Set(list);
      for (const v of viewers) if (!listed.has(v)) list.push(v);
    }
    for (const id of routeNotes.selfChanged) if (!selfChanged.includes(id)) selfChanged.push(id);
  }
  return { gained, lost, viewChanged, filterChanged: [...filterChanged], sshChanged: [...sshChanged], selfChanged, sourceCapsChanged };
}

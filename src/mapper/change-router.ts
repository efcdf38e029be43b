// Turns one committed state event (and what it did to the policy's outputs) into marks on the
// recipients that must hear about it: nothing is recomputed here, and the work is one mark per
// recipient. Live changes become PeersChangedPatch / OnlineChange marks for the node's viewers;
// identity changes become full PeersChanged marks; policy outputs become filter, SSH and
// visibility marks for exactly the nodes the policy index names.
import type { Node, NodeId, UserId } from '../model/index.js';
import type { NodeFacet, StateEvent, TailnetState } from '../state/index.js';
import type { PeerMark } from './pending-delta.js';
import type { PolicyChange, PolicyView } from './policy-view.js';
import { PatchField } from './tail-node.js';
import type { TailnetMapper } from './tailnet-mapper.js';

export type SelfPart = 'self' | 'filter' | 'ssh' | 'dns' | 'derpMap' | 'resync';

/** Where marks go: the session hub of the tailnet. */
export interface RecipientSink {
  markPeer(recipient: NodeId, peer: NodeId, mark: PeerMark): void;
  markSelf(recipient: NodeId, part: SelfPart): void;
  /** Makes every session send the user's profile again with its next message about the user's nodes. */
  forgetUserProfile(user: number): void;
  /** Ends the sessions of a node that no longer exists. */
  closeNode(node: NodeId): void;
}

/** Facets a PeerChange can carry. */
const PATCH_FIELD_OF: Partial<Record<NodeFacet, number>> = {
  endpoints: PatchField.Endpoints,
  derp: PatchField.Derp,
  lastSeen: PatchField.LastSeen,
  keyExpiry: PatchField.KeyExpiry,
};

/** Facets that change what the node's own netmap shows about itself. */
const SELF_FACETS: ReadonlySet<NodeFacet> = new Set<NodeFacet>(['nodeKey', 'keyExpiry', 'name', 'tags', 'user', 'approvedRoutes', 'advertisedRoutes', 'discoKey', 'approval']);

export interface RouterStats {
  events: number;
  marks: number;
}

export class ChangeRouter {
  readonly #state: TailnetState;
  readonly #policy: PolicyView;
  readonly #mapper: TailnetMapper;
  readonly #sink: RecipientSink;
  readonly stats: RouterStats = { events: 0, marks: 0 };

  constructor(deps: { state: TailnetState; policy: PolicyView; mapper: TailnetMapper; sink: RecipientSink }) {
    this.#state = deps.state;
    this.#policy = deps.policy;
    this.#mapper = deps.mapper;
    this.#sink = deps.sink;
  }

  /** Routes one event; `change` is what the policy index reported for it. */
  route(event: StateEvent, change: PolicyChange): void {
    this.stats.events++;
    switch (event.kind) {
      case 'nodeAdded':
        this.#mapper.invalidate(event.node.id);
        break;
      case 'nodeRemoved':
        this.#mapper.invalidate(event.node.id);
        this.#sink.closeNode(event.node.id);
        break;
      case 'nodeChanged':
        this.#nodeChanged(event.after, event.facets);
        break;
      case 'presenceChanged':
        this.#mapper.invalidate(event.nodeId);
        if (event.before.online !== event.after.online) this.#toViewers(event.nodeId, { kind: 'patch', fields: PatchField.Online });
        break;
      case 'userChanged':
        this.#mapper.invalidateUsers();
        this.#userChanged(event.after.id);
        break;
      case 'policyChanged':
        this.#mapper.invalidateAll();
        break;
      case 'userAdded':
      case 'userRemoved':
        this.#mapper.invalidateUsers();
        break;
      case 'tailnetDeleted':
        break;
    }
    this.#applyPolicyChange(change);
  }

  /** A node's key expired just now: it and its viewers must see it as expired. */
  expired(node: NodeId): void {
    this.#mapper.invalidate(node);
    this.#mark(node, 'self');
    this.#toViewers(node, { kind: 'full' });
  }

  /** DNS settings or the DERP map changed for everyone holding a session. */
  broadcast(part: 'dns' | 'derpMap', connected: Iterable<NodeId>): void {
    for (const node of connected) this.#mark(node, part);
  }

  #nodeChanged(node: Node, facets: ReadonlySet<NodeFacet>): void {
    this.#mapper.invalidate(node.id);
    let fields = 0;
    let full = false;
    for (const facet of facets) {
      const field = PATCH_FIELD_OF[facet];
      if (field !== undefined) fields |= field;
      else if (facet !== 'capVersion') full = true;
    }
    if (full) this.#toViewers(node.id, { kind: 'full' });
    else if (fields !== 0) this.#toViewers(node.id, { kind: 'patch', fields });
    let self = false;
    for (const facet of facets) if (SELF_FACETS.has(facet)) self = true;
    if (self) this.#mark(node.id, 'self');
    if (facets.has('name')) this.#mark(node.id, 'dns');
  }

  #userChanged(user: UserId): void {
    this.#sink.forgetUserProfile(user);
    for (const node of this.#state.nodes()) {
      if (node.userId !== user) continue;
      this.#mapper.invalidate(node.id);
      this.#toViewers(node.id, { kind: 'full' });
      this.#mark(node.id, 'self');
    }
  }

  #applyPolicyChange(change: PolicyChange): void {
    for (const [viewer, peers] of change.lost) for (const peer of peers) this.#peer(viewer, peer, { kind: 'removed' });
    for (const [viewer, peers] of change.gained) for (const peer of peers) this.#peer(viewer, peer, { kind: 'full' });
    for (const [peer, viewers] of change.viewChanged) {
      this.#mapper.invalidate(peer);
      for (const viewer of viewers) this.#peer(viewer, peer, { kind: 'full' });
    }
    for (const node of change.filterChanged) this.#mark(node, 'filter');
    for (const node of change.sshChanged) this.#mark(node, 'ssh');
    for (const node of change.selfChanged) this.#mark(node, 'self');
    for (const peer of change.sourceCapsChanged) {
      this.#mapper.invalidate(peer);
      this.#toViewers(peer, { kind: 'full' });
    }
  }

  #toViewers(peer: NodeId, mark: PeerMark): void {
    for (const viewer of this.#policy.peersOf(peer)) this.#peer(viewer, peer, mark);
  }

  #peer(viewer: NodeId, peer: NodeId, mark: PeerMark): void {
    this.stats.marks++;
    this.#sink.markPeer(viewer, peer, mark);
  }

  #mark(node: NodeId, part: SelfPart): void {
    this.stats.marks++;
    this.#sink.markSelf(node, part);
  }
}

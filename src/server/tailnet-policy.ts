// Binds one tailnet's state to the policy index: turns our model into the policy's plain facts,
// feeds it each committed event, and answers the mapper's questions (PolicyView) and the
// control plane's decisions (tagOwners, autoApprovers). No policy text means Tailscale's
// default: allow everything, everyone sees everyone.
//
// It is also the gate of the index: a node waiting for device approval, or owned by a user SCIM
// deactivated, is withheld from it (no peer sees it, it sees no peer, its filter is empty) until
// it is admitted, which the index then hears as an ordinary node added.
import type { Logger } from '../log/index.js';
import type { FilterForm, PolicyChange, PolicyView } from '../mapper/index.js';
import { NO_POLICY_CHANGE } from '../mapper/index.js';
import type { Node, NodeId, User, UserId } from '../model/index.js';
import {
  ALLOW_ALL_POLICY_TEXT, compilePolicyText, diffIndexes, EMPTY_POLICY_DELTA, nodeFactsFromModel, PolicyIndex, settingsFromModel, tailnetFactsFromModel, userFactsFromModel,
  type CompiledPolicy, type PeerView, type PolicyDelta, type SelfView, type TailnetFacts,
} from '../policy/index.js';
import type { StateEvent, TailnetState } from '../state/index.js';
import type * as tailcfg from '../tailcfg/index.js';

/** Tailscale's behaviour without a policy file: every packet from anywhere, to everyone. */
export const ALLOW_ALL_POLICY = ALLOW_ALL_POLICY_TEXT;
/** What a tailnet gets when its stored policy no longer compiles: nothing, until fixed. */
export const DENY_ALL_POLICY = '{"acls":[]}';

/** Self capabilities the service sends that name features Headway does not serve. */
const UNSERVED_SELF_CAPS = new Set(['https://tailscale.com/cap/tailnet-lock']);

const WIRE_FILTER = { selfAsWildcard: true } as const;
/** The same for clients that match `cap:` sources (capver 109+): node sources become caps. */
const WIRE_CAPS_FILTER = { selfAsWildcard: true, sourceCaps: true } as const;

/** Facets that change what the policy knows about a node. */
const POLICY_FACETS = new Set(['tags', 'user', 'advertisedRoutes', 'approvedRoutes', 'name']);

export function tailnetFacts(state: TailnetState): TailnetFacts {
  const admittedNodes = [...state.nodes()].filter((node) => admitted(state, node));
  return tailnetFactsFromModel(state.users(), admittedNodes, (id) => state.presence(id as NodeId).online, state.settings);
}

/** Whether a node takes part in the tailnet's policy: approved, and its owner (if any) active. */
export function admitted(state: TailnetState, node: Node): boolean {
  if (!node.approved) return false;
  if (node.tags.length > 0 || node.userId === null) return true;
  return state.user(node.userId)?.active ?? true;
}

/** The policy index speaks in plain numbers; they are our node ids. */
function changeOf(delta: PolicyDelta): PolicyChange {
  return delta as unknown as PolicyChange;
}

export class TailnetPolicy implements PolicyView {
  readonly #state: TailnetState;
  readonly #logger: Logger;
  #compiled: CompiledPolicy;
  #index: PolicyIndex;
  /** The text in force; null = no policy (allow all). */
  #text: string | null;

  constructor(state: TailnetState, logger: Logger) {
    this.#state = state;
    this.#logger = logger;
    this.#text = state.policyText;
    this.#compiled = this.#compile(this.#text);
    this.#index = new PolicyIndex(this.#compiled, tailnetFacts(state));
  }

  get index(): PolicyIndex {
    return this.#index;
  }

  /**
   * Applies one committed event; returns what it changed in the policy's outputs. The index
   * updates in place at a cost proportional to the answer (a join touches the joining node's
   * peers and the filters that list it; an online change of a node that routes nothing
   * touches nothing).
   */
  apply(event: StateEvent): PolicyChange {
    try {
      return changeOf(this.#applyToIndex(event));
    } catch (err) {
      // A bug in an incremental update must not leave a wrong index behind: rebuild from the
      // state and diff against what the mapper last heard.
      this.#logger.error({ err, tailnet: this.#state.name, event: event.kind }, 'incremental policy update failed; rebuilding the policy index');
      const previous = this.#index;
      this.rebuild();
      try {
        return changeOf(diffIndexes(previous, this.#index));
      } catch {
        const all = this.#index.nodeIds();
        return { ...NO_POLICY_CHANGE, filterChanged: all, sshChanged: all, selfChanged: all } as PolicyChange;
      }
    }
  }

  #applyToIndex(event: StateEvent): PolicyDelta {
    switch (event.kind) {
      case 'nodeAdded':
        if (!admitted(this.#state, event.node)) return EMPTY_POLICY_DELTA;
        return this.#index.upsertNode(nodeFactsFromModel(event.node, this.#state.presence(event.node.id).online));
      case 'nodeRemoved':
        return this.#index.hasNode(event.node.id) ? this.#index.removeNode(event.node.id) : EMPTY_POLICY_DELTA;
      case 'nodeChanged': {
        const inIndex = this.#index.hasNode(event.after.id);
        if (!admitted(this.#state, event.after)) return inIndex ? this.#withhold(event.after.id) : EMPTY_POLICY_DELTA;
        // Just approved: the node joins as if it had been added now.
        if (!inIndex) return this.#index.upsertNode(nodeFactsFromModel(event.after, this.#state.presence(event.after.id).online));
        if (![...event.facets].some((facet) => POLICY_FACETS.has(facet))) return EMPTY_POLICY_DELTA;
        const delta = this.#index.upsertNode(nodeFactsFromModel(event.after, this.#state.presence(event.after.id).online));
        // A node that starts or stops serving routes switches between the wildcard and the
        // exact wire form of its filter even when the filter's content stays the same.
        if ((event.facets.has('approvedRoutes') || event.facets.has('advertisedRoutes')) && !delta.filterChanged.includes(event.after.id)) {
          return { ...delta, filterChanged: [...delta.filterChanged, event.after.id] };
        }
        return delta;
      }
      case 'presenceChanged':
        if (event.before.online === event.after.online || !this.#index.hasNode(event.nodeId)) return EMPTY_POLICY_DELTA;
        return this.#index.setOnline(event.nodeId, event.after.online);
      case 'userAdded':
        return this.#index.upsertUser(userFactsFromModel(event.user));
      case 'userChanged':
        if (event.before.active !== event.after.active) return this.#activeChanged(event.after);
        return this.#index.upsertUser(userFactsFromModel(event.after));
      case 'userRemoved':
        return this.#index.removeUser(event.user.id);
      case 'policyChanged':
        return this.#replace(event.text);
      case 'settingsChanged':
        return this.#index.setSettings(settingsFromModel(event.after));
      case 'tailnetDeleted':
        return EMPTY_POLICY_DELTA;
    }
  }

  /**
   * SCIM deactivated (or reactivated) a user: their devices leave (or rejoin) the index, one
   * node change at a time, merged into one delta.
   */
  #activeChanged(user: User): PolicyDelta {
    const deltas: PolicyDelta[] = [this.#index.upsertUser(userFactsFromModel(user))];
    for (const node of this.#state.nodes()) {
      if (node.userId !== user.id || node.tags.length > 0) continue;
      const inIndex = this.#index.hasNode(node.id);
      if (admitted(this.#state, node)) {
        if (!inIndex) deltas.push(this.#index.upsertNode(nodeFactsFromModel(node, this.#state.presence(node.id).online)));
      } else if (inIndex) {
        deltas.push(this.#withhold(node.id));
      }
    }
    return mergeDeltas(deltas, (id) => this.#index.hasNode(id) || this.#state.node(id as NodeId) !== undefined);
  }

  /**
   * Takes a node that stays registered out of the index: besides what its peers lose, the node
   * itself loses every peer and its filter, SSH policy and self view change (to empty).
   */
  #withhold(id: NodeId): PolicyDelta {
    const peers = [...this.#index.peersOf(id)];
    const delta = this.#index.removeNode(id);
    const lost = new Map(delta.lost);
    lost.set(id, [...new Set([...(delta.lost.get(id) ?? []), ...peers])]);
    return {
      ...delta,
      lost,
      filterChanged: [...delta.filterChanged, id],
      sshChanged: [...delta.sshChanged, id],
      selfChanged: [...delta.selfChanged, id],
    };
  }

  // --- PolicyView ----------------------------------------------------------------------------

  peersOf(node: NodeId): Iterable<NodeId> {
    return this.#index.hasNode(node) ? (this.#index.peersOf(node) as NodeId[]) : [];
  }

  sees(viewer: NodeId, peer: NodeId): boolean {
    return this.#index.seesIfKnown(viewer, peer);
  }

  peerView(viewer: NodeId, peer: NodeId): PeerView {
    return this.#index.peerView(viewer, peer);
  }

  peerViewKey(viewer: NodeId, peer: NodeId): string {
    return this.#index.peerViewKey(viewer, peer);
  }

  selfView(node: NodeId): SelfView {
    if (!this.#index.hasNode(node)) return withheldSelfView(this.#state.node(node));
    const view = this.#index.selfView(node);
    let capMap: tailcfg.NodeCapMap | null = null;
    for (const cap of Object.keys(view.CapMap)) {
      if (UNSERVED_SELF_CAPS.has(cap)) {
        capMap ??= { ...view.CapMap };
        delete capMap[cap];
      }
    }
    return capMap === null ? view : { ...view, CapMap: capMap };
  }

  // Nodes receive the wire form of their filter: for a node that serves no routes, its own
  // addresses in DstPorts become `*` (the same packets pass), so a class shares one filter.
  filterFor(node: NodeId, form: FilterForm): readonly tailcfg.FilterRule[] {
    if (!this.#index.hasNode(node)) return [];
    return this.#index.filterFor(node, form === 'caps' ? WIRE_CAPS_FILTER : WIRE_FILTER);
  }

  filterKey(node: NodeId, form: FilterForm): string {
    if (!this.#index.hasNode(node)) return WITHHELD_FILTER_KEY;
    return this.#index.filterKey(node, form === 'caps' ? WIRE_CAPS_FILTER : WIRE_FILTER);
  }

  sourceCapsOf(node: NodeId): readonly string[] {
    return this.#index.hasNode(node) ? this.#index.sourceCapsOf(node) : [];
  }

  sshPolicyFor(node: NodeId): tailcfg.SSHPolicy | null {
    if (!this.#index.hasNode(node)) return null;
    return this.#index.sshPolicyFor(node);
  }

  // --- decisions for control and the API ---------------------------------------------------

  /** The check period for an SSH `check` login (see PolicyIndex.sshCheckPeriodMs). */
  sshCheckPeriodMs(src: NodeId, dst: NodeId, localUser: string): number | null | undefined {
    if (this.#text === null) return undefined;
    return this.#index.sshCheckPeriodMs(src, dst, localUser);
  }

  tagsAllowed(owner: { userId: UserId } | { tags: readonly string[] }, requested: readonly string[]): { allowed: boolean; denied: readonly string[] } {
    if (this.#text === null) return { allowed: requested.length === 0, denied: requested };
    const decision = this.#index.tagsAllowed(owner, requested);
    return { allowed: decision.allowed, denied: decision.denied.map((d) => d.tag) };
  }

  autoApprovedRoutes(node: { userId: UserId | null; tags: readonly string[]; ipv4: string | null; ipv6: string | null }, advertised: readonly string[]): string[] {
    if (this.#text === null || advertised.length === 0) return [];
    return this.#index.autoApprovedRoutes(node, advertised);
  }

  /** Rebuilds the index from the state (recovery after a failed incremental update). */
  rebuild(): void {
    this.#index = new PolicyIndex(this.#compiled, tailnetFacts(this.#state));
  }

  #replace(text: string | null): PolicyDelta {
    // Compiled over the atoms in force, an edit keeps every atom id: the index keeps the classes
    // (new atoms only split some) and rebuilds only its class-level parts. Atoms the policy no
    // longer names split classes more finely than needed; once they are a quarter of all, the
    // policy is compiled afresh (and the index rebuilt) so they do not pile up.
    let compiled = this.#compile(text, this.#compiled);
    if (compiled.unusedAtoms > compiled.atoms.length / 4) compiled = this.#compile(text);
    const delta = this.#index.replacePolicy(compiled);
    this.#text = text;
    this.#compiled = compiled;
    return delta;
  }

  #compile(text: string | null, atomsOf: CompiledPolicy | null = null): CompiledPolicy {
    if (text === null) return compilePolicyText(ALLOW_ALL_POLICY, { file: 'default policy' });
    try {
      return compilePolicyText(text, { file: `policy of tailnet "${this.#state.name}"` }, atomsOf);
    } catch (err) {
      this.#logger.error({ err, tailnet: this.#state.name }, 'stored policy does not compile; denying all traffic until it is fixed');
      return compilePolicyText(DENY_ALL_POLICY, { file: 'deny-all policy' });
    }
  }
}

/** The filter key of withheld nodes: their filter is empty. */
const WITHHELD_FILTER_KEY = 'withheld';

/** What a withheld node sees of itself: its addresses, nothing routed, no capabilities. */
function withheldSelfView(node: Node | undefined): SelfView {
  const addresses = node === undefined ? [] : [
    ...(node.ipv4 !== null ? [`${node.ipv4}/32`] : []),
    ...(node.ipv6 !== null ? [`${node.ipv6}/128`] : []),
  ];
  return { Addresses: addresses, AllowedIPs: [...addresses], PrimaryRoutes: [], Tags: [...(node?.tags ?? [])], CapMap: {} };
}

/**
 * Several deltas applied one after the other, as one: a pair gained then lost (or the reverse)
 * cancels out, and lists of nodes "present after" keep only nodes still in the index.
 */
export function mergeDeltas(deltas: readonly PolicyDelta[], present: (id: number) => boolean): PolicyDelta {
  if (deltas.length === 1) return deltas[0]!;
  const gained = new Map<number, Set<number>>();
  const lost = new Map<number, Set<number>>();
  const add = (into: Map<number, Set<number>>, from: Map<number, Set<number>>, viewer: number, peer: number) => {
    if (from.get(viewer)?.delete(peer)) return;
    let set = into.get(viewer);
    if (set === undefined) into.set(viewer, (set = new Set()));
    set.add(peer);
  };
  const viewChanged = new Map<number, Set<number>>();
  const lists = { filterChanged: new Set<number>(), sshChanged: new Set<number>(), selfChanged: new Set<number>(), sourceCapsChanged: new Set<number>() };
  for (const delta of deltas) {
    for (const [viewer, peers] of delta.gained) for (const peer of peers) add(gained, lost, viewer, peer);
    for (const [viewer, peers] of delta.lost) for (const peer of peers) add(lost, gained, viewer, peer);
    for (const [peer, viewers] of delta.viewChanged) {
      let set = viewChanged.get(peer);
      if (set === undefined) viewChanged.set(peer, (set = new Set()));
      for (const viewer of viewers) set.add(viewer);
    }
    for (const key of ['filterChanged', 'sshChanged', 'selfChanged', 'sourceCapsChanged'] as const) for (const id of delta[key]) lists[key].add(id);
  }
  const toMap = (map: Map<number, Set<number>>, keep: (id: number) => boolean) => {
    const out = new Map<number, number[]>();
    for (const [key, set] of map) {
      const values = [...set].filter(keep);
      if (set.size > 0 && keep(key) && values.length > 0) out.set(key, values);
    }
    return out;
  };
  return {
    gained: toMap(gained, present),
    lost: toMap(lost, () => true),
    viewChanged: toMap(viewChanged, present),
    filterChanged: [...lists.filterChanged].filter(present),
    sshChanged: [...lists.sshChanged].filter(present),
    selfChanged: [...lists.selfChanged].filter(present),
    sourceCapsChanged: [...lists.sourceCapsChanged].filter(present),
  };
}

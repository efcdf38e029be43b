// Binds one tailnet's state to the policy index: turns our model into the policy's plain facts,
// feeds it each committed event, and answers the mapper's questions (PolicyView) and the
// control plane's decisions (tagOwners, autoApprovers). No policy text means Tailscale's
// default: allow everything, everyone sees everyone.
import type { Logger } from '../log/index.js';
import type { FilterForm, PolicyChange, PolicyView } from '../mapper/index.js';
import { NO_POLICY_CHANGE } from '../mapper/index.js';
import type { NodeId, UserId } from '../model/index.js';
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
  return tailnetFactsFromModel(state.users(), state.nodes(), (id) => state.presence(id as NodeId).online, state.settings);
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
        return this.#index.upsertNode(nodeFactsFromModel(event.node, this.#state.presence(event.node.id).online));
      case 'nodeRemoved':
        return this.#index.removeNode(event.node.id);
      case 'nodeChanged': {
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
        if (event.before.online === event.after.online) return EMPTY_POLICY_DELTA;
        return this.#index.setOnline(event.nodeId, event.after.online);
      case 'userAdded':
        return this.#index.upsertUser(userFactsFromModel(event.user));
      case 'userChanged':
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
    return this.#index.filterFor(node, form === 'caps' ? WIRE_CAPS_FILTER : WIRE_FILTER);
  }

  filterKey(node: NodeId, form: FilterForm): string {
    return this.#index.filterKey(node, form === 'caps' ? WIRE_CAPS_FILTER : WIRE_FILTER);
  }

  sourceCapsOf(node: NodeId): readonly string[] {
    return this.#index.hasNode(node) ? this.#index.sourceCapsOf(node) : [];
  }

  sshPolicyFor(node: NodeId): tailcfg.SSHPolicy | null {
    return this.#index.sshPolicyFor(node);
  }

  // --- decisions for control and the API ---------------------------------------------------

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
    const compiled = this.#compile(text);
    const delta = this.#index.replacePolicy(compiled);
    this.#text = text;
    this.#compiled = compiled;
    return delta;
  }

  #compile(text: string | null): CompiledPolicy {
    if (text === null) return compilePolicyText(ALLOW_ALL_POLICY, { file: 'default policy' });
    try {
      return compilePolicyText(text, { file: `policy of tailnet "${this.#state.name}"` });
    } catch (err) {
      this.#logger.error({ err, tailnet: this.#state.name }, 'stored policy does not compile; denying all traffic until it is fixed');
      return compilePolicyText(DENY_ALL_POLICY, { file: 'deny-all policy' });
    }
  }
}

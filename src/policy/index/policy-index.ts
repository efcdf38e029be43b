// The policy bound to a tailnet: identity classes, selector resolutions, the class x class
// visibility relation, per-class packet-filter templates, SSH policies, peer and self views,
// and the decisions the control and API layers ask for.
//
// Build cost is proportional to nodes + classes x rules (+ classes^2/32 for visibility); a
// query touches only the asked-for node's class, its user and its peers. After the build the
// index is updated in place (upsertNode, removeNode, setOnline, upsertUser, removeUser,
// replacePolicy), each update returning the exact PolicyDelta at a cost proportional to it;
// filterKey and peerViewKey name outputs in O(1) so the mapper serialises each once.
import type * as tailcfg from '../../tailcfg/index.js';
import { type IPPrefix, formatIP, parseIP, prefixFirst, prefixLast } from '../../util/ip.js';
import { IPSet, IPSetBuilder } from '../../util/ip-set.js';
import {
  type CompiledPolicy,
  type RuleItem,
  type Selection,
  type SelectionPart,
} from '../compile.js';
import { PolicyError } from '../errors.js';
import type { NodeFacts, TailnetFacts, TailnetSettings, UserFacts } from '../facts.js';
import { EMPTY_POLICY_DELTA, type PolicyDelta } from './delta.js';
import { PrimaryRouteTable } from '../primary-routes.js';
import { RouteTable, type RoutesHost } from './route-table.js';
import { meetsPosture } from '../posture.js';
import { INTERNET, TAILSCALE_SPACE } from '../tailscale-ranges.js';
import { Bits } from './bits.js';
import { SrcList } from './src-list.js';
import {
  type IdentityClass,
  type NodeRec,
  type UserRec,
  buildNode,
  buildUsers,
  literalAtomMatches,
  nodeAddressSet,
  parseV4,
  parseV6,
  userAtomMatches,
  normaliseGroups,
} from './records.js';
import { autoApprovedRoutes, factsMatch, tagsAllowed } from './decisions.js';
import { Touched, push, samePolicyFacts, type NodeBefore, type NodeChange, type RouteNotes, type UserChange } from './delta-collection.js';
import { hasCompanionCaps, type FilterFormOptions } from './filter-template.js';
import { nodesOfClasses, sameNumbers, sameOptionalLists, sameStringSets, sameStrings } from './node-lists.js';
import { parsePrefixText, servedRoutes } from './route-access.js';
import { Resolved, atomPlan, tailnetNames, type AtomPlan, type ItemInfo, type TagDecision, type TagOwnerContext } from './selections.js';
import { SshPolicies, checkSshDomains, type SshHost } from './ssh-policy.js';
import { diffByClass, type DiffSide } from './class-diff.js';
import type { PeerView, SelfView } from './views.js';
import { NodeViews, type ViewsHost } from './node-views.js';
import { ClassFilters, type FiltersHost } from './class-filters.js';
import { Visibility, type VisibilityHost } from './visibility.js';

export interface PolicyIndexOptions {
  /** Reuse a primary-route table the server keeps (failover state); built from facts otherwise. */
  readonly primaryRoutes?: PrimaryRouteTable;
}

export class PolicyIndex {
  #compiledPolicy: CompiledPolicy;
  #settings: TailnetSettings;
  #users: Map<number, UserRec>;
  /** Every node, in the order it was added. */
  #byId = new Map<number, NodeRec>();
  /** Untagged nodes by the user id in their facts, including ids of users not (or no longer) known. */
  #byUserId = new Map<number, Set<NodeRec>>();
  #byName = new Map<string, NodeRec>();
  /** Keyed by `v4 | 0` so keys stay small integers. */
  #byV4 = new Map<number, NodeRec>();
  #byV6 = new Map<string, NodeRec>();
  #classes: IdentityClass[] = [];
  #classByKey = new Map<string, IdentityClass>();
  /** Per atom: how many nodes carry it (a destination naming no node does not exist). */
  #atomNodes: number[] = [];
  #atomPlan!: AtomPlan;
  /** Classes serving subnet routes: the only ones whose membership depends on address overlap. */
  #routeClasses: IdentityClass[] = [];
  #atomClasses: number[][];
  readonly #routes: RouteTable;
  #resolved = new Map<string, Resolved>();
  /** Rendered source lists by selection key. */
  #srcLists = new Map<string, SrcList>();
  /** A tailnet-wide counter: list versions, filter versions and address epochs draw from it. */
  #clock = 0;
  #addressEpoch = 0;
  #items: ItemInfo[] = [];
  readonly #visibility: Visibility;
  readonly #filters: ClassFilters;
  readonly #views: NodeViews;
  #viaItems: ItemInfo[] = [];
  readonly #ssh: SshPolicies;
  #allNodesSet: IPSet | null = null;
  #routeStrings: string[] = [];
  #displayName: string;
  #domains: ReadonlySet<string> | null;

  constructor(compiled: CompiledPolicy, facts: TailnetFacts, options: PolicyIndexOptions = {}) {
    this.#compiledPolicy = compiled;
    this.#settings = facts.settings ?? {};
    this.#users = buildUsers(facts.users);
    const names = tailnetNames(this.#settings, facts.users);
    this.#displayName = names.displayName;
    this.#domains = names.domains;
    const host = this.#host();
    this.#ssh = new SshPolicies(host);
    this.#views = new NodeViews(host);
    this.#filters = new ClassFilters(host);
    this.#visibility = new Visibility(host);

    this.#atomClasses = compiled.atoms.map(() => []);
    this.#atomNodes = compiled.atoms.map(() => 0);
    this.#atomPlan = atomPlan(compiled);
    for (const user of this.#users.values()) user.atoms = this.#userAtoms(user);
    for (const nf of facts.nodes) this.#addNode(nf);
    const nodes = [...this.#byId.values()];
    const primary =
      options.primaryRoutes ??
      new PrimaryRouteTable(nodes.filter((n) => n.routeTexts.length > 0).map((n) => ({ nodeId: n.id, order: n.order, online: n.facts.online, routes: n.routeTexts })));
    this.#routes = new RouteTable(host, primary);
    this.#routeStrings = [...new Set(nodes.flatMap((n) => n.routeTexts))].sort();
    checkSshDomains(compiled, this.#domains);
    this.#resolveItems();
    this.#visibility.build();
    this.#routes.build();
    this.#views.build(this.#classes.length);
    this.#filters.build();
    this.#built = true;
  }

  /**
   * The state and services the parts read from one another through the index. Getters, so
   * that each part always reads the current state (also after #adopt swaps it).
   */
  #host(): SshHost & ViewsHost & RoutesHost & FiltersHost & VisibilityHost {
    const index = this;
    return {
      get compiled() {
        return index.#compiledPolicy;
      },
      get settings() {
        return index.#settings;
      },
      get displayName() {
        return index.#displayName;
      },
      get users() {
        return index.#users;
      },
      get classes() {
        return index.#classes;
      },
      get routeClasses() {
        return index.#routeClasses;
      },
      get items() {
        return index.#items;
      },
      get viaItems() {
        return index.#viaItems;
      },
      nodeById: (id) => this.#byId.get(id),
      bits: () => this.#bits(),
      partsSet: (parts) => this.#partsSet(parts),
      partSet: (part) => this.#partSet(part),
      srcList: (sel) => this.#srcList(sel),
      atomExists: (atom) => (this.#atomNodes[atom] ?? 0) > 0,
      tick: () => ++this.#clock,
      viaSelection: (tags) => this.#viaSelection(tags),
      sees: (a, b) => this.sees(a, b),
      nodes: () => this.#byId.values(),
      resolve: (sel) => this.#resolve(sel),
      designatedRouter: (viewer, prefix) => this.#routes.designatedRouter(viewer, prefix),
      canUseExit: (viewer, exitNode) => this.#routes.canUseExit(viewer, exitNode),
      primariesOf: (id) => this.#routes.primary.primariesOf(id),
    };
  }

  /** Set once the build is done: from then on a new class is bound into every structure. */
  #built = false;

  /** Updates that fell back to a rebuild and diff (see #needsRebuild); for tests and diagnostics. */
  rebuilds = 0;

  get compiled(): CompiledPolicy {
    return this.#compiledPolicy;
  }

  get settings(): TailnetSettings {
    return this.#settings;
  }

  // --- updates ------------------------------------------------------------------------------
  //
  // Each update changes the index in place and returns what changed in its outputs, exactly as
  // diffIndexes() of the indexes before and after would (the property test holds it to that).
  // The work is proportional to the answer: a node joining an existing class touches its own
  // peers, the source lists that name its class (one splice each) and the classes whose
  // filters use those lists. A router's routes coming, going or moving touch its viewers, the
  // HA election of its prefixes and the access rows of new prefixes. Rare structural changes
  // rebuild and diff instead: a route that covers devices (or a device inside one), served
  // prefixes changing under a `*` source (every such filter lists them), the tailnet's owner.

  /** Adds a node, or replaces the facts of one (tags, user, routes, addresses, name, online). */
  upsertNode(facts: NodeFacts): PolicyDelta {
    const old = this.#byId.get(facts.id);
    if (old !== undefined && samePolicyFacts(old.facts, facts)) {
      if (old.name !== facts.name) return this.#applyNodes([{ id: facts.id, facts }], null);
      return old.facts.online === facts.online ? ((old.facts = facts), EMPTY_POLICY_DELTA) : this.#online(old, facts);
    }
    return this.#applyNodes([{ id: facts.id, facts }], null);
  }

  /** Removes a node; unknown ids change nothing. */
  removeNode(id: number): PolicyDelta {
    if (!this.#byId.has(id)) return EMPTY_POLICY_DELTA;
    return this.#applyNodes([{ id, facts: null }], null);
  }

  /**
   * A node came online or went offline. Only HA route failover depends on it: for a node that
   * serves no subnet route this touches nothing; for a router, only viewers of the prefixes
   * whose carrier moved.
   */
  setOnline(id: number, online: boolean): PolicyDelta {
    const node = this.#byId.get(id);
    if (node === undefined || node.facts.online === online) return EMPTY_POLICY_DELTA;
    return this.#online(node, { ...node.facts, online });
  }

  /** Adds a user or changes one's name, email or role. */
  upsertUser(user: UserFacts): PolicyDelta {
    const change: UserChange = { id: user.id, facts: user };
    if (this.#ownerChanges(change)) return this.#rebuildWith([], change);
    const rec = this.#users.get(user.id);
    if (rec === undefined) {
      // Nodes may name the user before it exists (or after it was removed): they join it now.
      const waiting = [...(this.#byUserId.get(user.id) ?? [])];
      return this.#applyNodes(
        waiting.map((n) => ({ id: n.id, facts: n.facts })),
        change,
      );
    }
    const role = user.role ?? 'member';
    const atoms = this.#userAtoms({ ...rec, name: user.name, email: user.email, role, groups: normaliseGroups(user.groups) });
    if (rec.role === role && sameNumbers(rec.atoms, atoms)) {
      // Same identity: only SSH localpart mappings can change.
      this.#ssh.bind();
      const touched = new Touched();
      this.#applyUserChange(change, touched);
      const sshChanged = new Set<number>();
      this.#ssh.candidates(touched, sshChanged);
      return { ...EMPTY_POLICY_DELTA, sshChanged: [...sshChanged] };
    }
    return this.#applyNodes(
      rec.nodes.map((n) => ({ id: n.id, facts: n.facts })),
      change,
    );
  }

  /** Removes a user; its untagged nodes, if any remain, stop matching user selectors. */
  removeUser(id: number): PolicyDelta {
    const rec = this.#users.get(id);
    if (rec === undefined) return EMPTY_POLICY_DELTA;
    const change: UserChange = { id, facts: null };
    if (this.#ownerChanges(change)) return this.#rebuildWith([], change);
    return this.#applyNodes(
      rec.nodes.map((n) => ({ id: n.id, facts: n.facts })),
      change,
    );
  }

  /**
   * Replaces the tailnet settings. The auto-update setting reaches only self capabilities, so
   * every node's self view changes and nothing else; a change of the display name, domains or
   * SSH check URL rebuilds from the current facts and diffs.
   */
  setSettings(settings: TailnetSettings): PolicyDelta {
    const before = this.#settings;
    if (before.displayName === settings.displayName && sameOptionalLists(before.domains, settings.domains) && before.sshCheckBaseUrl === settings.sshCheckBaseUrl) {
      this.#settings = settings;
      if (before.autoUpdate === settings.autoUpdate) return EMPTY_POLICY_DELTA;
      return { ...EMPTY_POLICY_DELTA, selfChanged: this.nodeIds() };
    }
    this.rebuilds++;
    const next = new PolicyIndex(this.compiled, { users: this.#userFacts(), nodes: this.#nodeFacts(), settings }, { primaryRoutes: this.#routes.primary.clone() });
    this.#ssh.bind();
    next.#ssh.bind();
    const delta = diffByClass(this.#diffSide(), next.#diffSide(), new Set(this.nodeIds()), true);
    this.#adopt(next);
    return delta;
  }

  /**
   * Binds another compiled policy to the same tailnet. The new index is built from scratch;
   * the delta compares classes, not node pairs: nodes are grouped into cells by (class before,
   * class after), and each question (visibility, views, filters, SSH, self) is answered once
   * per cell or pair of cells, then spread over the nodes only where the answer changed.
   */
  replacePolicy(compiled: CompiledPolicy): PolicyDelta {
    const next = new PolicyIndex(compiled, { users: this.#userFacts(), nodes: this.#nodeFacts(), settings: this.#settings }, { primaryRoutes: this.#routes.primary.clone() });
    this.#ssh.bind();
    next.#ssh.bind();
    const delta = diffByClass(this.#diffSide(), next.#diffSide(), new Set(), false);
    this.#adopt(next);
    return delta;
  }

  /** What the class diff reads of this index. */
  #diffSide(): DiffSide {
    return {
      compiled: this.#compiledPolicy,
      nodes: this.#byId,
      users: this.#users,
      displayName: this.#displayName,
      visibilityRow: (c) => this.#visibility.rowOf(c),
      classAttrs: (c) => this.#views.attrsOf(c),
      standInFilter: (c) => this.#filters.standInFilter(c),
      hasSelfItems: () => this.#filters.hasSelfItems(),
      ipv6Only: (n) => this.#views.ipv6Only(n),
      sshRole: (n) => this.#ssh.roleOf(n),
      sees: (a, b) => this.sees(a, b),
      peersOf: (id) => this.peersOf(id),
      peerView: (v, p) => this.peerView(v, p),
      filterFor: (id) => this.filterFor(id),
      sshPolicyFor: (id) => this.sshPolicyFor(id),
      selfView: (id) => this.selfView(id),
      sourceCapsOf: (id) => this.sourceCapsOf(id),
    };
  }

  #userFacts(): UserFacts[] {
    return [...this.#users.values()].map((u) => ({ id: u.id, name: u.name, email: u.email, role: u.role, groups: u.groups }));
  }

  #nodeFacts(): NodeFacts[] {
    return [...this.#byId.values()].map((n) => n.facts);
  }

  /** Whether a user change moves the tailnet's display name or domains (every node hears). */
  #ownerChanges(change: UserChange): boolean {
    const users = this.#userFacts();
    const at = users.findIndex((u) => u.id === change.id);
    if (change.facts === null) users.splice(at, 1);
    else if (at >= 0) users[at] = change.facts;
    else users.push(change.facts);
    const { displayName, domains } = tailnetNames(this.#settings, users);
    return displayName !== this.#displayName || !sameStringSets(domains, this.#domains);
  }

  /** Rebuilds from the current facts with the changes applied, and diffs. */
  #rebuildWith(changes: readonly NodeChange[], userChange: UserChange | null): PolicyDelta {
    this.rebuilds++;
    const users = this.#userFacts();
    if (userChange !== null) {
      const at = users.findIndex((u) => u.id === userChange.id);
      if (userChange.facts === null) users.splice(at, 1);
      else if (at >= 0) users[at] = userChange.facts;
      else users.push(userChange.facts);
    }
    const nodes = new Map<number, NodeFacts>();
    for (const n of this.#byId.values()) nodes.set(n.id, n.facts);
    for (const c of changes) {
      if (c.facts === null) nodes.delete(c.id);
      else nodes.set(c.id, c.facts);
    }
    const next = new PolicyIndex(this.compiled, { users, nodes: [...nodes.values()], settings: this.#settings }, { primaryRoutes: this.#routes.tableAfter(changes) });
    this.#ssh.bind();
    next.#ssh.bind();
    const delta = diffByClass(this.#diffSide(), next.#diffSide(), new Set(changes.map((c) => c.id)), userChange !== null);
    this.#adopt(next);
    return delta;
  }

  /**
   * Whether changes touch what the incremental path does not handle, so the index is rebuilt
   * and diffed instead: a node whose address lies inside a served route (routers' membership
   * in selections follows the addresses inside their routes), a route that covers node
   * addresses or Tailscale's space, and a change of the served prefixes while some source list
   * is `*` (it lists every served route: every filter naming `*` changes anyway).
   */
  #needsRebuild(changes: readonly NodeChange[]): boolean {
    const routeSet = this.#routes.hasRoutes ? this.#routeSet() : null;
    const insideRoute = (v4: number, v6: bigint | null): boolean => routeSet !== null && ((v4 >= 0 && routeSet.containsV4(v4)) || (v6 !== null && routeSet.containsV6(v6)));
    let routesMove = false;
    for (const c of changes) {
      const old = this.#byId.get(c.id);
      if (old !== undefined && insideRoute(old.v4, old.v6)) return true;
      const routes = c.facts === null ? [] : servedRoutes(c.facts);
      const oldRoutes = old?.routeTexts ?? [];
      if (!sameStrings(routes, oldRoutes)) routesMove = true;
      // A changed router is bound to a class again, which assumes its routes cover no node.
      for (const text of routes.length === 0 ? oldRoutes : routes.concat(oldRoutes)) {
        const prefix = parsePrefixText(text);
        if (TAILSCALE_SPACE.overlapsPrefix(prefix) || this.#coversNode(prefix)) return true;
      }
      if (c.facts === null) continue;
      const v4 = parseV4(c.facts.ipv4);
      const v6 = parseV6(c.facts.ipv6);
      // A node without addresses renders no source strings; rows assume every node has some.
      if (v4 < 0 && v6 === null) return true;
      if (insideRoute(v4, v6)) return true;
      const owner4 = v4 >= 0 ? this.#byV4.get(v4 | 0) : undefined;
      if (owner4 !== undefined && owner4.id !== c.id) return true;
    }
    if (routesMove && !sameStrings(this.#routes.servedAfter(changes), this.#routeStrings)) {
      for (const sel of this.#listSelections.values()) if (sel.wildcard && !sel.dangerAll && sel.postures.length === 0) return true;
    }
    return false;
  }

  /**
   * Between taking changed nodes out and putting them back: new served prefixes get their
   * access rows (so classes bound next see them), `*`'s address set and the route set move.
   */
  #prepareRoutes(changes: readonly NodeChange[]): void {
    const served = this.#routes.servedAfter(changes);
    this.#routes.addServed(served);
    this.#routeStrings = served;
    this.#routeSetCache = null;
    this.#addressEpoch = ++this.#clock;
  }

  /**
   * Whether any node's address lies inside a prefix. An IPv4 prefix smaller than the tailnet is
   * probed address by address in the address index (a /24 is 256 lookups, whatever N); larger
   * ones and IPv6 are a scan, still cheaper than the address set, which every join drops.
   */
  #coversNode(prefix: IPPrefix): boolean {
    if (prefix.addr.family === 4) {
      const first = Number(prefixFirst(prefix));
      const last = Number(prefixLast(prefix));
      if (last - first < this.#byId.size) {
        for (let a = first; a <= last; a++) if (this.#byV4.has(a | 0)) return true;
        return false;
      }
      for (const n of this.#byId.values()) if (n.v4 >= first && n.v4 <= last) return true;
      return false;
    }
    const first = prefixFirst(prefix);
    const last = prefixLast(prefix);
    for (const n of this.#byId.values()) if (n.v6 !== null && n.v6 >= first && n.v6 <= last) return true;
    return false;
  }

  /** A router's (or any node's) online change: HA failover, nothing else. */
  #online(node: NodeRec, facts: NodeFacts): PolicyDelta {
    node.facts = facts;
    const notes = this.#routes.online(node);
    if (notes === null) return EMPTY_POLICY_DELTA;
    const { pairs, selfChanged } = notes;
    if (pairs.size === 0 && selfChanged.size === 0) return EMPTY_POLICY_DELTA;
    const viewChanged = new Map<number, number[]>();
    for (const [peer, viewers] of pairs) viewChanged.set(peer, [...viewers]);
    return { ...EMPTY_POLICY_DELTA, viewChanged, selfChanged: [...selfChanged] };
  }

  /**
   * Applies node changes (and a user change between taking the old nodes out and putting the
   * new ones in) and returns the exact delta. Every node in `changes` is compared directly;
   * everyone else learns of it through visibility, source lists, templates and SSH rules.
   */
  #applyNodes(changes: readonly NodeChange[], userChange: UserChange | null): PolicyDelta {
    if (this.#needsRebuild(changes)) return this.#rebuildWith(changes, userChange);
    // SSH rules are bound on first use; an update must see them bound to track their sources.
    this.#ssh.bind();
    const changed = new Set(changes.map((c) => c.id));
    const before = new Map<number, NodeBefore>();
    const selfUsers = new Map<number, string>();
    const noteSelfUser = (uid: number | null): void => {
      const user = uid === null ? undefined : this.#users.get(uid);
      if (user !== undefined && !selfUsers.has(user.id)) selfUsers.set(user.id, this.#filters.selfSignature(user));
    };
    for (const c of changes) {
      const old = this.#byId.get(c.id);
      if (old !== undefined) {
        before.set(c.id, this.#before(old, changed));
        if (this.#filters.hasSelfItems()) noteSelfUser(old.user?.id ?? null);
      }
      if (this.#filters.hasSelfItems() && c.facts !== null && c.facts.tags.length === 0) noteSelfUser(c.facts.userId);
    }
    if (this.#filters.hasSelfItems() && userChange !== null) noteSelfUser(userChange.id);

    const routes = this.#routes.routesBefore(changes);
    const touched = new Touched();
    for (const c of changes) {
      const old = this.#byId.get(c.id);
      if (old !== undefined) this.#detach(old, touched, c.facts !== null);
    }
    if (routes !== null) this.#prepareRoutes(changes);
    if (userChange !== null) this.#applyUserChange(userChange, touched);
    for (const c of changes) if (c.facts !== null) this.#attach(c.facts, touched);
    const filterChanged = new Set<number>();
    const sshChanged = new Set<number>();
    this.#switchItems(touched);
    this.#filters.settle(touched, selfUsers, filterChanged);
    this.#ssh.candidates(touched, sshChanged);
    const routeNotes = routes === null ? null : this.#routes.settle(changes, routes, changed);
    return this.#collectDelta(changes, changed, before, filterChanged, sshChanged, routeNotes);
  }

  /**
   * Lists that became empty switch their items off, lists that became non-empty switch them
   * on (visibility rows and route access gain what they reach); the templates of the classes
   * such items reach are rebuilt by the filters' settle.
   */
  #switchItems(touched: Touched): void {
    for (const [list, was] of touched.lists) {
      if ((list.size === 0) === (was.size === 0)) continue;
      for (const info of this.#itemsByList.get(list) ?? []) {
        const kind = info.item.kind;
        if (kind !== 'net' && kind !== 'via') continue;
        if (list.size > 0) {
          this.#visibility.itemReach(info);
          this.#routes.itemAccess(info);
        }
        for (const c of info.dst) touched.templates.add(c);
        for (const cls of this.#classes) if (cls.exit) touched.templates.add(cls.id);
      }
    }
  }

  /** What the delta needs to know about a node before it changes. */
  #before(node: NodeRec, changed: ReadonlySet<number>): NodeBefore {
    const peers = new Set(this.peersOf(node.id));
    const views = new Map<string, string>();
    const viewerKeys = new Map<number, string>();
    const asViewer = new Map<number, string>();
    const router = node.routeTexts.length > 0;
    for (const id of peers) {
      const other = this.#byId.get(id)!;
      if (changed.has(id) || other.routeTexts.length > 0 || other.exitRoutes.length > 0) asViewer.set(id, JSON.stringify(this.peerView(node.id, id)));
      if (changed.has(id)) continue;
      // A router's view differs by viewer (which of its prefixes each viewer is given).
      const key = router ? `v${id}` : this.#views.viewKey(other, node);
      viewerKeys.set(id, key);
      if (!views.has(key)) views.set(key, JSON.stringify(this.peerView(id, node.id)));
    }
    return {
      node,
      router,
      peers,
      views,
      viewerKeys,
      asViewer,
      ipv6Only: this.#views.ipv6Only(node),
      filter: JSON.stringify(this.filterFor(node.id)),
      ssh: JSON.stringify(this.sshPolicyFor(node.id)),
      self: JSON.stringify(this.selfView(node.id)),
      sourceCaps: this.sourceCapsOf(node.id).join(' '),
    };
  }

  #collectDelta(
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
      const node = this.#byId.get(c.id);
      if (node === undefined) {
        // Gone: every remaining peer loses it (changed peers list it themselves).
        if (was !== undefined) for (const p of was.peers) if (!changed.has(p)) push(lost, p, c.id);
        continue;
      }
      const peers = this.peersOf(c.id);
      if (was === undefined) {
        for (const p of peers) {
          push(gained, c.id, p);
          if (!changed.has(p)) push(gained, p, c.id);
        }
        continue;
      }
      const after = new Set(peers);
      const views = new Map<string, string>();
      const ipv6Only = this.#views.ipv6Only(node);
      for (const p of peers) {
        if (!was.peers.has(p)) {
          push(gained, c.id, p);
          if (!changed.has(p)) push(gained, p, c.id);
          continue;
        }
        const other = this.#byId.get(p)!;
        // The changed node as seen by p.
        if (!changed.has(p)) {
          const key = was.router || node.routeTexts.length > 0 ? `v${p}` : this.#views.viewKey(other, node);
          let view = views.get(key);
          if (view === undefined) views.set(key, (view = JSON.stringify(this.peerView(p, c.id))));
          if (view !== was.views.get(was.viewerKeys.get(p)!)) push(viewChanged, c.id, p);
        }
        // p as seen by the changed node.
        const asViewer = was.asViewer.get(p);
        if (asViewer !== undefined) {
          if (asViewer !== JSON.stringify(this.peerView(c.id, p))) push(viewChanged, p, c.id);
        } else if (ipv6Only !== was.ipv6Only && other.v4Text !== null && !this.#views.ipv6Only(other)) push(viewChanged, p, c.id);
      }
      for (const p of was.peers) {
        if (after.has(p)) continue;
        push(lost, c.id, p);
        if (!changed.has(p)) push(lost, p, c.id);
      }
      if (JSON.stringify(this.filterFor(c.id)) !== was.filter) filterChanged.add(c.id);
      else filterChanged.delete(c.id);
      if (JSON.stringify(this.sshPolicyFor(c.id)) !== was.ssh) sshChanged.add(c.id);
      else sshChanged.delete(c.id);
      if (JSON.stringify(this.selfView(c.id)) !== was.self) selfChanged.push(c.id);
      if (this.sourceCapsOf(c.id).join(' ') !== was.sourceCaps) sourceCapsChanged.push(c.id);
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

  /** Takes a node out: source lists, SSH rules, atom counts, then the node-level maps. */
  #detach(node: NodeRec, touched: Touched, moving: boolean): void {
    const cls = this.#classes[node.classId]!;
    for (const list of this.#listsOf(cls)) {
      touched.noteList(list, node.id);
      list.update(node.id, [], ++this.#clock);
    }
    for (const a of cls.atoms) touched.noteAtom(a, this.#atomNodes[a]! > 0);
    this.#ssh.detach(node, touched, moving);
    if (this.#hasLiteralAtoms(cls)) touched.templates.add(cls.id);
    this.#dropNode(node);
  }

  /** Puts a node in: the inverse of #detach. */
  #attach(facts: NodeFacts, touched: Touched): void {
    const classCount = this.#classes.length;
    // Atom counts before the node is counted.
    const plan = this.#classKeyPreview(facts);
    for (const a of plan) touched.noteAtom(a, this.#atomNodes[a]! > 0);
    const node = this.#addNode(facts);
    const cls = this.#classes[node.classId]!;
    if (cls.id >= classCount) {
      // Bound while this batch's lists were in flux: its template is built again at the end.
      touched.newClasses.add(cls.id);
      touched.templates.add(cls.id);
    }
    for (const list of this.#listsOf(cls)) {
      touched.noteList(list, node.id);
      list.update(node.id, list.nodeStrings(node), ++this.#clock);
    }
    this.#ssh.attach(node, touched);
    if (this.#hasLiteralAtoms(cls)) touched.templates.add(cls.id);
  }

  /** The atoms a node's class will carry (to record atom counts before it is counted). */
  #classKeyPreview(facts: NodeFacts): number[] {
    const probe = buildNode(0, facts, this.#users);
    // buildNode links the record to its user; this probe must not stay there.
    if (probe.user !== null) probe.user.nodes.pop();
    return this.#classKeyOf(probe).ids;
  }

  #hasLiteralAtoms(cls: IdentityClass): boolean {
    return this.#atomPlan.literalAtoms.length > 0 && cls.atoms.some((a) => this.compiled.atoms[a]!.spec.kind === 'literal');
  }

  /** Source lists that list a class's nodes (cached per class; new lists reset the cache). */
  #listsOf(cls: IdentityClass): SrcList[] {
    if (this.#classListsAt !== this.#srcLists.size) {
      this.#classLists.clear();
      this.#classListsAt = this.#srcLists.size;
    }
    let lists = this.#classLists.get(cls.id);
    if (lists === undefined) {
      lists = [];
      for (const [key, list] of this.#srcLists) {
        const sel = this.#listSelections.get(key)!;
        if (this.#listsClass(sel, cls)) lists.push(list);
      }
      this.#classLists.set(cls.id, lists);
    }
    return lists;
  }

  #classLists = new Map<number, SrcList[]>();
  #classListsAt = -1;
  #listSelections = new Map<string, Selection>();
  #itemsByList = new Map<SrcList, ItemInfo[]>();

  /** Applies a user record change and notes SSH localpart changes. */
  #applyUserChange(change: UserChange, touched: Touched): void {
    const facts = change.facts;
    let rec = this.#users.get(change.id);
    if (facts === null) {
      this.#users.delete(change.id);
    } else if (rec === undefined) {
      rec = { id: facts.id, name: facts.name, email: facts.email, role: facts.role ?? 'member', groups: normaliseGroups(facts.groups), nodes: [], atoms: [] };
      rec.atoms = this.#userAtoms(rec);
      this.#users.set(rec.id, rec);
    } else {
      rec.name = facts.name;
      rec.email = facts.email;
      rec.role = facts.role ?? 'member';
      rec.groups = normaliseGroups(facts.groups);
      rec.atoms = this.#userAtoms(rec);
    }
    this.#ssh.userChanged(change, touched);
  }

  /**
   * Binds a class created after the build into every class-indexed structure: selector
   * resolutions, item destinations, visibility (its row is the union of what the items that
   * select it reach; the other rows gain its bit), route and exit access, node attributes,
   * and its filter template.
   */
  #bindClass(cls: IdentityClass): void {
    const c = cls.id;
    for (const res of this.#resolved.values()) {
      const sel = res.sel;
      let hit = sel.wildcard || sel.dangerAll || sel.atoms.some((a) => cls.atomFlags[a] === 1);
      if (hit && sel.postures.length > 0) hit = sel.postures.some((p) => cls.postures.has(p));
      if (!hit) {
        // A router is a member (a packet endpoint) of the selections its routes overlap. Its
        // routes cover no node (else the index rebuilds), so only literals and `*` can overlap.
        if (cls.routes.length > 0 && sel.postures.length === 0 && cls.routeSet.overlaps(sel.literal)) {
          if (res.members === res.identity) res.members = res.identity.clone();
          res.members.set(c);
        }
        continue;
      }
      res.identity.set(c);
      if (res.members !== res.identity) res.members.set(c);
    }
    for (const info of this.#items) {
      const kind = info.item.kind;
      if (kind === 'selfNet' || kind === 'selfCap') continue;
      if (this.#classInDst(info.item, cls)) info.dst.set(c);
      this.#routes.classAccess(info, cls);
    }
    this.#visibility.bindClass(c);
    this.#views.bindClass(c);
    this.#filters.bindClass(cls);
  }

  /** Whether an item delivers to a class (one class of #dstMembers). */
  #classInDst(item: RuleItem, cls: IdentityClass): boolean {
    if (item.kind === 'net') return item.dsts.some((d) => this.#partHas(d.part, cls));
    if (item.kind === 'cap') return item.dst.parts.some((p) => this.#partHas(p, cls));
    if (item.kind === 'via') return this.#resolve(this.#viaSelection(item.viaTags)).identity.has(cls.id) && this.#viaServes(cls, item.dst);
    return false;
  }

  #partHas(part: SelectionPart, cls: IdentityClass): boolean {
    switch (part.kind) {
      case 'wildcard':
        return true;
      case 'atom':
      case 'literal':
        if (part.atom !== null && cls.atomFlags[part.atom] === 1) return true;
        return cls.routes.length > 0 && cls.routeSet.overlaps(part.kind === 'literal' ? (part.literal ?? IPSet.EMPTY) : this.#partSet(part));
      case 'internet':
        return cls.exit || (cls.routes.length > 0 && cls.routeSet.overlaps(INTERNET));
      default:
        return false;
    }
  }

  /** Takes over another index's state (after a rebuild). */
  #adopt(o: PolicyIndex): void {
    this.#compiledPolicy = o.#compiledPolicy;
    this.#settings = o.#settings;
    this.#users = o.#users;
    this.#byId = o.#byId;
    this.#byUserId = o.#byUserId;
    this.#byName = o.#byName;
    this.#byV4 = o.#byV4;
    this.#byV6 = o.#byV6;
    this.#classes = o.#classes;
    this.#classByKey = o.#classByKey;
    this.#atomNodes = o.#atomNodes;
    this.#atomPlan = o.#atomPlan;
    this.#routeClasses = o.#routeClasses;
    this.#atomClasses = o.#atomClasses;
    this.#routes.adopt(o.#routes);
    this.#resolved = o.#resolved;
    this.#srcLists = o.#srcLists;
    this.#listSelections = o.#listSelections;
    this.#itemsByList = o.#itemsByList;
    this.#classLists = o.#classLists;
    this.#classListsAt = o.#classListsAt;
    // Versions must keep growing across a rebuild: keys handed out before stay distinct.
    this.#clock = Math.max(this.#clock, o.#clock) + 1;
    this.#addressEpoch = this.#clock;
    this.#items = o.#items;
    this.#visibility.adopt(o.#visibility);
    this.#filters.adopt(o.#filters);
    this.#views.adopt(o.#views);
    this.#viaItems = o.#viaItems;
    this.#ssh.adopt(o.#ssh);
    this.#allNodesSet = o.#allNodesSet;
    this.#routeStrings = o.#routeStrings;
    this.#displayName = o.#displayName;
    this.#domains = o.#domains;
    this.#routeSetCache = o.#routeSetCache;
    this.#viaSelections = o.#viaSelections;
    this.#built = true;
  }

  // --- building -----------------------------------------------------------------------------

  #addNode(nf: NodeFacts): NodeRec {
    if (this.#byId.has(nf.id)) throw new Error(`node id ${nf.id} appears twice`);
    const node = buildNode(this.#byId.size, nf, this.#users);
    this.#byId.set(node.id, node);
    this.#byName.set(node.name, node);
    if (node.v4 >= 0) this.#byV4.set(node.v4 | 0, node);
    if (node.v6Text !== null) this.#byV6.set(node.v6Text, node);
    if (!node.tagged && nf.userId !== null) {
      let set = this.#byUserId.get(nf.userId);
      if (set === undefined) this.#byUserId.set(nf.userId, (set = new Set()));
      set.add(node);
    }
    const cls = this.#classFor(node);
    node.classId = cls.id;
    node.slot = cls.nodes.length;
    cls.nodes.push(node);
    cls.addresses = null;
    for (const a of cls.atoms) this.#atomNodes[a]!++;
    this.#allNodesSet = null;
    this.#addressEpoch = ++this.#clock;
    return node;
  }

  /** Takes a node out of every node-level structure (the inverse of #addNode). */
  #dropNode(node: NodeRec): void {
    this.#byId.delete(node.id);
    if (this.#byName.get(node.name) === node) this.#byName.delete(node.name);
    if (node.v4 >= 0 && this.#byV4.get(node.v4 | 0) === node) this.#byV4.delete(node.v4 | 0);
    if (node.v6Text !== null && this.#byV6.get(node.v6Text) === node) this.#byV6.delete(node.v6Text);
    if (node.facts.userId !== null) this.#byUserId.get(node.facts.userId)?.delete(node);
    if (node.user !== null) node.user.nodes.splice(node.user.nodes.indexOf(node), 1);
    const cls = this.#classes[node.classId]!;
    const last = cls.nodes.pop()!;
    if (last !== node) {
      cls.nodes[node.slot] = last;
      last.slot = node.slot;
    }
    cls.addresses = null;
    for (const a of cls.atoms) this.#atomNodes[a]!--;
    this.#allNodesSet = null;
    this.#addressEpoch = ++this.#clock;
  }

  /** The user-kind atoms a user matches, in atom order. */
  #userAtoms(user: UserRec): number[] {
    const plan = this.#atomPlan;
    const out = new Set<number>();
    const keys = new Set<string>([user.name.toLowerCase(), `${user.name}@`.toLowerCase()]);
    if (user.email !== '') keys.add(user.email.toLowerCase());
    for (const key of keys) for (const id of plan.loginAtoms.get(key) ?? []) out.add(id);
    for (const atom of plan.otherUserAtoms) if (userAtomMatches(atom.spec, user)) out.add(atom.id);
    return [...out].sort((a, b) => a - b);
  }

  /** What makes a node's class: its atoms, served routes, exit routes and postures. */
  #classKeyOf(node: NodeRec): { key: string; ids: number[]; postures: string[] } {
    const plan = this.#atomPlan;
    const ids: number[] = [];
    if (node.tagged) {
      if (plan.taggedAtom >= 0) ids.push(plan.taggedAtom);
      for (const tag of node.tags) for (const id of plan.tagAtoms.get(tag) ?? []) ids.push(id);
    } else if (node.user !== null) {
      ids.push(...node.user.atoms);
    }
    if (plan.literalAtoms.length > 0 && ((node.v4 >= 0 && plan.anyLiteral.containsV4(node.v4)) || (node.v6 !== null && plan.anyLiteral.containsV6(node.v6)))) {
      for (const a of plan.literalAtoms) if (literalAtomMatches(a, node)) ids.push(a.id);
    }
    ids.sort((a, b) => a - b);
    const policyPostures = this.compiled.policy.postures;
    const postures = this.compiled.postureNames.filter((name) => meetsPosture(policyPostures.get(name) ?? [], node.facts.postureAttributes));
    const key = `${ids.join(',')}|${node.routeTexts.join(',')}|${node.exitRoutes.length > 0 ? 'x' : ''}|${postures.join(',')}`;
    return { key, ids, postures };
  }

  /** The node's identity class, created (and, after the build, bound everywhere) if new. */
  #classFor(node: NodeRec): IdentityClass {
    const { key, ids, postures } = this.#classKeyOf(node);
    let cls = this.#classByKey.get(key);
    if (cls !== undefined) return cls;
    const flags = new Uint8Array(this.compiled.atoms.length);
    for (const id of ids) flags[id] = 1;
    cls = {
      id: this.#classes.length,
      key,
      atoms: ids,
      atomFlags: flags,
      nodes: [],
      routes: node.routes,
      routeTexts: node.routeTexts,
      routeSet: IPSet.of(...node.routes),
      exit: node.exitRoutes.length > 0,
      postures: new Set(postures),
      addresses: null,
    };
    this.#classes.push(cls);
    this.#classByKey.set(key, cls);
    for (const id of ids) this.#atomClasses[id]!.push(cls.id);
    if (cls.routes.length > 0) this.#routeClasses.push(cls);
    if (this.#built) this.#bindClass(cls);
    return cls;
  }

  #classAddresses(cls: IdentityClass): IPSet {
    if (cls.addresses === null) cls.addresses = nodeAddressSet(cls.nodes);
    return cls.addresses;
  }

  #allNodes(): IPSet {
    if (this.#allNodesSet === null) this.#allNodesSet = nodeAddressSet([...this.#byId.values()]);
    return this.#allNodesSet;
  }

  #bits(): Bits {
    return new Bits(this.#classes.length);
  }

  /** Binds a selection: which classes it names and which addresses it covers. */
  #resolve(sel: Selection): Resolved {
    const cached = this.#resolved.get(sel.key);
    if (cached !== undefined) return cached;
    const identity = this.#bits();
    if (sel.wildcard || sel.dangerAll) for (let i = 0; i < this.#classes.length; i++) identity.set(i);
    else for (const atom of sel.atoms) for (const c of this.#atomClasses[atom] ?? []) identity.set(c);
    if (sel.postures.length > 0) {
      // Only devices meeting one of the postures are sources; literal addresses are no devices.
      const restricted = this.#bits();
      for (const c of identity) if (sel.postures.some((p) => this.#classes[c]!.postures.has(p))) restricted.set(c);
      const resolved = new Resolved(sel, restricted, () => this.#identityAddresses(restricted), () => this.#addressEpoch);
      this.#resolved.set(sel.key, resolved);
      return resolved;
    }
    const resolved = new Resolved(sel, identity, () => this.#selectionAddresses(sel), () => this.#addressEpoch);
    if (this.#routeClasses.length > 0) {
      const members = identity.clone();
      for (const cls of this.#routeClasses) if (!members.has(cls.id) && cls.routeSet.overlaps(resolved.ipSet)) members.set(cls.id);
      resolved.members = members;
    }
    this.#resolved.set(sel.key, resolved);
    return resolved;
  }

  #identityAddresses(classes: Bits): IPSet {
    const b = new IPSetBuilder();
    for (const c of classes) b.addSet(this.#classAddresses(this.#classes[c]!));
    return b.build();
  }

  /** The addresses a selection covers: named nodes' addresses, literals, `*`'s space and routes. */
  #selectionAddresses(sel: Selection): IPSet {
    if (sel.dangerAll) return IPSet.of({ addr: { family: 4, value: 0n }, bits: 0 }, { addr: { family: 6, value: 0n }, bits: 0 });
    if (sel.wildcard) return this.#allNodes().union(sel.literal).union(TAILSCALE_SPACE).union(this.#routeSet());
    // A literal names its prefix, not the other addresses of the nodes inside it.
    const byIdentity = this.#bits();
    for (const part of sel.parts) {
      if (part.kind === 'atom' && part.atom !== null) for (const c of this.#atomClasses[part.atom] ?? []) byIdentity.set(c);
    }
    const b = new IPSetBuilder();
    for (const c of byIdentity) b.addSet(this.#classAddresses(this.#classes[c]!));
    return b.build().union(sel.literal);
  }

  #routeSetCache: IPSet | null = null;
  #routeSet(): IPSet {
    if (this.#routeSetCache === null) {
      const b = new IPSetBuilder();
      for (const n of this.#byId.values()) for (const r of n.routes) b.addPrefix(r);
      this.#routeSetCache = b.build();
    }
    return this.#routeSetCache;
  }

  /** The set of addresses one selector names, for per-source strings next to `*`. */
  #partSet(part: SelectionPart): IPSet {
    if (part.kind === 'literal') return part.literal ?? IPSet.EMPTY;
    if (part.kind === 'atom' && part.atom !== null) {
      const b = new IPSetBuilder();
      for (const c of this.#atomClasses[part.atom] ?? []) b.addSet(this.#classAddresses(this.#classes[c]!));
      return b.build();
    }
    return IPSet.EMPTY;
  }

  /**
   * SrcIPs as the service writes them. Literal prefixes (hosts, CIDRs) are one set rendered as
   * addresses, CIDRs and ranges; each node a user, group, tag or autogroup names is listed by
   * its own addresses, never merged with its neighbours. With `*`: Tailscale's space, every
   * served subnet route, then each other source's own strings (kept even when covered).
   * `["*"]` for autogroup:danger-all. One list per selection, kept current by joins and leaves.
   */
  #srcList(sel: Selection): SrcList {
    const cached = this.#srcLists.get(sel.key);
    if (cached !== undefined) return cached;
    const version = ++this.#clock;
    let list: SrcList;
    if (sel.postures.length > 0) {
      list = new SrcList([], nodesOfClasses(this.#resolve(sel).identity, this.#classes), null, sel.key, version);
    } else if (sel.dangerAll) {
      list = new SrcList(['*'], [], null, sel.key, version);
    } else {
      const literal = sel.wildcard ? TAILSCALE_SPACE.union(sel.literal) : sel.literal;
      const strings = [...literal.toStrings()];
      if (sel.wildcard) {
        strings.push(...this.#routeStrings);
        for (const part of sel.parts) if (part.kind === 'literal' && part.literal !== null) strings.push(...part.literal.toStrings());
      }
      const classes = this.#bits();
      for (const part of sel.parts) {
        if (part.kind === 'atom' && part.atom !== null) for (const c of this.#atomClasses[part.atom] ?? []) classes.set(c);
      }
      const covered = !sel.wildcard && !literal.isEmpty() ? literal : null;
      list = new SrcList(strings, nodesOfClasses(classes, this.#classes), covered, sel.key, version);
    }
    this.#srcLists.set(sel.key, list);
    this.#listSelections.set(sel.key, sel);
    return list;
  }

  /** Whether a class's nodes are listed in a selection's SrcIPs. */
  #listsClass(sel: Selection, cls: IdentityClass): boolean {
    if (sel.postures.length > 0) return this.#resolve(sel).identity.has(cls.id);
    if (sel.dangerAll) return false;
    return sel.parts.some((part) => part.kind === 'atom' && part.atom !== null && cls.atomFlags[part.atom] === 1);
  }

  #resolveItems(): void {
    for (const item of this.compiled.items) {
      const src = this.#resolve(item.src);
      const info: ItemInfo = { item, src, list: this.#srcList(item.src), dst: this.#dstMembers(item) };
      this.#items.push(info);
      const sharing = this.#itemsByList.get(info.list);
      if (sharing === undefined) this.#itemsByList.set(info.list, [info]);
      else sharing.push(info);
      if (item.kind === 'via') this.#viaItems.push(info);
      // Companion rules list the grant's destinations as sources. Their list exists from the
      // start, so which caps a node carries depends on the policy and the node alone.
      if (item.kind === 'cap' && hasCompanionCaps(item.capMap)) this.#srcList(item.dst);
    }
    this.#filters.placeRules();
  }

  // --- visibility -----------------------------------------------------------------------------

  /** Classes an item delivers to, for visibility: who is a destination of it. */
  #dstMembers(item: RuleItem): Bits {
    const out = this.#bits();
    if (item.kind === 'net') {
      for (const d of item.dsts) this.#partMembers(d.part, out);
    } else if (item.kind === 'cap') {
      for (const part of item.dst.parts) this.#partMembers(part, out);
    } else if (item.kind === 'via') {
      const via = this.#resolve(this.#viaSelection(item.viaTags));
      for (const c of via.identity) {
        const cls = this.#classes[c]!;
        if (this.#viaServes(cls, item.dst)) out.set(c);
      }
    }
    return out;
  }

  #partMembers(part: SelectionPart, out: Bits): void {
    switch (part.kind) {
      case 'wildcard':
        for (let i = 0; i < this.#classes.length; i++) out.set(i);
        return;
      case 'atom':
      case 'literal': {
        if (part.atom !== null) for (const c of this.#atomClasses[part.atom] ?? []) out.set(c);
        const set = part.kind === 'literal' ? (part.literal ?? IPSet.EMPTY) : this.#partSet(part);
        for (const cls of this.#classes) if (cls.routes.length > 0 && cls.routeSet.overlaps(set)) out.set(cls.id);
        return;
      }
      case 'internet':
        for (const cls of this.#classes) if (cls.exit || (cls.routes.length > 0 && cls.routeSet.overlaps(INTERNET))) out.set(cls.id);
        return;
      default:
        return;
    }
  }

  #viaSelections = new Map<string, Selection>();
  #viaSelection(tags: readonly string[]): Selection {
    const key = tags.join(',');
    let sel = this.#viaSelections.get(key);
    if (sel === undefined) {
      sel = this.compiled.select(tags.map((t) => ({ text: t, alias: { kind: 'tag', name: t } })));
      this.#viaSelections.set(key, sel);
    }
    return sel;
  }

  /** Whether a router class serves some destination of a via grant. */
  #viaServes(cls: IdentityClass, dst: Selection): boolean {
    if (dst.internet && cls.exit) return true;
    return cls.routes.length > 0 && cls.routeSet.overlaps(dst.literal);
  }

  // --- route access -------------------------------------------------------------------------

  #partsSet(parts: readonly SelectionPart[]): IPSet {
    const b = new IPSetBuilder();
    for (const p of parts) b.addSet(this.#partSet(p));
    return b.build();
  }

  // --- node attributes ----------------------------------------------------------------------

  // --- filter templates ---------------------------------------------------------------------

  // --- queries ------------------------------------------------------------------------------

  node(idOrName: number | string): NodeFacts {
    return this.#node(idOrName).facts;
  }

  hasNode(idOrName: number | string): boolean {
    return (typeof idOrName === 'number' ? this.#byId.get(idOrName) : this.#byName.get(idOrName)) !== undefined;
  }

  nodeIds(): number[] {
    return [...this.#byId.keys()];
  }

  /** Number of identity classes (for benchmarks and diagnostics). */
  get classCount(): number {
    return this.#classes.length;
  }

  /** The class a node belongs to; nodes with equal class ids get equal filter templates. */
  classOf(nodeId: number): number {
    return this.#node(nodeId).classId;
  }

  #node(idOrName: number | string): NodeRec {
    const node = typeof idOrName === 'number' ? this.#byId.get(idOrName) : this.#byName.get(idOrName);
    if (node === undefined) {
      throw new PolicyError('unknownNode', `node ${JSON.stringify(idOrName)} is not in the tailnet`, null);
    }
    return node;
  }

  /**
   * The capabilities a node carries in its peers' CapMap for `cap:` sources: one per selection
   * whose SrcIPs list the node. The same for every viewer. Sorted.
   */
  sourceCapsOf(nodeId: number): string[] {
    const node = this.#node(nodeId);
    const out: string[] = [];
    for (const list of this.#listsOf(this.#classes[node.classId]!)) {
      if (list.capName !== null && list.entriesOf(node.id) !== '') out.push(list.capName);
    }
    return [...new Set(out)].sort();
  }

  /**
   * The node's peers: every node it may reach or that may reach it. The relation is
   * symmetric, so this is also the set of nodes that must hear about changes to this node.
   */
  peersOf(nodeId: number): number[] {
    return this.#visibility.peersOf(this.#node(nodeId));
  }

  /** Whether `a` and `b` see each other. */
  sees(a: number, b: number): boolean {
    if (a === b) return false;
    const na = this.#node(a);
    const nb = this.#node(b);
    return this.#visibility.sees(na, nb);
  }

  /** Like sees(), but false (not an error) when either node is unknown. */
  seesIfKnown(a: number, b: number): boolean {
    if (a === b) return false;
    const na = this.#byId.get(a);
    const nb = this.#byId.get(b);
    return na !== undefined && nb !== undefined && this.#visibility.sees(na, nb);
  }

  /** The node as it sees itself. */
  selfView(nodeId: number): SelfView {
    return this.#views.selfView(this.#node(nodeId));
  }

  /** A peer as `viewerId` sees it: addresses, the routes it carries for this viewer, caps. */
  peerView(viewerId: number, peerId: number): PeerView {
    return this.#views.peerView(this.#node(viewerId), this.#node(peerId));
  }

  /**
   * A key naming peerView(viewerId, peerId) among the viewers of one peer: equal keys promise
   * equal views. A peer without subnet or exit routes has one key for every viewer ("0"), or
   * two when some viewers are IPv6-only; a router's key says which of its prefixes it carries
   * for this viewer, an exit node's whether the viewer may use it.
   */
  peerViewKey(viewerId: number, peerId: number): string {
    return this.#views.peerViewKey(this.#node(viewerId), this.#node(peerId));
  }

  /**
   * The node's PacketFilter: rules whose destinations it is, or routes for, in policy order.
   *
   * `selfAsWildcard` gives the wire form for a node that serves no routes: DstPorts entries
   * that name the node's own addresses become one `*` entry. The client only accepts inbound
   * packets addressed to itself (or to routes it serves), so for such a node the two forms
   * accept exactly the same packets, and every node of a class then shares one filter instead
   * of one per address. Capability grants keep their prefixes.
   */
  filterFor(nodeId: number, options: FilterFormOptions = {}): tailcfg.FilterRule[] {
    return this.#filters.filterFor(this.#node(nodeId), options);
  }

  /**
   * A key naming filterFor(nodeId, options): equal keys promise equal filters, and the key
   * changes whenever the node's filter does. Nodes of one class share it unless the filter
   * names the node's own addresses (in the wildcard form only when a capability grant does, or
   * the node serves routes) or its user's autogroup:self rules; every node with an empty
   * filter shares one. Keys of different forms differ (`c`, `c…w`, `k`) except for that empty
   * filter, so one cache can hold every form. O(1).
   */
  filterKey(nodeId: number, options: FilterFormOptions = {}): string {
    return this.#filters.filterKey(this.#node(nodeId), options);
  }

  /** The node's SSH policy, or null when the policy has no `ssh` section. */
  sshPolicyFor(nodeId: number): tailcfg.SSHPolicy | null {
    if (this.compiled.ssh === null) return null;
    return { rules: this.sshRulesFor(nodeId) };
  }

  /** The node's SSH rules: check rules first, then accept rules (first match wins). */
  sshRulesFor(nodeId: number): tailcfg.SSHRule[] {
    return this.#ssh.rulesFor(this.#node(nodeId));
  }

  /**
   * The check period of the `check` rules that let `src` log in to `dst` as `localUser` (the
   * shortest when several do): null when those rules name none (the caller's default),
   * undefined when no check rule lets it (the policy changed since the client asked).
   */
  sshCheckPeriodMs(srcId: number, dstId: number, localUser: string): number | null | undefined {
    if (!this.hasNode(srcId) || !this.hasNode(dstId)) return undefined;
    return this.#ssh.checkPeriodMs(this.#node(srcId), this.#node(dstId), localUser);
  }

  // --- decisions for control and api --------------------------------------------------------

  /** Whether the requester may apply `requestedTags` (tagOwners, tags owned by tags). */
  tagsAllowed(owner: TagOwnerContext, requestedTags: readonly string[]): TagDecision {
    return tagsAllowed(this.compiled, this.#users, owner, requestedTags);
  }

  /**
   * The advertised routes autoApprovers approve for a node: subnet routes through the routes
   * map (an approver of a covering prefix approves), exit routes only through exitNode.
   */
  autoApprovedRoutes(node: Pick<NodeFacts, 'userId' | 'tags' | 'ipv4' | 'ipv6'>, advertisedRoutes: readonly string[]): string[] {
    return autoApprovedRoutes(this.compiled, this.#users, node, advertisedRoutes);
  }

  // --- helpers for tests and explain --------------------------------------------------------

  /** Nodes a selection names (identity and literal addresses; not routes). */
  nodesOf(sel: Selection): NodeFacts[] {
    return this.#nodesOf(sel).map((n) => n.facts);
  }

  #nodesOf(sel: Selection): NodeRec[] {
    if (sel.wildcard) return [...this.#byId.values()];
    const out: NodeRec[] = [];
    for (const n of this.#byId.values()) {
      if (factsMatch(this.compiled, this.#users, n.facts, sel)) out.push(n);
    }
    return out;
  }

  /** The node owning an address, if any. */
  nodeByAddress(text: string): NodeFacts | null {
    const addr = parseIP(text);
    const n = addr.family === 4 ? this.#byV4.get(Number(addr.value) | 0) : this.#byV6.get(formatIP(addr));
    return n?.facts ?? null;
  }

  /** Compiled items with their resolved sources, for evaluation (tests, explain). */
  items(): readonly { readonly item: RuleItem; readonly srcSet: IPSet; readonly srcIPs: readonly string[] }[] {
    return this.#items.map((i) => ({ item: i.item, srcSet: i.src.ipSet, srcIPs: i.list.strings }));
  }

  /** Whether a node, by its identity, is named by one selection part. */
  nodeMatchesPart(nodeId: number, part: SelectionPart): boolean {
    const node = this.#node(nodeId);
    if (part.kind === 'wildcard') return true;
    if (part.atom !== null) return this.#classes[node.classId]!.atomFlags[part.atom] === 1 || factsMatch(this.compiled, this.#users, node.facts, { key: '', atoms: [], literal: IPSet.EMPTY, wildcard: false, dangerAll: false, internet: false, self: false, parts: [part], postures: [] });
    return false;
  }

  /** Same user and both untagged (autogroup:self). */
  sameUser(a: number, b: number): boolean {
    const na = this.#node(a);
    const nb = this.#node(b);
    return na.user !== null && na.user === nb.user;
  }

  isExitNode(nodeId: number): boolean {
    return this.#node(nodeId).exitRoutes.length > 0;
  }

  primaryRoutes(): PrimaryRouteTable {
    return this.#routes.primary;
  }
}


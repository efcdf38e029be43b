// The policy bound to a tailnet: the public face of the policy engine's index. It answers the
// queries the mapper, the control and API layers and the offline commands ask (peers, views,
// filters, SSH, decisions) and takes the updates (upsertNode, removeNode, setOnline,
// upsertUser, removeUser, setSettings, replacePolicy), each returning the exact PolicyDelta.
//
// The work is done by parts with one job each, built here in order and reading one another
// through one host object (see docs/architecture.md): ClassBinding (records, classes, clock),
// SelectionBinding (selections, source lists, items), Visibility, RouteTable, ClassFilters,
// NodeViews, SshPolicies, NodeUpdates (incremental updates) and diffByClass (rebuild and diff).
//
// Build cost is proportional to nodes + classes x rules (+ classes^2/32 for visibility); a
// query touches only the asked-for node's class, its user and its peers; an update costs in
// proportion to its delta; filterKey and peerViewKey name outputs in O(1) so the mapper
// serialises each once.
import type * as tailcfg from '../../tailcfg/index.js';
import { formatIP, parseIP } from '../../util/ip.js';
import { IPSet } from '../../util/ip-set.js';
import type { CompiledPolicy, RuleItem, Selection, SelectionPart } from '../compile.js';
import { PolicyError } from '../errors.js';
import type { NodeFacts, TailnetFacts, TailnetSettings, UserFacts } from '../facts.js';
import { EMPTY_POLICY_DELTA, type PolicyDelta } from './delta.js';
import { PrimaryRouteTable } from '../primary-routes.js';
import { RouteTable, type RoutesHost } from './route-table.js';
import { type IdentityClass, type NodeRec, buildUsers, normaliseGroups } from './records.js';
import { autoApprovedRoutes, factsMatch, tagsAllowed } from './decisions.js';
import { samePolicyFacts, type UpdateOutputs, type NodeChange, type UserChange } from './delta-collection.js';
import type { FilterFormOptions } from './filter-template.js';
import { sameNumbers, sameOptionalLists, sameStringSets } from './node-lists.js';
import { tailnetNames, type TagDecision, type TagOwnerContext } from './selections.js';
import { ClassBinding } from './class-binding.js';
import { SelectionBinding, type CarriedList } from './selection-binding.js';
import { SshPolicies, checkSshDomains, sameSshRules, type SshHost } from './ssh-policy.js';
import { diffByClass } from './class-diff.js';
import { diffKeptClasses, type KeptClassSide } from './kept-class-diff.js';
import type { PeerView, SelfView } from './views.js';
import { NodeViews, type ViewsHost } from './node-views.js';
import { ClassFilters, type FiltersHost } from './class-filters.js';
import { Visibility, type VisibilityHost } from './visibility.js';
import { NodeUpdates, type UpdatesHost } from './node-updates.js';

export interface PolicyIndexOptions {
  /** Reuse a primary-route table the server keeps (failover state); built from facts otherwise. */
  readonly primaryRoutes?: PrimaryRouteTable;
}

/** What an index built for a policy edit that keeps the classes takes from the one it replaces. */
interface KeptParts {
  readonly classes: ClassBinding;
  readonly lists: ReadonlyMap<string, CarriedList>;
}

export class PolicyIndex {
  #compiledPolicy: CompiledPolicy;
  #settings: TailnetSettings;
  /** Node and user records, identity classes, the clock (swapped whole by #adopt). */
  #binding: ClassBinding;
  /** Selections bound to classes, source lists and rule items (swapped whole by #adopt). */
  #selections: SelectionBinding;
  readonly #routes: RouteTable;
  readonly #visibility: Visibility;
  readonly #filters: ClassFilters;
  readonly #views: NodeViews;
  readonly #ssh: SshPolicies;
  readonly #updates: NodeUpdates;
  #displayName: string;
  #domains: ReadonlySet<string> | null;

  /**
   * `kept` (for replacePolicy only): the class binding of this tailnet's index, whose classes
   * the new policy keeps (see ClassBinding.keepsClassesUnder), shared, not copied (facts.nodes
   * is then not read), and that index's source lists to take over.
   */
  constructor(compiled: CompiledPolicy, facts: TailnetFacts, options: PolicyIndexOptions = {}, kept: KeptParts | null = null) {
    this.#compiledPolicy = compiled;
    this.#settings = facts.settings ?? {};
    this.#binding = kept?.classes ?? new ClassBinding(compiled, buildUsers(facts.users));
    this.#selections = new SelectionBinding(compiled, this.#binding, kept?.lists ?? null);
    const names = tailnetNames(this.#settings, facts.users);
    this.#displayName = names.displayName;
    this.#domains = names.domains;
    const host = this.#host();
    this.#ssh = new SshPolicies(host);
    this.#views = new NodeViews(host);
    this.#filters = new ClassFilters(host);
    this.#visibility = new Visibility(host);

    if (kept === null) for (const nf of facts.nodes) this.#binding.addNode(nf);
    const nodes = [...this.#binding.byId.values()];
    const primary =
      options.primaryRoutes ??
      new PrimaryRouteTable(nodes.filter((n) => n.routeTexts.length > 0).map((n) => ({ nodeId: n.id, order: n.order, online: n.facts.online, routes: n.routeTexts })));
    this.#routes = new RouteTable(host, primary);
    this.#updates = new NodeUpdates(host);
    this.#binding.routeStrings = [...new Set(nodes.flatMap((n) => n.routeTexts))].sort();
    checkSshDomains(compiled, this.#domains);
    this.#selections.resolveItems();
    this.#filters.placeRules();
    this.#visibility.build();
    this.#routes.build();
    this.#views.build(this.#binding.classes.length);
    this.#filters.build();
    // From now on a new class is bound into every part.
    this.#binding.onNewClass = (cls) => this.#bindClass(cls);
  }

  /**
   * The state and services the parts read from one another through the index. Getters, so
   * that each part always reads the current state (also after #adopt swaps it).
   */
  #host(): SshHost & ViewsHost & RoutesHost & FiltersHost & VisibilityHost & UpdatesHost {
    const index = this;
    return {
      get binding() {
        return index.#binding;
      },
      get selections() {
        return index.#selections;
      },
      get routes() {
        return index.#routes;
      },
      get visibility() {
        return index.#visibility;
      },
      get filters() {
        return index.#filters;
      },
      get ssh() {
        return index.#ssh;
      },
      outputs: () => this.#outputs(),
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
        return index.#binding.users;
      },
      get classes() {
        return index.#binding.classes;
      },
      get routeClasses() {
        return index.#binding.routeClasses;
      },
      get items() {
        return index.#selections.items;
      },
      get viaItems() {
        return index.#selections.viaItems;
      },
      nodeById: (id) => this.#binding.byId.get(id),
      bits: () => this.#binding.bits(),
      classesInsidePrefix: (prefix) => this.#binding.classesInsidePrefix(prefix),
      atomClasses: (atom) => this.#binding.atomClasses[atom] ?? [],
      servedRouteSet: () => this.#binding.routeSet(),
      partSet: (part) => this.#selections.partSet(part),
      srcList: (sel) => this.#selections.srcList(sel),
      atomExists: (atom) => (this.#binding.atomNodes[atom] ?? 0) > 0,
      tick: () => this.#binding.tick(),
      sees: (a, b) => this.sees(a, b),
      nodes: () => this.#binding.byId.values(),
      resolve: (sel) => this.#selections.resolve(sel),
      designatedRouter: (viewer, prefix) => this.#routes.designatedRouter(viewer, prefix),
      canUseExit: (viewer, exitNode) => this.#routes.canUseExit(viewer, exitNode),
      primariesOf: (id) => this.#routes.primary.primariesOf(id),
    };
  }

  /** Updates that fell back to a rebuild and diff (see #needsRebuild); for tests and diagnostics. */
  rebuilds = 0;
  /** Policy edits that kept every node's class (built the class-level parts only); for tests and diagnostics. */
  classesKept = 0;

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
    const old = this.#binding.byId.get(facts.id);
    if (old !== undefined && samePolicyFacts(old.facts, facts)) {
      if (old.name !== facts.name) return this.#applyNodes([{ id: facts.id, facts }], null);
      return old.facts.online === facts.online ? ((old.facts = facts), EMPTY_POLICY_DELTA) : this.#updates.online(old, facts);
    }
    return this.#applyNodes([{ id: facts.id, facts }], null);
  }

  /** Removes a node; unknown ids change nothing. */
  removeNode(id: number): PolicyDelta {
    if (!this.#binding.byId.has(id)) return EMPTY_POLICY_DELTA;
    return this.#applyNodes([{ id, facts: null }], null);
  }

  /**
   * A node came online or went offline. Only HA route failover depends on it: for a node that
   * serves no subnet route this touches nothing; for a router, only viewers of the prefixes
   * whose carrier moved.
   */
  setOnline(id: number, online: boolean): PolicyDelta {
    const node = this.#binding.byId.get(id);
    if (node === undefined || node.facts.online === online) return EMPTY_POLICY_DELTA;
    return this.#updates.online(node, { ...node.facts, online });
  }

  /** Adds a user or changes one's name, email or role. */
  upsertUser(user: UserFacts): PolicyDelta {
    const change: UserChange = { id: user.id, facts: user };
    if (this.#ownerChanges(change)) return this.#rebuildWith([], change);
    const rec = this.#binding.users.get(user.id);
    if (rec === undefined) {
      // Nodes may name the user before it exists (or after it was removed): they join it now.
      const waiting = [...(this.#binding.byUserId.get(user.id) ?? [])];
      return this.#applyNodes(
        waiting.map((n) => ({ id: n.id, facts: n.facts })),
        change,
      );
    }
    const role = user.role ?? 'member';
    const atoms = this.#binding.userAtoms({ ...rec, name: user.name, email: user.email, role, groups: normaliseGroups(user.groups) });
    if (rec.role === role && sameNumbers(rec.atoms, atoms)) {
      // Same identity: only SSH localpart mappings can change.
      return this.#updates.userRenamed(change);
    }
    return this.#applyNodes(
      rec.nodes.map((n) => ({ id: n.id, facts: n.facts })),
      change,
    );
  }

  /** Removes a user; its untagged nodes, if any remain, stop matching user selectors. */
  removeUser(id: number): PolicyDelta {
    const rec = this.#binding.users.get(id);
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
    const delta = diffByClass(this.#outputs(), next.#outputs(), new Set(this.nodeIds()), true);
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
    // Most edits keep the atoms, so every node stays in its class: the records and classes are
    // shared and only the class-level parts are built anew (cost classes x rules, not nodes).
    let keep = this.#binding.keepsClassesUnder(compiled);
    // New atoms after the ones in force (a group's new members, a new login or tag): the nodes
    // they single out move to finer classes first, which changes no output of the policy in
    // force, and then the classes are kept as above.
    const extension = keep ? null : this.#binding.extensionTo(compiled);
    if (extension !== null) {
      for (const { cls, from } of this.#binding.extend(extension)) this.#filters.copyTemplate(from.id, cls.id);
      keep = true;
    }
    if (keep) this.classesKept++;
    const facts = { users: this.#userFacts(), nodes: keep ? [] : this.#nodeFacts(), settings: this.#settings };
    const next = new PolicyIndex(compiled, facts, { primaryRoutes: this.#routes.primary.clone() }, keep ? { classes: this.#binding, lists: this.#selections.carriedLists() } : null);
    // Only once the new index stands (a policy the build rejects leaves this one as it was).
    if (keep) this.#binding.rebind(compiled);
    this.#ssh.bind();
    const sshSame = keep && sameSshRules(this.compiled, compiled);
    if (sshSame) next.#ssh.carryOver(this.#ssh);
    else next.#ssh.bind();
    const delta = keep ? diffKeptClasses(this.#outputs(), next.#outputs(), this.#binding.classes, sshSame) : diffByClass(this.#outputs(), next.#outputs(), new Set(), false);
    this.#adopt(next);
    return delta;
  }

  /** What the deltas (incremental and by class) read of this index. */
  #outputs(): KeptClassSide & UpdateOutputs {
    return {
      capLists: () => this.#selections.capLists(),
      compiled: this.#compiledPolicy,
      nodes: this.#binding.byId,
      users: this.#binding.users,
      displayName: this.#displayName,
      visibilityRow: (c) => this.#visibility.rowOf(c),
      classAttrs: (c) => this.#views.attrsOf(c),
      standInFilter: (c) => this.#filters.standInFilter(c),
      hasSelfItems: () => this.#filters.self.has(),
      ipv6Only: (n) => this.#views.ipv6Only(n),
      sshRole: (n) => this.#ssh.roleOf(n),
      sees: (a, b) => this.sees(a, b),
      peersOf: (id) => this.peersOf(id),
      peerView: (v, p) => this.peerView(v, p),
      filterFor: (id) => this.filterFor(id),
      sshPolicyFor: (id) => this.sshPolicyFor(id),
      selfView: (id) => this.selfView(id),
      sourceCapsOf: (id) => this.sourceCapsOf(id),
      viewKey: (viewer, peer) => this.#views.viewKey(viewer, peer),
    };
  }

  #userFacts(): UserFacts[] {
    return [...this.#binding.users.values()].map((u) => ({ id: u.id, name: u.name, email: u.email, role: u.role, groups: u.groups }));
  }

  #nodeFacts(): NodeFacts[] {
    return [...this.#binding.byId.values()].map((n) => n.facts);
  }

  /**
   * Applies node changes (and a user change between taking the old nodes out and putting the
   * new ones in) and returns the exact delta, in place or by rebuilding and diffing.
   */
  #applyNodes(changes: readonly NodeChange[], userChange: UserChange | null): PolicyDelta {
    if (this.#updates.needsRebuild(changes)) return this.#rebuildWith(changes, userChange);
    return this.#updates.apply(changes, userChange);
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
    for (const n of this.#binding.byId.values()) nodes.set(n.id, n.facts);
    for (const c of changes) {
      if (c.facts === null) nodes.delete(c.id);
      else nodes.set(c.id, c.facts);
    }
    const next = new PolicyIndex(this.compiled, { users, nodes: [...nodes.values()], settings: this.#settings }, { primaryRoutes: this.#routes.tableAfter(changes) });
    this.#ssh.bind();
    next.#ssh.bind();
    const delta = diffByClass(this.#outputs(), next.#outputs(), new Set(changes.map((c) => c.id)), userChange !== null);
    this.#adopt(next);
    return delta;
  }

  /**
   * Binds a class created after the build into every class-indexed structure: selector
   * resolutions, item destinations, visibility (its row is the union of what the items that
   * select it reach; the other rows gain its bit), route and exit access, node attributes,
   * and its filter template.
   */
  #bindClass(cls: IdentityClass): void {
    this.#selections.bindClass(cls);
    for (const info of this.#selections.items) {
      const kind = info.item.kind;
      if (kind !== 'selfNet' && kind !== 'selfCap') this.#routes.classAccess(info, cls);
    }
    this.#visibility.bindClass(cls.id);
    this.#views.bindClass(cls.id);
    this.#filters.bindClass(cls);
  }

  /** Takes over another index's state (after a rebuild). */
  #adopt(o: PolicyIndex): void {
    this.#compiledPolicy = o.#compiledPolicy;
    this.#settings = o.#settings;
    this.#displayName = o.#displayName;
    this.#domains = o.#domains;
    // Versions must keep growing across a rebuild: keys handed out before stay distinct.
    o.#binding.clock = Math.max(this.#binding.clock, o.#binding.clock) + 1;
    // A shared binding (a policy edit that kept the classes) kept every address too.
    if (o.#binding !== this.#binding) o.#binding.addressEpoch = o.#binding.clock;
    this.#binding = o.#binding;
    this.#binding.onNewClass = (cls) => this.#bindClass(cls);
    this.#selections = o.#selections;
    this.#routes.adopt(o.#routes);
    this.#visibility.adopt(o.#visibility);
    this.#filters.adopt(o.#filters);
    this.#views.adopt(o.#views);
    this.#ssh.adopt(o.#ssh);
  }

  // --- visibility -----------------------------------------------------------------------------

  // --- route access -------------------------------------------------------------------------

  // --- node attributes ----------------------------------------------------------------------

  // --- filter templates ---------------------------------------------------------------------

  // --- queries ------------------------------------------------------------------------------

  node(idOrName: number | string): NodeFacts {
    return this.#node(idOrName).facts;
  }

  hasNode(idOrName: number | string): boolean {
    return (typeof idOrName === 'number' ? this.#binding.byIdSlot[idOrName] : this.#binding.byName.get(idOrName)) !== undefined;
  }

  nodeIds(): number[] {
    return [...this.#binding.byId.keys()];
  }

  /** Number of identity classes (for benchmarks and diagnostics). */
  get classCount(): number {
    return this.#binding.classes.length;
  }

  /** The class a node belongs to; nodes with equal class ids get equal filter templates. */
  classOf(nodeId: number): number {
    return this.#node(nodeId).classId;
  }

  #node(idOrName: number | string): NodeRec {
    // By id: the dense array, one load where the Map of every node would be a hash probe.
    const node = typeof idOrName === 'number' ? this.#binding.byIdSlot[idOrName] : this.#binding.byName.get(idOrName);
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
    for (const list of this.#selections.listsOf(this.#binding.classes[node.classId]!)) {
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
    const classOfId = this.#binding.classOfId;
    const ca = classOfId.get(a);
    const cb = classOfId.get(b);
    if (ca < 0 || cb < 0) return false;
    // Seeing is symmetric; asking from b's side reads b's visibility row, which stays in the
    // cache while the mapper checks each of the viewers of one changed peer b. The class ids
    // answer almost every check; only autogroup:self needs the two records.
    if (this.#visibility.classSees(cb, ca)) return true;
    return this.#visibility.sees(this.#binding.byIdSlot[b]!, this.#binding.byIdSlot[a]!);
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
    return tagsAllowed(this.compiled, this.#binding.users, owner, requestedTags);
  }

  /**
   * The advertised routes autoApprovers approve for a node: subnet routes through the routes
   * map (an approver of a covering prefix approves), exit routes only through exitNode.
   */
  autoApprovedRoutes(node: Pick<NodeFacts, 'userId' | 'tags' | 'ipv4' | 'ipv6'>, advertisedRoutes: readonly string[]): string[] {
    return autoApprovedRoutes(this.compiled, this.#binding.users, node, advertisedRoutes);
  }

  // --- helpers for tests and explain --------------------------------------------------------

  /** Nodes a selection names (identity and literal addresses; not routes). */
  nodesOf(sel: Selection): NodeFacts[] {
    return this.#nodesOf(sel).map((n) => n.facts);
  }

  #nodesOf(sel: Selection): NodeRec[] {
    if (sel.wildcard) return [...this.#binding.byId.values()];
    const out: NodeRec[] = [];
    for (const n of this.#binding.byId.values()) {
      if (factsMatch(this.compiled, this.#binding.users, n.facts, sel)) out.push(n);
    }
    return out;
  }

  /** The node owning an address, if any. */
  nodeByAddress(text: string): NodeFacts | null {
    const addr = parseIP(text);
    const n = addr.family === 4 ? this.#binding.byV4.get(Number(addr.value) | 0) : this.#binding.byV6.get(formatIP(addr));
    return n?.facts ?? null;
  }

  /** Compiled items with their resolved sources, for evaluation (tests, explain). */
  items(): readonly { readonly item: RuleItem; readonly srcSet: IPSet; readonly srcIPs: readonly string[] }[] {
    return this.#selections.items.map((i) => ({ item: i.item, srcSet: i.src.ipSet, srcIPs: i.list.strings }));
  }

  /** Whether a node, by its identity, is named by one selection part. */
  nodeMatchesPart(nodeId: number, part: SelectionPart): boolean {
    const node = this.#node(nodeId);
    if (part.kind === 'wildcard') return true;
    if (part.atom !== null) return this.#binding.classes[node.classId]!.atomFlags[part.atom] === 1 || factsMatch(this.compiled, this.#binding.users, node.facts, { key: '', atoms: [], literal: IPSet.EMPTY, wildcard: false, dangerAll: false, internet: false, self: false, parts: [part], postures: [] });
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


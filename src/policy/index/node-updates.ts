// Incremental node updates: a node (or a user's nodes) joining, leaving or changing, applied
// to every part in place, with the exact PolicyDelta at a cost proportional to it. The order
// is the whole of the protocol between the parts: record each changed node's outputs, take
// the old nodes out (source lists, SSH sources, class counts), let the route table add rows
// for new prefixes, apply the user change, put the new nodes in, switch items whose source
// list flipped, let the filters and SSH rules say whose output changed, let the route table
// elect and say who heard, then compare the changed nodes (collectDelta).
//
// What it reads is UpdatesHost: the parts themselves and the index's outputs. needsRebuild()
// says when a change is one the incremental path does not handle (the index then rebuilds and
// diffs by class instead).
import { EMPTY_POLICY_DELTA, type PolicyDelta } from './delta.js';
import type { NodeFacts } from '../facts.js';
import { TAILSCALE_SPACE } from '../tailscale-ranges.js';
import type { ClassBinding } from './class-binding.js';
import type { ClassFilters } from './class-filters.js';
import { Touched, collectDelta, recordBefore, type NodeBefore, type NodeChange, type UpdateOutputs, type UserChange } from './delta-collection.js';
import { sameStrings } from './node-lists.js';
import { type NodeRec, normaliseGroups, parseV4, parseV6 } from './records.js';
import { parsePrefixText, servedRoutes } from './route-access.js';
import type { RouteTable } from './route-table.js';
import type { SelectionBinding } from './selection-binding.js';
import type { SshPolicies } from './ssh-policy.js';
import type { Visibility } from './visibility.js';

/** The parts an update drives (the bindings are swapped by a rebuild: read them anew). */
export interface UpdatesHost {
  readonly binding: ClassBinding;
  readonly selections: SelectionBinding;
  readonly routes: RouteTable;
  readonly visibility: Visibility;
  readonly filters: ClassFilters;
  readonly ssh: SshPolicies;
  outputs(): UpdateOutputs;
}

export class NodeUpdates {
  readonly #host: UpdatesHost;

  constructor(host: UpdatesHost) {
    this.#host = host;
  }

  /** A user changed only what SSH localpart mappings depend on (its identity is the same). */
  userRenamed(change: UserChange): PolicyDelta {
    this.#host.ssh.bind();
    const touched = new Touched();
    this.#applyUserChange(change, touched);
    const sshChanged = new Set<number>();
    this.#host.ssh.candidates(touched, sshChanged);
    return { ...EMPTY_POLICY_DELTA, sshChanged: [...sshChanged] };
  }

  /**
   * Whether changes touch what the incremental path does not handle, so the index is rebuilt
   * and diffed instead: a node whose address lies inside a served route (routers' membership
   * in selections follows the addresses inside their routes), a route that covers node
   * addresses or Tailscale's space, and a change of the served prefixes while some source list
   * is `*` (it lists every served route: every filter naming `*` changes anyway).
   */
  needsRebuild(changes: readonly NodeChange[]): boolean {
    const routeSet = this.#host.routes.hasRoutes ? this.#host.binding.routeSet() : null;
    const insideRoute = (v4: number, v6: bigint | null): boolean => routeSet !== null && ((v4 >= 0 && routeSet.containsV4(v4)) || (v6 !== null && routeSet.containsV6(v6)));
    let routesMove = false;
    for (const c of changes) {
      const old = this.#host.binding.byId.get(c.id);
      if (old !== undefined && insideRoute(old.v4, old.v6)) return true;
      const routes = c.facts === null ? [] : servedRoutes(c.facts);
      const oldRoutes = old?.routeTexts ?? [];
      if (!sameStrings(routes, oldRoutes)) routesMove = true;
      // A changed router is bound to a class again, which assumes its routes cover no node.
      for (const text of routes.length === 0 ? oldRoutes : routes.concat(oldRoutes)) {
        const prefix = parsePrefixText(text);
        if (TAILSCALE_SPACE.overlapsPrefix(prefix) || this.#host.binding.coversNode(prefix)) return true;
      }
      if (c.facts === null) continue;
      const v4 = parseV4(c.facts.ipv4);
      const v6 = parseV6(c.facts.ipv6);
      // A node without addresses renders no source strings; rows assume every node has some.
      if (v4 < 0 && v6 === null) return true;
      if (insideRoute(v4, v6)) return true;
      const owner4 = v4 >= 0 ? this.#host.binding.byV4.get(v4 | 0) : undefined;
      if (owner4 !== undefined && owner4.id !== c.id) return true;
    }
    if (routesMove && !sameStrings(this.#host.routes.servedAfter(changes), this.#host.binding.routeStrings)) {
      for (const sel of this.#host.selections.listSelections.values()) if (sel.wildcard && !sel.dangerAll && sel.postures.length === 0) return true;
    }
    return false;
  }

  /** A router's (or any node's) online change: HA failover, nothing else. */
  online(node: NodeRec, facts: NodeFacts): PolicyDelta {
    node.facts = facts;
    const notes = this.#host.routes.online(node);
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
  apply(changes: readonly NodeChange[], userChange: UserChange | null): PolicyDelta {
    // SSH rules are bound on first use; an update must see them bound to track their sources.
    this.#host.ssh.bind();
    const changed = new Set(changes.map((c) => c.id));
    const outputs = this.#host.outputs();
    const before = new Map<number, NodeBefore>();
    const selfUsers = new Map<number, string>();
    const noteSelfUser = (uid: number | null): void => {
      const user = uid === null ? undefined : this.#host.binding.users.get(uid);
      if (user !== undefined && !selfUsers.has(user.id)) selfUsers.set(user.id, this.#host.filters.self.signature(user));
    };
    for (const c of changes) {
      const old = this.#host.binding.byId.get(c.id);
      if (old !== undefined) {
        before.set(c.id, recordBefore(outputs, old, changed));
        if (this.#host.filters.self.has()) noteSelfUser(old.user?.id ?? null);
      }
      if (this.#host.filters.self.has() && c.facts !== null && c.facts.tags.length === 0) noteSelfUser(c.facts.userId);
    }
    if (this.#host.filters.self.has() && userChange !== null) noteSelfUser(userChange.id);

    const routes = this.#host.routes.routesBefore(changes);
    const touched = new Touched();
    for (const c of changes) {
      const old = this.#host.binding.byId.get(c.id);
      if (old !== undefined) this.#detach(old, touched, c.facts !== null);
    }
    if (routes !== null) this.#prepareRoutes(changes);
    if (userChange !== null) this.#applyUserChange(userChange, touched);
    for (const c of changes) if (c.facts !== null) this.#attach(c.facts, touched);
    const filterChanged = new Set<number>();
    const sshChanged = new Set<number>();
    this.#switchItems(touched);
    this.#host.filters.settle(touched, selfUsers, filterChanged);
    this.#host.ssh.candidates(touched, sshChanged);
    const routeNotes = routes === null ? null : this.#host.routes.settle(changes, routes, changed);
    return collectDelta(outputs, changes, changed, before, filterChanged, sshChanged, routeNotes);
  }

  /**
   * Lists that became empty switch their items off, lists that became non-empty switch them
   * on (visibility rows and route access gain what they reach); the templates of the classes
   * such items reach are rebuilt by the filters' settle.
   */
  #switchItems(touched: Touched): void {
    for (const [list, was] of touched.lists) {
      if ((list.size === 0) === (was.size === 0)) continue;
      for (const info of this.#host.selections.itemsByList.get(list) ?? []) {
        const kind = info.item.kind;
        if (kind !== 'net' && kind !== 'via') continue;
        if (list.size > 0) {
          this.#host.visibility.itemReach(info);
          this.#host.routes.itemAccess(info);
        }
        for (const c of info.dst) touched.templates.add(c);
        for (const cls of this.#host.binding.classes) if (cls.exit) touched.templates.add(cls.id);
      }
    }
  }

  /** Takes a node out: source lists, SSH rules, atom counts, then the node-level maps. */
  #detach(node: NodeRec, touched: Touched, moving: boolean): void {
    const cls = this.#host.binding.classes[node.classId]!;
    for (const list of this.#host.selections.listsOf(cls)) {
      touched.noteList(list, node.id);
      list.update(node.id, [], this.#host.binding.tick());
    }
    for (const a of cls.atoms) touched.noteAtom(a, this.#host.binding.atomNodes[a]! > 0);
    this.#host.ssh.detach(node, touched, moving);
    if (this.#host.binding.hasLiteralAtoms(cls)) touched.templates.add(cls.id);
    this.#host.binding.dropNode(node);
  }

  /** Puts a node in: the inverse of #detach. */
  #attach(facts: NodeFacts, touched: Touched): void {
    const classCount = this.#host.binding.classes.length;
    // Atom counts before the node is counted.
    const plan = this.#host.binding.classKeyPreview(facts);
    for (const a of plan) touched.noteAtom(a, this.#host.binding.atomNodes[a]! > 0);
    const node = this.#host.binding.addNode(facts);
    const cls = this.#host.binding.classes[node.classId]!;
    if (cls.id >= classCount) {
      // Bound while this batch's lists were in flux: its template is built again at the end.
      touched.newClasses.add(cls.id);
      touched.templates.add(cls.id);
    }
    for (const list of this.#host.selections.listsOf(cls)) {
      touched.noteList(list, node.id);
      list.update(node.id, list.nodeStrings(node), this.#host.binding.tick());
    }
    this.#host.ssh.attach(node, touched);
    if (this.#host.binding.hasLiteralAtoms(cls)) touched.templates.add(cls.id);
  }

  /** Applies a user record change and notes SSH localpart changes. */
  #applyUserChange(change: UserChange, touched: Touched): void {
    const facts = change.facts;
    let rec = this.#host.binding.users.get(change.id);
    if (facts === null) {
      this.#host.binding.users.delete(change.id);
    } else if (rec === undefined) {
      rec = { id: facts.id, name: facts.name, email: facts.email, role: facts.role ?? 'member', groups: normaliseGroups(facts.groups), nodes: [], atoms: [] };
      rec.atoms = this.#host.binding.userAtoms(rec);
      this.#host.binding.users.set(rec.id, rec);
    } else {
      rec.name = facts.name;
      rec.email = facts.email;
      rec.role = facts.role ?? 'member';
      rec.groups = normaliseGroups(facts.groups);
      rec.atoms = this.#host.binding.userAtoms(rec);
    }
    this.#host.ssh.userChanged(change, touched);
  }

  /**
   * Between taking changed nodes out and putting them back: new served prefixes get their
   * access rows (so classes bound next see them), `*`'s address set and the route set move.
   */
  #prepareRoutes(changes: readonly NodeChange[]): void {
    const served = this.#host.routes.servedAfter(changes);
    this.#host.routes.addServed(served);
    this.#host.binding.routeStrings = served;
    this.#host.binding.routeSetCache = null;
    this.#host.binding.addressEpoch = this.#host.binding.tick();
  }
}

// Class binding: the tailnet's node and user records, the identity classes nodes fall into
// (nodes with the same atoms, served routes, exit routes and postures share one), the address
// indexes, and the tailnet-wide clock that versions and address epochs draw from.
//
// Everything else in the index is keyed by class: a node joining an existing class changes
// nothing class-indexed. A class created after the build is announced through onNewClass,
// which the index sets to bind it into every other part. This part reads nothing of the others.
import type { IPPrefix } from '../../util/ip.js';
import { formatPrefix, prefixFirst, prefixLast } from '../../util/ip.js';
import { IPSet, IPSetBuilder } from '../../util/ip-set.js';
import type { CompiledPolicy } from '../compile.js';
import type { NodeFacts } from '../facts.js';
import { meetsPosture } from '../posture.js';
import { Bits } from './bits.js';
import { type IdentityClass, type NodeRec, type UserRec, buildNode, literalAtomMatches, nodeAddressSet, userAtomMatches } from './records.js';
import { atomPlan, type AtomPlan } from './selections.js';
import { IdSlots } from '../../util/id-slots.js';

export class ClassBinding {
  #compiled: CompiledPolicy;
  readonly users: Map<number, UserRec>;
  /** Every node, in the order it was added. */
  readonly byId = new Map<number, NodeRec>();
  /** Untagged nodes by the user id in their facts, including ids of users not (or no longer) known. */
  readonly byUserId = new Map<number, Set<NodeRec>>();
  readonly byName = new Map<string, NodeRec>();
  /** Keyed by `v4 | 0` so keys stay small integers. */
  readonly byV4 = new Map<number, NodeRec>();
  readonly byV6 = new Map<string, NodeRec>();
  /**
   * byId again, indexed by node id (the store's dense row ids): the endpoint path looks up
   * every recipient, and a slot read stays cheap where a Map of 100,000 nodes misses the caches.
   */
  readonly byIdSlot: Array<NodeRec | undefined> = [];
  /**
   * Each node's class id by node id (-1: no such node). The mapper asks whether a recipient
   * still sees the changed peer for every recipient; with this it reads 4 bytes per recipient
   * instead of the recipient's record.
   */
  readonly classOfId = new IdSlots(-1);
  readonly classes: IdentityClass[] = [];
  readonly classByKey = new Map<string, IdentityClass>();
  /** Per atom: how many nodes carry it (a destination naming no node does not exist). */
  readonly atomNodes: number[];
  atomPlan: AtomPlan;
  /** Per atom: the classes carrying it. */
  readonly atomClasses: number[][];
  /** Classes serving subnet routes: the only ones whose membership depends on address overlap. */
  readonly routeClasses: IdentityClass[] = [];
  /** A tailnet-wide counter: list versions, filter versions and address epochs draw from it. */
  clock = 0;
  /** Bumped whenever a node's addresses come or go, or served routes move (see Resolved). */
  addressEpoch = 0;
  /** The served prefixes, sorted (`*` lists them). */
  routeStrings: string[] = [];
  allNodesSet: IPSet | null = null;
  routeSetCache: IPSet | null = null;
  /**
   * Address sets already built for this epoch, by what they cover (see memoAddresses). Kept in
   * the binding, so an index built over the same classes (a policy edit) finds them.
   */
  readonly #addressMemo = new Map<string, IPSet>();
  /** Per prefix (text) or router class (`#id`), the classes with a node inside, for this epoch. */
  readonly #insideMemo = new Map<string, Bits>();
  #memoEpoch = -1;
  /** Called with each class created once the build is done (null during the build). */
  onNewClass: ((cls: IdentityClass) => void) | null = null;

  constructor(compiled: CompiledPolicy, users: Map<number, UserRec>) {
    this.#compiled = compiled;
    this.users = users;
    this.atomClasses = compiled.atoms.map(() => []);
    this.atomNodes = compiled.atoms.map(() => 0);
    this.atomPlan = atomPlan(compiled);
    for (const user of users.values()) user.atoms = this.userAtoms(user);
  }

  /**
   * Whether `next` puts every node in the class it is in now: the same atoms (by key, in the
   * same order, so atom ids keep their meaning) and the same posture definitions. A policy
   * edit that keeps them (a rule added, removed or changed over selectors already in use, a tag
   * owner, an SSH rule, a test; with the server compiling over the atoms in force, also one
   * that drops selectors) keeps these classes. One that brings new atoms after these (a group's
   * new members, a new tag or login) first moves the nodes they single out (extensionTo).
   */
  keepsClassesUnder(next: CompiledPolicy): boolean {
    return this.#compiled.atoms.length === next.atoms.length && this.#extendedBy(next);
  }

  /** Whether `next` starts with these atoms (by key, in order) and defines the same postures. */
  #extendedBy(next: CompiledPolicy): boolean {
    const before = this.#compiled;
    if (before.atoms.length > next.atoms.length) return false;
    for (let i = 0; i < before.atoms.length; i++) if (before.atoms[i]!.key !== next.atoms[i]!.key) return false;
    if (before.postureNames.join('\n') !== next.postureNames.join('\n')) return false;
    for (const name of before.postureNames) {
      if (JSON.stringify(before.policy.postures.get(name) ?? null) !== JSON.stringify(next.policy.postures.get(name) ?? null)) return false;
    }
    return true;
  }

  /**
   * For `next`, compiled over these atoms with new ones after them (compilePolicyText's
   * atomsOf; a group's new members, a new tag owner or login): the nodes the new atoms take to
   * another class. Null when `next` does not extend these atoms, or when a node that would move
   * serves routes, lies inside served routes or has no address (cases the in-place class
   * binding leaves to a rebuild, as node updates do).
   */
  extensionTo(next: CompiledPolicy): AtomExtension | null {
    if (next.atoms.length <= this.#compiled.atoms.length || !this.#extendedBy(next)) return null;
    const plan = atomPlan(next);
    const added = next.atoms.slice(this.#compiled.atoms.length);
    const userAtoms = new Map<number, number[]>();
    const candidates = new Set<NodeRec>();
    for (const user of this.users.values()) {
      const atoms = this.userAtoms(user, plan);
      userAtoms.set(user.id, atoms);
      if (atoms.join(',') !== user.atoms.join(',')) for (const n of user.nodes) candidates.add(n);
    }
    const tags = new Set(added.flatMap((a) => (a.spec.kind === 'tag' ? [a.spec.tag] : [])));
    const everyTagged = added.some((a) => a.spec.kind === 'tagged');
    const everyNode = added.some((a) => a.spec.kind === 'literal');
    if (everyNode || everyTagged || tags.size > 0) {
      for (const n of this.byId.values()) {
        if (everyNode || (n.tagged && (everyTagged || n.tags.some((t) => tags.has(t))))) candidates.add(n);
      }
    }
    const moves: NodeRec[] = [];
    const served = this.routeStrings.length > 0 ? this.routeSet() : null;
    for (const n of candidates) {
      const { key } = this.#classKeyOf(n, plan, (u) => userAtoms.get(u.id) ?? u.atoms, next);
      if (key === this.classes[n.classId]!.key) continue;
      if (n.routeTexts.length > 0 || n.exitRoutes.length > 0 || (n.v4 < 0 && n.v6Text === null)) return null;
      if (served !== null && ((n.v4 >= 0 && served.containsV4(n.v4)) || (n.v6 !== null && served.containsV6(n.v6)))) return null;
      moves.push(n);
    }
    return { next, plan, userAtoms, moves };
  }

  /**
   * Takes the policy extensionTo() was asked about: the new atoms are counted, users match
   * them, and the nodes they move go to their new classes (created and bound through
   * onNewClass like any class). Under the policy in force the new atoms name nothing, so every
   * output stays as it was; only the classes are finer.
   */
  extend(extension: AtomExtension): { readonly cls: IdentityClass; readonly from: IdentityClass }[] {
    this.#compiled = extension.next;
    this.atomPlan = extension.plan;
    while (this.atomClasses.length < extension.next.atoms.length) {
      this.atomClasses.push([]);
      this.atomNodes.push(0);
    }
    for (const user of this.users.values()) user.atoms = extension.userAtoms.get(user.id) ?? user.atoms;
    // New classes are announced once their nodes are in (what is bound may depend on them).
    const announce = this.onNewClass;
    this.onNewClass = null;
    const created: { cls: IdentityClass; from: IdentityClass }[] = [];
    for (const node of extension.moves) {
      const from = this.#takeOut(node);
      const count = this.classes.length;
      const to = this.#classFor(node);
      if (this.classes.length > count) created.push({ cls: to, from });
      this.#putIn(node, to);
    }
    if (extension.moves.length > 0) this.addressEpoch = this.tick();
    this.onNewClass = announce;
    for (const { cls } of created) announce?.(cls);
    return created;
  }

  /** Takes `next` as the policy classes are keyed by; keepsClassesUnder(next) must hold. */
  rebind(next: CompiledPolicy): void {
    this.#compiled = next;
  }

  /** The next value of the clock. */
  tick(): number {
    return ++this.clock;
  }

  addNode(nf: NodeFacts): NodeRec {
    if (this.byId.has(nf.id)) throw new Error(`node id ${nf.id} appears twice`);
    const node = buildNode(this.byId.size, nf, this.users);
    this.byId.set(node.id, node);
    this.byIdSlot[node.id] = node;
    this.byName.set(node.name, node);
    if (node.v4 >= 0) this.byV4.set(node.v4 | 0, node);
    if (node.v6Text !== null) this.byV6.set(node.v6Text, node);
    if (!node.tagged && nf.userId !== null) {
      let set = this.byUserId.get(nf.userId);
      if (set === undefined) this.byUserId.set(nf.userId, (set = new Set()));
      set.add(node);
    }
    const cls = this.#classFor(node);
    this.#putIn(node, cls);
    this.allNodesSet = null;
    this.addressEpoch = this.tick();
    return node;
  }

  /** Takes a node out of every node-level structure (the inverse of #addNode). */
  dropNode(node: NodeRec): void {
    this.byId.delete(node.id);
    this.byIdSlot[node.id] = undefined;
    this.classOfId.unset(node.id);
    if (this.byName.get(node.name) === node) this.byName.delete(node.name);
    if (node.v4 >= 0 && this.byV4.get(node.v4 | 0) === node) this.byV4.delete(node.v4 | 0);
    if (node.v6Text !== null && this.byV6.get(node.v6Text) === node) this.byV6.delete(node.v6Text);
    if (node.facts.userId !== null) this.byUserId.get(node.facts.userId)?.delete(node);
    if (node.user !== null) node.user.nodes.splice(node.user.nodes.indexOf(node), 1);
    this.#takeOut(node);
    this.allNodesSet = null;
    this.addressEpoch = this.tick();
  }

  /** Takes a node out of its class (its slot goes to the class's last node); returns the class. */
  #takeOut(node: NodeRec): IdentityClass {
    const cls = this.classes[node.classId]!;
    const last = cls.nodes.pop()!;
    cls.memberIds.pop();
    if (last !== node) {
      cls.nodes[node.slot] = last;
      cls.memberIds[node.slot] = last.id;
      last.slot = node.slot;
    }
    cls.addresses = null;
    for (const a of cls.atoms) this.atomNodes[a]!--;
    return cls;
  }

  /** Puts a node (out of any class) into `cls` (the inverse of #takeOut). */
  #putIn(node: NodeRec, cls: IdentityClass): void {
    node.classId = cls.id;
    node.slot = cls.nodes.length;
    cls.nodes.push(node);
    cls.memberIds.push(node.id);
    this.classOfId.set(node.id, cls.id);
    cls.addresses = null;
    for (const a of cls.atoms) this.atomNodes[a]!++;
  }

  /** The user-kind atoms a user matches, in atom order. */
  userAtoms(user: UserRec, plan: AtomPlan = this.atomPlan): number[] {
    const out = new Set<number>();
    const keys = new Set<string>([user.name.toLowerCase(), `${user.name}@`.toLowerCase()]);
    if (user.email !== '') keys.add(user.email.toLowerCase());
    for (const key of keys) for (const id of plan.loginAtoms.get(key) ?? []) out.add(id);
    for (const atom of plan.otherUserAtoms) if (userAtomMatches(atom.spec, user)) out.add(atom.id);
    return [...out].sort((a, b) => a - b);
  }

  /** What makes a node's class: its atoms, served routes, exit routes and postures. */
  #classKeyOf(
    node: NodeRec,
    plan: AtomPlan = this.atomPlan,
    userAtoms: (user: UserRec) => readonly number[] = (user) => user.atoms,
    compiled: CompiledPolicy = this.#compiled,
  ): { key: string; ids: number[]; postures: string[] } {
    const ids: number[] = [];
    if (node.tagged) {
      if (plan.taggedAtom >= 0) ids.push(plan.taggedAtom);
      for (const tag of node.tags) for (const id of plan.tagAtoms.get(tag) ?? []) ids.push(id);
    } else if (node.user !== null) {
      ids.push(...userAtoms(node.user));
    }
    if (plan.literalAtoms.length > 0 && ((node.v4 >= 0 && plan.anyLiteral.containsV4(node.v4)) || (node.v6 !== null && plan.anyLiteral.containsV6(node.v6)))) {
      for (const a of plan.literalAtoms) if (literalAtomMatches(a, node)) ids.push(a.id);
    }
    ids.sort((a, b) => a - b);
    const policyPostures = compiled.policy.postures;
    const postures = compiled.postureNames.filter((name) => meetsPosture(policyPostures.get(name) ?? [], node.facts.postureAttributes));
    const key = `${ids.join(',')}|${node.routeTexts.join(',')}|${node.exitRoutes.length > 0 ? 'x' : ''}|${postures.join(',')}`;
    return { key, ids, postures };
  }

  /** The node's identity class, created (and, after the build, bound everywhere) if new. */
  #classFor(node: NodeRec): IdentityClass {
    const { key, ids, postures } = this.#classKeyOf(node);
    let cls = this.classByKey.get(key);
    if (cls !== undefined) return cls;
    const flags = new Uint8Array(this.#compiled.atoms.length);
    for (const id of ids) flags[id] = 1;
    cls = {
      id: this.classes.length,
      key,
      atoms: ids,
      atomFlags: flags,
      nodes: [],
      memberIds: [],
      routes: node.routes,
      routeTexts: node.routeTexts,
      routeSet: IPSet.of(...node.routes),
      exit: node.exitRoutes.length > 0,
      postures: new Set(postures),
      addresses: null,
    };
    this.classes.push(cls);
    this.classByKey.set(key, cls);
    for (const id of ids) this.atomClasses[id]!.push(cls.id);
    if (cls.routes.length > 0) this.routeClasses.push(cls);
    this.onNewClass?.(cls);
    return cls;
  }

  /** The atoms a node's class will carry (to record atom counts before it is counted). */
  classKeyPreview(facts: NodeFacts): number[] {
    const probe = buildNode(0, facts, this.users);
    // buildNode links the record to its user; this probe must not stay there.
    if (probe.user !== null) probe.user.nodes.pop();
    return this.#classKeyOf(probe).ids;
  }

  hasLiteralAtoms(cls: IdentityClass): boolean {
    return this.atomPlan.literalAtoms.length > 0 && cls.atoms.some((a) => this.#compiled.atoms[a]!.spec.kind === 'literal');
  }

  classAddresses(cls: IdentityClass): IPSet {
    if (cls.addresses === null) cls.addresses = nodeAddressSet(cls.nodes);
    return cls.addresses;
  }

  /**
   * The address set `key` names, built once per address epoch. A key must name the same set for
   * every policy this binding serves: name it by atom ids (they keep their meaning, see
   * keepsClassesUnder), never by selector text.
   */
  memoAddresses(key: string, build: () => IPSet): IPSet {
    this.#checkMemoEpoch();
    let set = this.#addressMemo.get(key);
    if (set === undefined) this.#addressMemo.set(key, (set = build()));
    return set;
  }

  /**
   * The classes with a node whose address lies inside a router class's routes (a selection
   * naming one of them covers part of the routes); kept for the address epoch.
   */
  classesInside(router: IdentityClass): Bits {
    this.#checkMemoEpoch();
    let out = this.#insideMemo.get(`#${router.id}`);
    if (out !== undefined) return out;
    out = this.bits();
    for (const prefix of router.routes) out.or(this.classesInsidePrefix(prefix));
    this.#insideMemo.set(`#${router.id}`, out);
    return out;
  }

  /**
   * The classes with a node whose address lies inside a prefix, probed in the address index
   * like coversNode; kept for the address epoch.
   */
  classesInsidePrefix(prefix: IPPrefix): Bits {
    this.#checkMemoEpoch();
    const key = formatPrefix(prefix);
    let out = this.#insideMemo.get(key);
    if (out !== undefined) return out;
    out = this.bits();
    if (prefix.addr.family === 4) {
      const first = Number(prefixFirst(prefix));
      const last = Number(prefixLast(prefix));
      if (last - first < this.byId.size) {
        for (let a = first; a <= last; a++) {
          const n = this.byV4.get(a | 0);
          if (n !== undefined) out.set(n.classId);
        }
      } else {
        for (const n of this.byId.values()) if (n.v4 >= first && n.v4 <= last) out.set(n.classId);
      }
    } else {
      const first = prefixFirst(prefix);
      const last = prefixLast(prefix);
      for (const n of this.byId.values()) if (n.v6 !== null && n.v6 >= first && n.v6 <= last) out.set(n.classId);
    }
    this.#insideMemo.set(key, out);
    return out;
  }

  #checkMemoEpoch(): void {
    if (this.#memoEpoch === this.addressEpoch) return;
    this.#addressMemo.clear();
    this.#insideMemo.clear();
    this.#memoEpoch = this.addressEpoch;
  }

  allNodes(): IPSet {
    if (this.allNodesSet === null) this.allNodesSet = nodeAddressSet([...this.byId.values()]);
    return this.allNodesSet;
  }

  bits(): Bits {
    return new Bits(this.classes.length);
  }


  routeSet(): IPSet {
    if (this.routeSetCache === null) {
      const b = new IPSetBuilder();
      for (const n of this.byId.values()) for (const r of n.routes) b.addPrefix(r);
      this.routeSetCache = b.build();
    }
    return this.routeSetCache;
  }

  /**
   * Whether any node's address lies inside a prefix. An IPv4 prefix smaller than the tailnet is
   * probed address by address in the address index (a /24 is 256 lookups, whatever N); larger
   * ones and IPv6 are a scan, still cheaper than the address set, which every join drops.
   */
  coversNode(prefix: IPPrefix): boolean {
    if (prefix.addr.family === 4) {
      const first = Number(prefixFirst(prefix));
      const last = Number(prefixLast(prefix));
      if (last - first < this.byId.size) {
        for (let a = first; a <= last; a++) if (this.byV4.has(a | 0)) return true;
        return false;
      }
      for (const n of this.byId.values()) if (n.v4 >= first && n.v4 <= last) return true;
      return false;
    }
    const first = prefixFirst(prefix);
    const last = prefixLast(prefix);
    for (const n of this.byId.values()) if (n.v6 !== null && n.v6 >= first && n.v6 <= last) return true;
    return false;
  }
}

/** What ClassBinding.extensionTo found: the new policy, its atom plan, users' atoms, nodes that move. */
export interface AtomExtension {
  readonly next: CompiledPolicy;
  readonly plan: AtomPlan;
  readonly userAtoms: ReadonlyMap<number, number[]>;
  readonly moves: readonly NodeRec[];
}

// Selection binding: the policy's selections bound to the identity classes (Resolved: which
// classes a selection names, which are packet endpoints of it, which addresses it covers), the
// rendered source lists (SrcList, one per selection, kept current as nodes come and go), and
// the rule items with their sources, lists and destination classes.
//
// It reads the class binding (classes, atoms, address sets, the clock) and nothing else.
// bindClass() counts a class created after the build in every resolution and item.
import { IPSet, IPSetBuilder } from '../../util/ip-set.js';
import type { CompiledPolicy, RuleItem, Selection, SelectionPart } from '../compile.js';
import { INTERNET, TAILSCALE_SPACE } from '../tailscale-ranges.js';
import type { Bits } from './bits.js';
import type { ClassBinding } from './class-binding.js';
import { hasCompanionCaps } from './filter-template.js';
import { nodesOfClasses } from './node-lists.js';
import type { IdentityClass } from './records.js';
import { Resolved, selectionShape, type ItemInfo } from './selections.js';
import { SrcList } from './src-list.js';

export class SelectionBinding {
  readonly #compiled: CompiledPolicy;
  readonly #cb: ClassBinding;
  readonly #resolved = new Map<string, Resolved>();
  /** Rendered source lists by selection key. */
  readonly srcLists = new Map<string, SrcList>();
  /** The selection of each source list, by key. */
  readonly listSelections = new Map<string, Selection>();
  /** Per class: the source lists that list its nodes (reset whenever a list is added). */
  readonly #classLists = new Map<number, SrcList[]>();
  #classListsAt = -1;
  readonly items: ItemInfo[] = [];
  /** The items sharing each source list. */
  readonly itemsByList = new Map<SrcList, ItemInfo[]>();
  readonly viaItems: ItemInfo[] = [];

  /** Source lists of the index this one replaces over the same classes, by selection key. */
  readonly #carried: ReadonlyMap<string, CarriedList> | null;

  /**
   * `carried`: the source lists of an index over the same class binding (a policy edit that
   * kept the classes); a selection with the same key lists the same strings, so it is taken over.
   */
  constructor(compiled: CompiledPolicy, classes: ClassBinding, carried: ReadonlyMap<string, CarriedList> | null = null) {
    this.#compiled = compiled;
    this.#cb = classes;
    this.#carried = carried;
  }

  /**
   * Counts a class created after the build in every selection resolution and item
   * destination. Its routes cover no node (else the index rebuilds).
   */
  bindClass(cls: IdentityClass): void {
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
    for (const info of this.items) {
      const kind = info.item.kind;
      if (kind === 'selfNet' || kind === 'selfCap') continue;
      if (this.classInDst(info.item, cls)) info.dst.set(c);
    }
  }

  /** Binds a selection: which classes it names and which addresses it covers. */
  resolve(sel: Selection): Resolved {
    const cached = this.#resolved.get(sel.key);
    if (cached !== undefined) return cached;
    const identity = this.#cb.bits();
    if (sel.wildcard || sel.dangerAll) for (let i = 0; i < this.#cb.classes.length; i++) identity.set(i);
    else for (const atom of sel.atoms) for (const c of this.#cb.atomClasses[atom] ?? []) identity.set(c);
    if (sel.postures.length > 0) {
      // Only devices meeting one of the postures are sources; literal addresses are no devices.
      const restricted = this.#cb.bits();
      for (const c of identity) if (sel.postures.some((p) => this.#cb.classes[c]!.postures.has(p))) restricted.set(c);
      const resolved = new Resolved(sel, restricted, () => this.#identityAddresses(restricted), () => this.#cb.addressEpoch);
      this.#resolved.set(sel.key, resolved);
      return resolved;
    }
    const resolved = new Resolved(sel, identity, () => this.#selectionAddresses(sel), () => this.#cb.addressEpoch);
    if (this.#cb.routeClasses.length > 0) {
      const members = identity.clone();
      for (const cls of this.#cb.routeClasses) if (!members.has(cls.id) && this.#routesOverlap(cls, sel)) members.set(cls.id);
      resolved.members = members;
    }
    this.#resolved.set(sel.key, resolved);
    return resolved;
  }

  /**
   * Whether a router's routes overlap what a (non-wildcard) selection covers, without building
   * its address set (#selectionAddresses): its literals, or a node of a class it names by an
   * atom inside the routes.
   */
  #routesOverlap(router: IdentityClass, sel: Selection): boolean {
    if (router.routeSet.overlaps(sel.literal)) return true;
    const inside = this.#cb.classesInside(router);
    if (inside.isEmpty()) return false;
    for (const part of sel.parts) {
      if (part.kind !== 'atom' || part.atom === null) continue;
      for (const c of this.#cb.atomClasses[part.atom] ?? []) if (inside.has(c)) return true;
    }
    return false;
  }

  #identityAddresses(classes: Bits): IPSet {
    const b = new IPSetBuilder();
    for (const c of classes) b.addSet(this.#cb.classAddresses(this.#cb.classes[c]!));
    return b.build();
  }

  /** The addresses a selection covers: named nodes' addresses, literals, `*`'s space and routes. */
  #selectionAddresses(sel: Selection): IPSet {
    if (sel.dangerAll) return IPSet.of({ addr: { family: 4, value: 0n }, bits: 0 }, { addr: { family: 6, value: 0n }, bits: 0 });
    // Literal selectors are atoms too, so the atoms name the set.
    return this.#cb.memoAddresses(`sel:${sel.wildcard ? '*' : ''}${sel.atoms.join(',')}`, () => {
      if (sel.wildcard) return this.#cb.allNodes().union(sel.literal).union(TAILSCALE_SPACE).union(this.#cb.routeSet());
      // A literal names its prefix, not the other addresses of the nodes inside it.
      const byIdentity = this.#cb.bits();
      for (const part of sel.parts) {
        if (part.kind === 'atom' && part.atom !== null) for (const c of this.#cb.atomClasses[part.atom] ?? []) byIdentity.set(c);
      }
      const b = new IPSetBuilder();
      for (const c of byIdentity) b.addSet(this.#cb.classAddresses(this.#cb.classes[c]!));
      return b.build().union(sel.literal);
    });
  }

  /** The set of addresses one selector names, for per-source strings next to `*`. */
  partSet(part: SelectionPart): IPSet {
    if (part.kind === 'literal') return part.literal ?? IPSet.EMPTY;
    if (part.kind === 'atom' && part.atom !== null) {
      const atom = part.atom;
      return this.#cb.memoAddresses(`atom:${atom}`, () => {
        const b = new IPSetBuilder();
        for (const c of this.#cb.atomClasses[atom] ?? []) b.addSet(this.#cb.classAddresses(this.#cb.classes[c]!));
        return b.build();
      });
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
  srcList(sel: Selection): SrcList {
    const cached = this.srcLists.get(sel.key);
    if (cached !== undefined) return cached;
    const version = this.#cb.tick();
    const carried = this.#carried?.get(sel.key);
    let list: SrcList;
    if (carried !== undefined && carried.shape === selectionShape(sel)) {
      list = carried.list.carriedOver(version);
    } else if (sel.postures.length > 0) {
      list = new SrcList([], nodesOfClasses(this.resolve(sel).identity, this.#cb.classes), null, sel.key, version);
    } else if (sel.dangerAll) {
      list = new SrcList(['*'], [], null, sel.key, version);
    } else {
      const literal = sel.wildcard ? TAILSCALE_SPACE.union(sel.literal) : sel.literal;
      const strings = [...literal.toStrings()];
      if (sel.wildcard) {
        strings.push(...this.#cb.routeStrings);
        for (const part of sel.parts) if (part.kind === 'literal' && part.literal !== null) strings.push(...part.literal.toStrings());
      }
      const classes = this.#cb.bits();
      for (const part of sel.parts) {
        if (part.kind === 'atom' && part.atom !== null) for (const c of this.#cb.atomClasses[part.atom] ?? []) classes.set(c);
      }
      const covered = !sel.wildcard && !literal.isEmpty() ? literal : null;
      list = new SrcList(strings, nodesOfClasses(classes, this.#cb.classes), covered, sel.key, version);
    }
    this.srcLists.set(sel.key, list);
    this.listSelections.set(sel.key, sel);
    return list;
  }

  /** The source lists with the shape of their selections, for an index taking them over. */
  carriedLists(): Map<string, CarriedList> {
    const out = new Map<string, CarriedList>();
    for (const [key, list] of this.srcLists) out.set(key, { list, shape: selectionShape(this.listSelections.get(key)!) });
    return out;
  }

  /** Source lists with a capability name, by name and selection shape: whether each lists a class's nodes. */
  capLists(): Map<string, (cls: IdentityClass) => boolean> {
    const out = new Map<string, (cls: IdentityClass) => boolean>();
    for (const [key, list] of this.srcLists) {
      if (list.capName === null) continue;
      const sel = this.listSelections.get(key)!;
      out.set(`${list.capName}=${selectionShape(sel)}`, (cls) => this.#listsClass(sel, cls));
    }
    return out;
  }

  /** Whether a class's nodes are listed in a selection's SrcIPs. */
  #listsClass(sel: Selection, cls: IdentityClass): boolean {
    if (sel.postures.length > 0) return this.resolve(sel).identity.has(cls.id);
    if (sel.dangerAll) return false;
    return sel.parts.some((part) => part.kind === 'atom' && part.atom !== null && cls.atomFlags[part.atom] === 1);
  }

  /** Source lists that list a class's nodes (cached per class; new lists reset the cache). */
  listsOf(cls: IdentityClass): SrcList[] {
    if (this.#classListsAt !== this.srcLists.size) {
      this.#classLists.clear();
      this.#classListsAt = this.srcLists.size;
    }
    let lists = this.#classLists.get(cls.id);
    if (lists === undefined) {
      lists = [];
      for (const [key, list] of this.srcLists) {
        const sel = this.listSelections.get(key)!;
        if (this.#listsClass(sel, cls)) lists.push(list);
      }
      this.#classLists.set(cls.id, lists);
    }
    return lists;
  }

  resolveItems(): void {
    for (const item of this.#compiled.items) {
      const src = this.resolve(item.src);
      const info: ItemInfo = { item, src, list: this.srcList(item.src), dst: this.#dstMembers(item) };
      this.items.push(info);
      const sharing = this.itemsByList.get(info.list);
      if (sharing === undefined) this.itemsByList.set(info.list, [info]);
      else sharing.push(info);
      if (item.kind === 'via') this.viaItems.push(info);
      // Companion rules list the grant's destinations as sources. Their list exists from the
      // start, so which caps a node carries depends on the policy and the node alone.
      if (item.kind === 'cap' && hasCompanionCaps(item.capMap)) this.srcList(item.dst);
    }
  }

  /** Classes an item delivers to, for visibility: who is a destination of it. */
  #dstMembers(item: RuleItem): Bits {
    const out = this.#cb.bits();
    if (item.kind === 'net') {
      for (const d of item.dsts) this.#partMembers(d.part, out);
    } else if (item.kind === 'cap') {
      for (const part of item.dst.parts) this.#partMembers(part, out);
    } else if (item.kind === 'via') {
      const via = this.resolve(item.via);
      for (const c of via.identity) {
        const cls = this.#cb.classes[c]!;
        if (this.#viaServes(cls, item.dst)) out.set(c);
      }
    }
    return out;
  }

  #partMembers(part: SelectionPart, out: Bits): void {
    switch (part.kind) {
      case 'wildcard':
        for (let i = 0; i < this.#cb.classes.length; i++) out.set(i);
        return;
      case 'atom':
      case 'literal': {
        if (part.atom !== null) for (const c of this.#cb.atomClasses[part.atom] ?? []) out.set(c);
        const set = part.kind === 'literal' ? (part.literal ?? IPSet.EMPTY) : this.partSet(part);
        for (const cls of this.#cb.classes) if (cls.routes.length > 0 && cls.routeSet.overlaps(set)) out.set(cls.id);
        return;
      }
      case 'internet':
        for (const cls of this.#cb.classes) if (cls.exit || (cls.routes.length > 0 && cls.routeSet.overlaps(INTERNET))) out.set(cls.id);
        return;
      default:
        return;
    }
  }

  /** Whether a router class serves some destination of a via grant. */
  #viaServes(cls: IdentityClass, dst: Selection): boolean {
    if (dst.internet && cls.exit) return true;
    return cls.routes.length > 0 && cls.routeSet.overlaps(dst.literal);
  }

  /** Whether an item delivers to a class (one class of #dstMembers). */
  classInDst(item: RuleItem, cls: IdentityClass): boolean {
    if (item.kind === 'net') return item.dsts.some((d) => this.#partHas(d.part, cls));
    if (item.kind === 'cap') return item.dst.parts.some((p) => this.#partHas(p, cls));
    if (item.kind === 'via') return this.resolve(item.via).identity.has(cls.id) && this.#viaServes(cls, item.dst);
    return false;
  }

  #partHas(part: SelectionPart, cls: IdentityClass): boolean {
    switch (part.kind) {
      case 'wildcard':
        return true;
      case 'atom':
      case 'literal':
        if (part.atom !== null && cls.atomFlags[part.atom] === 1) return true;
        return cls.routes.length > 0 && cls.routeSet.overlaps(part.kind === 'literal' ? (part.literal ?? IPSet.EMPTY) : this.partSet(part));
      case 'internet':
        return cls.exit || (cls.routes.length > 0 && cls.routeSet.overlaps(INTERNET));
      default:
        return false;
    }
  }
}

/** A source list of an index being replaced, and the shape of its selection. */
export interface CarriedList {
  readonly list: SrcList;
  readonly shape: string;
}

// Filters: each identity class's packet-filter template (rules with source lists by
// reference, rendered per node by instantiate()), the autogroup:self rules per user, where
// merged rules stand tailnet-wide (globalFirst), and the versions behind filterKey that change
// whenever a class's (or a user's self) filter output does.
//
// What it reads from the rest of the index is FiltersHost: the classes with their nodes, the
// users, the rule items, selection resolution, source lists, the addresses a selector names,
// whether an atom names a node, and the tailnet clock. What it gives back: filterFor and
// filterKey for the mapper; build / bindClass for classes; settle() after an update, with
// self.signature() to record users' self rules before it (self-rules.ts).
import type * as tailcfg from '../../tailcfg/index.js';
import { type IPPrefix, formatPrefix } from '../../util/ip.js';
import { IPSet } from '../../util/ip-set.js';
import type { PortRange } from '../alias.js';
import { renderDstLiteral, type Selection, type SelectionPart } from '../compile.js';
import { INTERNET, INTERNET_DST_STRINGS } from '../tailscale-ranges.js';
import type { Touched } from './delta-collection.js';
import { SELF, STAND_IN, companionRules, hasCompanionCaps, instantiate, mergeKey, placement, servesNothing, templateSignature, type CapEntry, type DstEntry, type FilterFormOptions, type TemplateRule } from './filter-template.js';
import type { IdentityClass, NodeRec, UserRec } from './records.js';
import { prefixHas } from './route-access.js';
import type { ItemInfo, Resolved } from './selections.js';
import { SelfRules, type SelfRulesHost } from './self-rules.js';
import { SrcList } from './src-list.js';

/** What the filters read from the rest of the index (always the current state). */
export interface FiltersHost extends SelfRulesHost {
  readonly classes: readonly IdentityClass[];
  readonly users: ReadonlyMap<number, UserRec>;
  readonly items: readonly ItemInfo[];
  resolve(sel: Selection): Resolved;
  /** The rendered source list of a selection (made on first use). */
  srcList(sel: Selection): SrcList;
  /** The addresses one selector names. */
  partSet(part: SelectionPart): IPSet;
  /** Whether an atom names some node now. */
  atomExists(atom: number): boolean;
  /** The next value of the tailnet-wide counter versions draw from. */
  tick(): number;
}

export class ClassFilters {
  readonly #host: FiltersHost;
  /** Merge key -> where that merged rule stands tailnet-wide. */
  #globalFirst = new Map<string, number>();
  #templates: (TemplateRule[] | null)[] = [];
  /** Per class: its template's shape with lists named by uid (changes iff the shape does). */
  #templateSigs: string[] = [];
  /** Per class: a counter value that changes whenever the class's filter output changes. */
  #filterVersions: number[] = [];
  /**
   * The same for the `cap:` form, which does not change when only the nodes a list names do
   * (it changes when a list gains its first listed node or loses its last, or the template does).
   */
  #capFilterVersions: number[] = [];
  /** Per class: whether its filter names the receiving node's own addresses. */
  #usesSelf: boolean[] = [];
  /** Per class: a CapGrant names the node's own prefixes (those cannot become a wildcard). */
  #selfInGrants: boolean[] = [];
  /** The autogroup:self rules, per user. */
  readonly self: SelfRules;

  constructor(host: FiltersHost) {
    this.#host = host;
    this.self = new SelfRules(host);
  }

  /**
   * Takes over another index's filters (after a rebuild). Versions are drawn anew from this
   * index's clock, so keys handed out before stay distinct.
   */
  adopt(other: ClassFilters): void {
    this.#globalFirst = other.#globalFirst;
    this.#templates = other.#templates;
    this.#templateSigs = other.#templateSigs;
    this.#filterVersions = other.#filterVersions.map(() => this.#host.tick());
    this.#capFilterVersions = other.#capFilterVersions.map(() => this.#host.tick());
    this.#usesSelf = other.#usesSelf;
    this.#selfInGrants = other.#selfInGrants;
    this.self.adopt(other.self);
  }

  /** Where merged rules stand, once the items are resolved (at the build). */
  placeRules(): void {
    this.#computeGlobalFirst();
  }

  /** Every class's template (at the build). */
  build(): void {
    for (const cls of this.#host.classes) this.#setTemplate(cls.id, this.#classTemplate(cls));
  }

  /** The template of a class added after the build, with fresh versions. */
  bindClass(cls: IdentityClass): void {
    this.#setTemplate(cls.id, this.#classTemplate(cls));
    this.#filterVersions[cls.id] = this.#host.tick();
    this.#capFilterVersions[cls.id] = this.#host.tick();
  }

  /**
   * Gives class `to` the template of class `from` (nodes that moved from one to the other under
   * atoms the policy does not name keep the filter they had; a template can depend on which
   * nodes a class holds, so it is not built anew).
   */
  copyTemplate(from: number, to: number): void {
    this.#setTemplate(to, this.#templates[from] ?? []);
  }

  /** The class's template rendered for a stand-in node (the class diffs compare it). */
  standInFilter(c: number): tailcfg.FilterRule[] {
    return instantiate(this.#templates[c] ?? [], STAND_IN, this.#globalFirst);
  }

  /**
   * After the nodes moved (and items whose lists flipped were switched on or off): templates
   * that may have changed are rebuilt, the merged-rule positions are recomputed if any list's
   * merge key moved, and every class whose filter output changed gets a new filter version
   * (its nodes go in `filterChanged`). Then the autogroup:self rules of `selfUsers` (user ->
   * self.signature before) are compared.
   */
  settle(touched: Touched, selfUsers: ReadonlyMap<number, string>, filterChanged: Set<number>): void {
    const changedClasses = new Set<number>();
    const capChangedClasses = new Set<number>();
    let gfDirty = false;
    const contentChanged: SrcList[] = [];
    for (const [list, was] of touched.lists) {
      if (list.key !== was.key) gfDirty = true;
      if (list.hasNodeEntries !== was.hasNodeEntries) for (const c of list.dependents) capChangedClasses.add(c);
      let same = true;
      for (const [id, entries] of was.nodes) if (list.entriesOf(id) !== entries) same = false;
      if (!same) contentChanged.push(list);
      // A list that became empty or non-empty switches its items off or on.
      if ((list.size === 0) !== (was.size === 0)) gfDirty = true;
    }
    for (const [atom, existed] of touched.atoms) if (existed !== this.#host.atomExists(atom)) gfDirty = true;
    const gfBefore = this.#globalFirst;
    const moved = new Set<string>();
    const placed = new Set<number>();
    if (gfDirty) {
      const gf = this.#computeGlobalFirst();
      for (const [k, v] of gf) if (gfBefore.get(k) !== v) moved.add(k);
      for (const [k] of gfBefore) if (!gf.has(k)) moved.add(k);
      if (moved.size > 0) {
        for (const info of this.#host.items) {
          if (info.item.kind !== 'net') continue;
          if (moved.has(mergeKey(info.list.key, info.item.ipProto))) for (const c of info.list.dependents) placed.add(c);
        }
        for (const c of placed) {
          const rules = this.#templates[c];
          if (rules !== null && rules !== undefined && placement(rules, gfBefore) !== placement(rules, gf)) changedClasses.add(c);
        }
      }
    }
    for (const c of touched.templates) {
      if (touched.newClasses.has(c)) {
        // Bound before its first node arrived, while lists may have been empty in passing.
        this.#setTemplate(c, this.#classTemplate(this.#host.classes[c]!));
        continue;
      }
      const sig = this.#templateSigs[c];
      const oldRules = this.#templates[c] ?? [];
      this.#setTemplate(c, this.#classTemplate(this.#host.classes[c]!));
      if (this.#templateSigs[c] !== sig) capChangedClasses.add(c);
      if (this.#templateSigs[c] !== sig || placement(oldRules, gfBefore) !== placement(this.#templates[c]!, this.#globalFirst)) changedClasses.add(c);
    }
    for (const list of contentChanged) for (const c of list.dependents) changedClasses.add(c);
    for (const c of changedClasses) {
      this.#filterVersions[c] = this.#host.tick();
      for (const n of this.#host.classes[c]!.nodes) filterChanged.add(n.id);
    }
    // Every change of the cap: form is a change of the address form too (filterChanged covers it).
    for (const c of capChangedClasses) this.#capFilterVersions[c] = this.#host.tick();
    const templates = this.#templates;
    const classRules = { templateOf: (c: number) => templates[c], globalFirstBefore: gfBefore, globalFirst: this.#globalFirst };
    this.self.settle(selfUsers, classRules, moved, placed, filterChanged);
  }

  /**
   * Where a merged rule stands tailnet-wide: the first rule with these sources and protocols
   * that exists at all (it has sources and names some destination).
   */
  #computeGlobalFirst(): Map<string, number> {
    const out = new Map<string, number>();
    for (const info of this.#host.items) {
      const item = info.item;
      if (item.kind === 'net' && info.list.size > 0 && item.dsts.some((d) => this.#partExists(d.part))) {
        const key = mergeKey(info.list.key, item.ipProto);
        if (!out.has(key)) out.set(key, item.order * 8);
      }
    }
    this.#globalFirst = out;
    return out;
  }

  /** Whether a destination names anything in this tailnet (a node, a prefix, `*`, the internet). */
  #partExists(part: SelectionPart): boolean {
    switch (part.kind) {
      case 'wildcard':
      case 'internet':
      case 'literal':
        return true;
      case 'atom':
        return part.atom !== null && this.#host.atomExists(part.atom);
      default:
        return false;
    }
  }

  #classTemplate(cls: IdentityClass): TemplateRule[] {
    const out: TemplateRule[] = [];
    for (const info of this.#host.items) {
      const item = info.item;
      const order = item.order * 8;
      switch (item.kind) {
        case 'net': {
          if (info.list.size === 0) break;
          const entries: DstEntry[] = [];
          for (const d of item.dsts) this.#netEntries(cls, d.part, d.literalPrefixes, d.ports, entries);
          if (entries.length > 0) out.push({ kind: 'ports', order, src: info.list, proto: item.ipProto, entries });
          break;
        }
        case 'cap': {
          const grants: CapEntry[] = [];
          for (const part of item.dst.parts) {
            const dsts = this.#capDsts(cls, part);
            if (dsts !== undefined) grants.push({ dsts, capMap: item.capMap });
          }
          if (grants.length > 0) out.push({ kind: 'cap', order, src: info.list, grants });
          if (info.src.members.has(cls.id) && hasCompanionCaps(item.capMap)) companionRules(item.capMap, this.#host.srcList(item.dst), order, out);
          break;
        }
        case 'via': {
          const via = this.#host.resolve(item.via);
          if (!via.identity.has(cls.id) || info.list.size === 0) break;
          // The service delivers no CapGrant for a grant with `via`; only its ip rules.
          if (item.capMap !== null) break;
          const entries: DstEntry[] = [];
          for (const d of item.dstsWithPorts) {
            if (d.part.kind === 'internet') {
              if (cls.exit) for (const ip of INTERNET_DST_STRINGS) for (const ports of d.ports) entries.push({ ip, ports });
              continue;
            }
            for (const p of d.literalPrefixes) {
              if (cls.routeSet.overlapsPrefix(p)) for (const ports of d.ports) entries.push({ ip: renderDstLiteral(p), ports });
            }
          }
          if (entries.length > 0) out.push({ kind: 'ports', order, src: info.list, proto: item.ipProto, entries });
          break;
        }
        default:
          break;
      }
    }
    return out;
  }

  /** Installs a class's template: lists it uses learn of it, its signature is recomputed. */
  #setTemplate(c: number, rules: TemplateRule[]): void {
    const before = this.#templates[c];
    if (before !== null && before !== undefined) for (const r of before) if (r.src instanceof SrcList) r.src.dependents.delete(c);
    while (this.#templates.length <= c) {
      this.#templates.push(null);
      this.#templateSigs.push('');
      this.#filterVersions.push(0);
      this.#capFilterVersions.push(0);
      this.#usesSelf.push(false);
      this.#selfInGrants.push(false);
    }
    this.#templates[c] = rules;
    for (const r of rules) if (r.src instanceof SrcList) r.src.dependents.add(c);
    this.#templateSigs[c] = templateSignature(rules);
    this.#usesSelf[c] = rules.some((r) => (r.kind === 'ports' ? r.entries.some((e) => e.ip === SELF) : r.grants.some((g) => g.dsts === SELF)));
    this.#selfInGrants[c] = rules.some((r) => r.kind === 'cap' && r.grants.some((g) => g.dsts === SELF));
  }

  /** DstPorts entries one destination contributes to a class (reduction to what it serves). */
  #netEntries(cls: IdentityClass, part: SelectionPart, literalPrefixes: readonly IPPrefix[], ports: readonly PortRange[], out: DstEntry[]): void {
    const push = (ip: string | null): void => {
      for (const p of ports) out.push({ ip, ports: p });
    };
    switch (part.kind) {
      case 'wildcard':
        push('*');
        return;
      case 'atom': {
        if (part.atom !== null && cls.atomFlags[part.atom] === 1) push(SELF);
        if (cls.routes.length > 0) {
          // Another node's address inside this router's subnet: the router carries it.
          const inside = this.#host.partSet(part).intersect(cls.routeSet);
          for (const s of inside.toStrings()) push(s);
        }
        return;
      }
      case 'literal': {
        const inAtom = part.atom !== null && cls.atomFlags[part.atom] === 1;
        for (const p of literalPrefixes) {
          const hit =
            (inAtom && cls.nodes.some((n) => prefixHas(p, n))) ||
            (cls.routes.length > 0 && cls.routeSet.overlapsPrefix(p)) ||
            (cls.exit && INTERNET.coversPrefix(p));
          if (hit) push(renderDstLiteral(p));
        }
        return;
      }
      case 'internet':
        if (cls.exit) for (const ip of INTERNET_DST_STRINGS) push(ip);
        else if (cls.routes.length > 0) {
          for (const ip of INTERNET_DST_STRINGS) {
            const set = IPSet.tryParse(ip);
            if (set !== null && set.overlaps(cls.routeSet)) push(ip);
          }
        }
        return;
      default:
        return;
    }
  }

  /** CapGrant Dsts for a class: its own addresses (SELF), a served literal as written, or none. */
  #capDsts(cls: IdentityClass, part: SelectionPart): readonly string[] | null | undefined {
    switch (part.kind) {
      case 'wildcard':
        return SELF;
      case 'atom':
        return part.atom !== null && cls.atomFlags[part.atom] === 1 ? SELF : undefined;
      case 'literal': {
        if (part.atom !== null && cls.atomFlags[part.atom] === 1) return SELF;
        const served = (part.literal ?? IPSet.EMPTY).prefixes().filter((p) => cls.routes.length > 0 && cls.routeSet.overlapsPrefix(p));
        return served.length > 0 ? served.map(formatPrefix) : undefined;
      }
      default:
        return undefined;
    }
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
  filterFor(node: NodeRec, options: FilterFormOptions): tailcfg.FilterRule[] {
    const template = this.#templates[node.classId]!;
    const self = node.user !== null && this.self.has() ? this.self.rulesOf(node.user) : [];
    const rules = self.length === 0 ? template : [...template, ...self].sort((a, b) => a.order - b.order);
    return instantiate(rules, node, this.#globalFirst, options.selfAsWildcard === true && servesNothing(node), options.sourceCaps === true);
  }

  /**
   * A key naming filterFor(node, options): equal keys promise equal filters, and the key
   * changes whenever the node's filter does. Nodes of one class share it unless the filter
   * names the node's own addresses (in the wildcard form only when a capability grant does, or
   * the node serves routes) or its user's autogroup:self rules; every node with an empty
   * filter shares one. Keys of different forms differ (`c`, `c…w`, `k`) except for that empty
   * filter, so one cache can hold every form. O(1).
   */
  filterKey(node: NodeRec, options: FilterFormOptions): string {
    const c = node.classId;
    const self = node.user !== null && this.self.has() ? this.self.rulesOf(node.user) : null;
    const hasSelf = self !== null && self.length > 0;
    if (!hasSelf && this.#templates[c]!.length === 0) return 'e';
    const wildcard = options.selfAsWildcard === true && servesNothing(node);
    let key = options.sourceCaps === true ? `k${c}.${this.#capFilterVersions[c]}` : `c${c}.${this.#filterVersions[c]}`;
    if (wildcard) key += 'w';
    const namesOwnAddresses = wildcard ? this.#selfInGrants[c] : this.#usesSelf[c];
    if (namesOwnAddresses || hasSelf) key += `@${node.v4Text ?? ''}|${node.v6Text ?? ''}`;
    if (hasSelf) key += `u${node.user!.id}.${this.self.versionOf(node.user!.id)}`;
    return key;
  }

}

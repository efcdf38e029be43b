// Routes and primaries: who may use which subnet route and exit node (per-prefix access rows
// of identity classes, the exit access row), the HA table electing a primary router per prefix,
// `via` elections among tagged routers, and who must hear when routers come, go, move or
// fail over.
//
// What it reads from the rest of the index is RoutesHost: nodes by id, the identity classes
// (routers' among them), the rule items (`via` ones among them), selection resolution and
// visibility. What it gives back: designatedRouter / canUseExit for views; for updates,
// servedAfter / routesBefore before routers change, addServed while they change, settle after
// (the viewers and routers that hear), and online() for failover.
import type { IPPrefix } from '../../util/ip.js';
import { IPSet } from '../../util/ip-set.js';
import type { Selection, SelectionPart } from '../compile.js';
import { PrimaryRouteTable, type PrimaryChange } from '../primary-routes.js';
import { INTERNET, TAILSCALE_SPACE } from '../tailscale-ranges.js';
import type { Bits } from './bits.js';
import type { NodeChange, RouteNotes, RoutesBefore } from './delta-collection.js';
import type { IdentityClass, NodeRec } from './records.js';
import { parsePrefixText, servedRoutes, type RouteAccess } from './route-access.js';
import type { ItemInfo, Resolved } from './selections.js';

/** What the route table reads from the rest of the index (always the current state). */
export interface RoutesHost {
  readonly classes: readonly IdentityClass[];
  /** Classes serving subnet routes. */
  readonly routeClasses: readonly IdentityClass[];
  readonly items: readonly ItemInfo[];
  readonly viaItems: readonly ItemInfo[];
  nodeById(id: number): NodeRec | undefined;
  /** An empty class bit set of the current size. */
  bits(): Bits;
  /** The classes with a node inside a prefix. */
  classesInsidePrefix(prefix: IPPrefix): Bits;
  /** Classes an atom names. */
  atomClasses(atom: number): readonly number[];
  /** Every served route, as one set. */
  servedRouteSet(): IPSet;
  resolve(sel: Selection): Resolved;
  sees(a: number, b: number): boolean;
}

export class RouteTable {
  readonly #host: RoutesHost;
  #primary: PrimaryRouteTable;
  /** Per served prefix: the classes that may use it (a prefix no longer served keeps its row). */
  #routeAccess = new Map<string, RouteAccess>();
  /** Served prefixes by text. */
  #routePrefixes = new Map<string, IPPrefix>();
  /** Classes that may use exit nodes. */
  #exitAccess!: Bits;

  constructor(host: RoutesHost, primary: PrimaryRouteTable) {
    this.#host = host;
    this.#primary = primary;
  }

  /** Takes over another index's route state (after a rebuild). */
  adopt(other: RouteTable): void {
    this.#primary = other.#primary;
    this.#routeAccess = other.#routeAccess;
    this.#routePrefixes = other.#routePrefixes;
    this.#exitAccess = other.#exitAccess;
  }

  /** The HA table (the server keeps it across rebuilds for failover state). */
  get primary(): PrimaryRouteTable {
    return this.#primary;
  }

  /** Whether any subnet route is served. */
  get hasRoutes(): boolean {
    return this.#routePrefixes.size > 0;
  }

  /** A copy of the HA table with `changes` applied, for an index rebuilt with them. */
  tableAfter(changes: readonly NodeChange[]): PrimaryRouteTable {
    const table = this.#primary.clone();
    for (const c of changes) {
      const routes = c.facts === null ? [] : servedRoutes(c.facts);
      if (c.facts !== null && routes.length > 0) table.upsert({ nodeId: c.id, order: c.facts.registeredOrder ?? c.id, online: c.facts.online, routes });
      else table.remove(c.id);
    }
    return table;
  }

  /**
   * A node came online or went offline (its facts already say so): HA failover. Null when it
   * serves no route.
   */
  online(node: NodeRec): RouteNotes | null {
    const router = this.#primary.router(node.id);
    if (router === undefined) return null;
    // Viewers through `via` are elected among eligible routers: their choice may move even
    // when the primary does not, so they are asked before and after.
    const viaBefore = this.#viaDesignations(router.routes);
    const moved = this.#primary.setOnline(node.id, node.facts.online);
    return this.#routeMoves(moved, router.routes, viaBefore, new Set());
  }

  /** The served prefixes (sorted) once `changes` are applied; routers are few, so this is cheap. */
  servedAfter(changes: readonly NodeChange[]): string[] {
    const changed = new Set(changes.map((c) => c.id));
    const out = new Set<string>();
    for (const cls of this.#host.routeClasses) for (const n of cls.nodes) if (!changed.has(n.id)) for (const r of n.routeTexts) out.add(r);
    for (const c of changes) if (c.facts !== null) for (const r of servedRoutes(c.facts)) out.add(r);
    return [...out].sort();
  }

  /**
   * Before routers change: the routes they serve then and will serve, and for each such prefix
   * the router each `via` viewer is given (their election may move without the primary).
   */
  routesBefore(changes: readonly NodeChange[]): RoutesBefore | null {
    // Any change of a router counts: its tags decide `via` elections, its order HA ones.
    const prefixes = new Set<string>();
    for (const c of changes) {
      for (const r of this.#host.nodeById(c.id)?.routeTexts ?? []) prefixes.add(r);
      if (c.facts !== null) for (const r of servedRoutes(c.facts)) prefixes.add(r);
    }
    if (prefixes.size === 0) return null;
    return { prefixes, via: this.#viaDesignations(prefixes) };
  }

  #viaDesignations(prefixes: Iterable<string>): Map<string, Map<NodeRec, number | null>> {
    const out = new Map<string, Map<NodeRec, number | null>>();
    for (const prefix of prefixes) {
      const p = parsePrefixText(prefix);
      const viewers = new Map<NodeRec, number | null>();
      for (const info of this.#host.viaItems) {
        if (info.item.kind !== 'via' || !info.item.dst.literal.overlapsPrefix(p)) continue;
        for (const c of info.src.members) for (const v of this.#host.classes[c]!.nodes) if (!viewers.has(v)) viewers.set(v, this.designatedRouter(v, prefix));
      }
      if (viewers.size > 0) out.set(prefix, viewers);
    }
    return out;
  }

  /**
   * Between taking changed nodes out and putting them back: new served prefixes get their
   * access rows (so classes bound next see them).
   */
  addServed(served: readonly string[]): void {
    const added = new Set<string>();
    for (const text of served) {
      if (this.#routePrefixes.has(text)) continue;
      this.#routePrefixes.set(text, parsePrefixText(text));
      this.#routeAccess.set(text, { regular: this.#host.bits() });
      added.add(text);
    }
    if (added.size > 0) {
      for (const info of this.#host.items) {
        if (info.item.kind === 'net' && info.list.size === 0) continue;
        this.itemAccess(info, added);
      }
    }
  }

  /**
   * After routers changed: the HA table learns their routes; viewers whose router for a prefix
   * moved see both routers anew, routers whose primaries moved see themselves anew.
   */
  settle(changes: readonly NodeChange[], before: RoutesBefore, changed: ReadonlySet<number>): RouteNotes {
    const moved: PrimaryChange[] = [];
    for (const c of changes) {
      const node = this.#host.nodeById(c.id);
      if (node === undefined || node.routeTexts.length === 0) moved.push(...this.#primary.remove(c.id));
      else moved.push(...this.#primary.upsert({ nodeId: c.id, order: node.order, online: node.facts.online, routes: node.routeTexts }));
    }
    return this.#routeMoves(moved, before.prefixes, before.via, changed);
  }

  /**
   * Who hears that routers moved: viewers whose router for a prefix changed (the primary, or a
   * `via` election, compared with `viaBefore`) see both routers anew, and routers whose
   * primaries moved see themselves anew. Nodes in `changed` are compared by the caller.
   */
  #routeMoves(moved: readonly PrimaryChange[], prefixes: Iterable<string>, viaBefore: Map<string, Map<NodeRec, number | null>>, changed: ReadonlySet<number>): RouteNotes {
    const pairs = new Map<number, Set<number>>();
    const selfChanged = new Set<number>();
    const note = (viewer: NodeRec, router: number | null): void => {
      if (router === null || router === viewer.id || changed.has(router) || changed.has(viewer.id)) return;
      if (this.#host.nodeById(router) === undefined || !this.#host.sees(viewer.id, router)) return;
      let set = pairs.get(router);
      if (set === undefined) pairs.set(router, (set = new Set()));
      set.add(viewer.id);
    };
    for (const change of moved) {
      for (const r of [change.from, change.to]) if (r !== null && this.#host.nodeById(r) !== undefined && !changed.has(r)) selfChanged.add(r);
      const access = this.#routeAccess.get(change.prefix);
      const viewers = new Set<NodeRec>();
      if (access !== undefined) for (const c of access.regular) for (const v of this.#host.classes[c]!.nodes) viewers.add(v);
      for (const cls of this.#host.routeClasses) if (cls.routeTexts.includes(change.prefix)) for (const v of cls.nodes) viewers.add(v);
      for (const v of viewers) {
        note(v, change.from);
        note(v, change.to);
      }
    }
    const viaAfter = this.#viaDesignations(prefixes);
    for (const prefix of new Set([...viaBefore.keys(), ...viaAfter.keys()])) {
      const was = viaBefore.get(prefix) ?? new Map<NodeRec, number | null>();
      const now = viaAfter.get(prefix) ?? new Map<NodeRec, number | null>();
      for (const v of new Set([...was.keys(), ...now.keys()])) {
        if (this.#host.nodeById(v.id) === undefined) continue;
        const a = was.has(v) ? was.get(v)! : this.designatedRouter(v, prefix);
        const b = now.has(v) ? now.get(v)! : this.designatedRouter(v, prefix);
        if (a === b) continue;
        note(v, a);
        note(v, b);
      }
    }
    return { pairs, selfChanged };
  }

  build(): void {
    this.#exitAccess = this.#host.bits();
    for (const cls of this.#host.classes) for (let i = 0; i < cls.routes.length; i++) this.#routePrefixes.set(cls.routeTexts[i]!, cls.routes[i]!);
    for (const [text] of this.#routePrefixes) this.#routeAccess.set(text, { regular: this.#host.bits() });
    for (const info of this.#host.items) {
      if (info.item.kind === 'net' && info.list.size === 0) continue;
      this.itemAccess(info);
    }
  }

  /** Who may use which subnet routes and exit nodes through one item (without `via`). */
  itemAccess(info: ItemInfo, only: ReadonlySet<string> | null = null): void {
    const item = info.item;
    if (item.kind !== 'net' && item.kind !== 'cap') return;
    const parts = item.kind === 'net' ? item.dsts.map((d) => d.part) : item.dst.parts;
    const coversInternet = parts.some((p) => p.kind === 'wildcard' || p.kind === 'internet');
    if (coversInternet) this.#exitAccess.or(info.src.members);
    for (const [text, prefix] of this.#routePrefixes) {
      if (only !== null && !only.has(text)) continue;
      const access = this.#routeAccess.get(text)!;
      // A prefix in `only` covers no node (#needsRebuild saw to it): of the parts, only
      // literals can overlap it, and the node address sets need not be built.
      const dstHits = parts.some((p) => {
        if (p.kind === 'wildcard') return true;
        if (p.kind === 'internet') return INTERNET.overlapsPrefix(prefix);
        if (only !== null) return p.kind === 'literal' && (p.literal ?? IPSet.EMPTY).overlapsPrefix(prefix);
        if (p.kind === 'literal' || p.kind === 'atom') return this.#partsOverlap([p], prefix);
        return false;
      });
      if (dstHits) access.regular.or(info.src.members);
      // Return traffic: a route inside the sources lets the destinations reach it.
      if (only !== null ? this.#selectionOverlapsRoute(info.src.sel, prefix) : this.#sourcesOverlap(info.src, prefix)) access.regular.or(info.dst);
    }
  }

  /** #itemRouteAccess for one new class. */
  classAccess(info: ItemInfo, cls: IdentityClass): void {
    const item = info.item;
    if (item.kind !== 'net' && item.kind !== 'cap') return;
    const c = cls.id;
    const inSrc = info.src.members.has(c);
    const inDst = info.dst.has(c);
    if (!inSrc && !inDst) return;
    const parts = item.kind === 'net' ? item.dsts.map((d) => d.part) : item.dst.parts;
    if (inSrc && parts.some((p) => p.kind === 'wildcard' || p.kind === 'internet')) this.#exitAccess.set(c);
    if (this.#routePrefixes.size === 0) return;
    for (const [text, prefix] of this.#routePrefixes) {
      const access = this.#routeAccess.get(text)!;
      if (inSrc) {
        const dstHits = parts.some((p) => {
          if (p.kind === 'wildcard') return true;
          if (p.kind === 'internet') return INTERNET.overlapsPrefix(prefix);
          if (p.kind === 'literal' || p.kind === 'atom') return this.#partsOverlap([p], prefix);
          return false;
        });
        if (dstHits) access.regular.set(c);
      }
      if (inDst && this.#sourcesOverlap(info.src, prefix)) access.regular.set(c);
    }
  }

  /**
   * Whether the addresses the parts name (their nodes' addresses and literals) overlap a
   * prefix, without building them:
   * a literal overlaps it, or a class an atom names has a node inside.
   */
  #partsOverlap(parts: readonly SelectionPart[], prefix: IPPrefix): boolean {
    let inside: Bits | null = null;
    for (const p of parts) {
      if (p.kind === 'literal' && p.literal !== null && p.literal.overlapsPrefix(prefix)) return true;
      if (p.kind !== 'atom' || p.atom === null) continue;
      inside ??= this.#host.classesInsidePrefix(prefix);
      for (const c of this.#host.atomClasses(p.atom)) if (inside.has(c)) return true;
    }
    return false;
  }

  /** Whether the addresses a source covers (Resolved.ipSet) overlap a prefix, without building them. */
  #sourcesOverlap(src: Resolved, prefix: IPPrefix): boolean {
    const sel = src.sel;
    if (sel.dangerAll) return true;
    if (sel.postures.length > 0) return src.identity.intersects(this.#host.classesInsidePrefix(prefix));
    if (sel.literal.overlapsPrefix(prefix)) return true;
    // `*` covers the tailnet's space, every node and every served route besides its literals.
    if (sel.wildcard) return TAILSCALE_SPACE.overlapsPrefix(prefix) || this.#host.servedRouteSet().overlapsPrefix(prefix) || !this.#host.classesInsidePrefix(prefix).isEmpty();
    return this.#partsOverlap(sel.parts, prefix);
  }

  /** Resolved.ipSet overlaps a prefix, for a prefix that covers no node address. */
  #selectionOverlapsRoute(sel: Selection, prefix: IPPrefix): boolean {
    if (sel.dangerAll || sel.wildcard) return true;
    if (sel.postures.length > 0) return false;
    return sel.literal.overlapsPrefix(prefix);
  }

  /** Which router carries `prefix` for this viewer, if the viewer may use the prefix at all. */
  designatedRouter(viewer: NodeRec, prefix: string): number | null {
    const access = this.#routeAccess.get(prefix);
    if (access !== undefined && access.regular.has(viewer.classId)) return this.#primary.primaryFor(prefix);
    // A router serving the same prefix (an HA secondary) learns the primary's route.
    if (viewer.routeTexts.includes(prefix)) return this.#primary.primaryFor(prefix);
    const p = parsePrefixText(prefix);
    const viaSels: Selection[] = [];
    for (const info of this.#host.viaItems) {
      const item = info.item;
      if (item.kind !== 'via' || !info.src.members.has(viewer.classId)) continue;
      if (!item.dst.literal.overlapsPrefix(p)) continue;
      viaSels.push(item.via);
    }
    if (viaSels.length === 0) return null;
    return this.#primary.electAmong(prefix, (id) => {
      const router = this.#host.nodeById(id);
      return router !== undefined && viaSels.some((sel) => this.#host.resolve(sel).identity.has(router.classId));
    });
  }

  canUseExit(viewer: NodeRec, exitNode: NodeRec): boolean {
    if (this.#exitAccess.has(viewer.classId)) return true;
    for (const info of this.#host.viaItems) {
      const item = info.item;
      if (item.kind !== 'via' || !item.dst.internet || !info.src.members.has(viewer.classId)) continue;
      if (this.#host.resolve(item.via).identity.has(exitNode.classId)) return true;
    }
    return false;
  }
}

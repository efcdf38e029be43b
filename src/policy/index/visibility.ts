// Visibility: which identity classes see each other (one row of class bits per class, set by
// every rule item between its sources and destinations) and which classes are sources of
// autogroup:self rules (those see the other devices of their own user). From these, a node's
// peers and whether two nodes see each other.
//
// What it reads from the rest of the index is VisibilityHost: the classes with their nodes,
// the rule items (with their source members and destination classes) and an empty class bit
// set. Rows only ever gain bits, so the part has no removal path: build, then itemReach() when
// an item gains its first source and bindClass() when a class is added.
import { Bits } from './bits.js';
import type { IdentityClass, NodeRec } from './records.js';
import type { ItemInfo } from './selections.js';

/** What visibility reads from the rest of the index (always the current state). */
export interface VisibilityHost {
  readonly classes: readonly IdentityClass[];
  readonly items: readonly ItemInfo[];
  /** An empty class bit set of the current size. */
  bits(): Bits;
}

export class Visibility {
  readonly #host: VisibilityHost;
  /** Per class: the classes it sees (null: none yet). */
  #rows: (Bits | null)[] = [];
  /** Classes that are sources of some autogroup:self rule. */
  #selfSrc!: Bits;

  constructor(host: VisibilityHost) {
    this.#host = host;
  }

  /** Takes over another index's rows (after a rebuild). */
  adopt(other: Visibility): void {
    this.#rows = other.#rows;
    this.#selfSrc = other.#selfSrc;
  }

  build(): void {
    const n = this.#host.classes.length;
    for (let i = 0; i < n; i++) this.#rows.push(null);
    this.#selfSrc = this.#host.bits();
    for (const info of this.#host.items) {
      const item = info.item;
      if (item.kind === 'selfNet' || item.kind === 'selfCap') {
        this.#selfSrc.or(info.src.members);
        continue;
      }
      if (item.kind !== 'cap' && info.list.size === 0) continue;
      this.itemReach(info);
    }
  }

  /**
   * An item's sources and destinations see each other. Rows only ever gain bits: a bit that
   * an item with no sources left would not set joins classes that have no nodes (sources
   * render as strings), so it shows nowhere until a source comes back and sets it anyway.
   */
  itemReach(info: ItemInfo): void {
    const src = info.src.members;
    const dst = info.dst;
    if (src.isEmpty() || dst.isEmpty()) return;
    for (const a of src) this.#row(a).or(dst);
    for (const b of dst) this.#row(b).or(src);
  }

  /**
   * The row of the class just added with id `c` (the union of what the items that select it
   * reach); the other rows gain its bit. The items' destinations already count the class.
   */
  bindClass(c: number): void {
    this.#rows.push(null);
    const row = this.#row(c);
    for (const info of this.#host.items) {
      const kind = info.item.kind;
      if (kind === 'selfNet' || kind === 'selfCap') {
        if (info.src.members.has(c)) this.#selfSrc.set(c);
        continue;
      }
      // Items without sources count too: their bits join classes without nodes (see
      // itemReach), and the class may be about to give them their first source.
      if (info.src.members.has(c) && !info.dst.isEmpty()) row.or(info.dst);
      if (info.dst.has(c) && !info.src.members.isEmpty()) row.or(info.src.members);
    }
    for (const b of row) if (b !== c) this.#row(b).set(c);
    if (row.isEmpty()) this.#rows[c] = null;
  }

  /** The classes class `c` sees, or null. */
  rowOf(c: number): Bits | null {
    return this.#rows[c] ?? null;
  }

  /**
   * The node's peers: every node it may reach or that may reach it. The relation is
   * symmetric, so this is also the set of nodes that must hear about changes to this node.
   */
  peersOf(node: NodeRec): number[] {
    const out: number[] = [];
    const row = this.#rows[node.classId];
    if (row !== null && row !== undefined) {
      const self = node.id;
      for (const c of row) {
        // Ids, not records: listing recipients must not load every recipient's record.
        const ids = this.#host.classes[c]!.memberIds;
        for (let i = 0; i < ids.length; i++) if (ids[i] !== self) out.push(ids[i]!);
      }
    }
    if (node.user !== null && node.user.nodes.length > 1 && !this.#selfSrc.isEmpty()) {
      const selfIn = this.#selfSrc.has(node.classId);
      const present = new Set(out);
      for (const m of node.user.nodes) {
        if (m === node || present.has(m.id)) continue;
        if (selfIn || this.#selfSrc.has(m.classId)) out.push(m.id);
      }
    }
    return out;
  }

  /** Whether class `c`'s row names class `d` (the nodes see each other, without autogroup:self). */
  classSees(c: number, d: number): boolean {
    return this.#rows[c]?.has(d) === true;
  }

  /** Whether two (distinct) nodes see each other. */
  sees(na: NodeRec, nb: NodeRec): boolean {
    if (this.#rows[na.classId]?.has(nb.classId) === true) return true;
    return na.user !== null && na.user === nb.user && (this.#selfSrc.has(na.classId) || this.#selfSrc.has(nb.classId));
  }

  #row(c: number): Bits {
    let row = this.#rows[c];
    if (row === null || row === undefined) {
      row = this.#host.bits();
      this.#rows[c] = row;
    }
    return row;
  }
}

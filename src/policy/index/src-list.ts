// A rule's SrcIPs as the service writes them, kept current while nodes come and go: literal
// strings first (hosts, CIDRs, Tailscale's space and served routes for `*`), then each listed
// node's own addresses in node-id order. A node joining or leaving splices its one or two
// strings into one small chunk instead of re-rendering the list; the flat array is built again
// only when asked for after a change, so a list handed out earlier never changes under its holder.
//
// Clients from capability version 109 also get a second form: the literal strings, then one
// `cap:` entry standing for every listed node. Each listed node carries that capability in
// the CapMap its peers receive, so the form does not change while nodes come and go.
import { createHash } from 'node:crypto';
import type { IPSet } from '../../util/ip-set.js';
import { lowerBound } from '../../util/sorted.js';
import type { NodeRec } from './records.js';

/** What a filter template rule needs of its sources. */
export interface SrcRef {
  readonly strings: readonly string[];
  /** Rules with equal keys (and protocols) merge into one FilterRule. */
  readonly key: string;
}

/** Lists longer than this can only equal the rendering of the same selection (see srcKey). */
const CONTENT_KEY_LIMIT = 64;

/**
 * The merge key of a source list. Small lists are keyed by content (autogroup:self lists must
 * meet equal rule lists); a large list can only equal the rendering of the same selection, so
 * it is keyed by that selection.
 */
export function srcKey(strings: readonly string[], selectionKey: string | null): string {
  return selectionKey !== null && strings.length > CONTENT_KEY_LIMIT ? `sel:${selectionKey}` : strings.join(' ');
}

const EMPTY: readonly string[] = Object.freeze([]) as readonly string[];

/**
 * The peer capability standing for a selection's nodes. Derived from the selection's canonical
 * text, so it survives index rebuilds and edits to other parts of the policy: clients that
 * hold it need no resend.
 */
export function sourceCapName(selectionKey: string): string {
  return `headway.dev/cap/src/${createHash('sha256').update(selectionKey).digest('hex').slice(0, 16)}`;
}

/** Node entries live in chunks of about this many, so a splice moves little. */
const CHUNK = 512;

interface Chunk {
  /** Node id of each entry, ascending. */
  readonly owners: number[];
  readonly strings: string[];
}

export class SrcList implements SrcRef {
  static #nextUid = 0;
  /** Identity of the list, stable for the index's life (filter signatures name lists by it). */
  readonly uid = SrcList.#nextUid++;
  readonly selectionKey: string | null;
  /** The capability listed nodes carry for the `cap:` form; null for lists without a selection. */
  readonly capName: string | null;
  key: string;
  /** Changes (to a fresh tailnet-wide counter value) whenever the strings change. */
  version: number;
  /** Classes whose filter templates use this list: they change when it does. */
  readonly dependents = new Set<number>();
  readonly #literal: readonly string[];
  readonly #literalSet: ReadonlySet<string>;
  /** Node addresses inside this set are not listed (a literal already names them). */
  readonly #covered: IPSet | null;
  readonly #chunks: Chunk[] = [];
  #size: number;
  /** The flat list, built on first use after each change and never changed after. */
  #flat: readonly string[] | null = null;
  #capFlat: readonly string[] | null = null;

  /** `nodes` in node-id order. */
  constructor(literal: readonly string[], nodes: readonly NodeRec[], covered: IPSet | null, selectionKey: string | null, version: number) {
    this.selectionKey = selectionKey;
    this.capName = selectionKey === null ? null : sourceCapName(selectionKey);
    this.version = version;
    this.#covered = covered;
    this.#literal = [...new Set(literal)];
    this.#literalSet = new Set(this.#literal);
    const seen = new Set<string>(this.#literal);
    let chunk: Chunk | null = null;
    let size = this.#literal.length;
    for (const n of nodes) {
      for (const s of this.nodeStrings(n)) {
        if (seen.has(s)) continue;
        seen.add(s);
        if (chunk === null || chunk.owners.length >= CHUNK) this.#chunks.push((chunk = { owners: [], strings: [] }));
        chunk.owners.push(n.id);
        chunk.strings.push(s);
        size++;
      }
    }
    this.#size = size;
    this.key = this.#keyOf();
  }

  /**
   * The same list for another index over the same classes (a policy edit that kept them): its
   * entries are taken over, not rendered again. This list must not be updated afterwards (the
   * index holding it is being replaced), as both would see the change.
   */
  carriedOver(version: number): SrcList {
    const next = new SrcList(this.#literal, [], this.#covered, this.selectionKey, version);
    next.#chunks.push(...this.#chunks);
    next.#size = this.#size;
    // One strings array for both: filters of the two indexes compare by reference (sameFilterRules).
    next.#flat = this.strings;
    next.#capFlat = this.#capFlat;
    next.key = this.key;
    return next;
  }

  get size(): number {
    return this.#size;
  }

  get strings(): readonly string[] {
    if (this.#flat === null) {
      const out = this.#literal.slice();
      for (const c of this.#chunks) for (const s of c.strings) out.push(s);
      this.#flat = out;
    }
    return this.#flat;
  }

  /** Whether some node is listed by its own addresses. */
  get hasNodeEntries(): boolean {
    return this.#size > this.#literal.length;
  }

  /**
   * The `cap:` form: the literal strings, then one capability entry for all listed nodes
   * (none when no node is listed). Changes only when hasNodeEntries does.
   */
  get capStrings(): readonly string[] {
    if (this.capName === null) return this.strings;
    if (this.#capFlat === null) this.#capFlat = this.hasNodeEntries ? [...this.#literal, `cap:${this.capName}`] : this.#literal;
    return this.#capFlat;
  }

  #keyOf(): string {
    // Only small lists are keyed by content, so only they are flattened for it.
    return this.selectionKey !== null && this.#size > CONTENT_KEY_LIMIT ? `sel:${this.selectionKey}` : srcKey(this.strings, this.selectionKey);
  }

  /** The strings a node contributes when it is listed. */
  nodeStrings(n: NodeRec): readonly string[] {
    const v4 = n.v4Text !== null && !this.#literalSet.has(n.v4Text) && !(this.#covered !== null && this.#covered.containsV4(n.v4)) ? n.v4Text : null;
    const v6 = n.v6Text !== null && !this.#literalSet.has(n.v6Text) && !(this.#covered !== null && this.#covered.containsV6(n.v6!)) ? n.v6Text : null;
    if (v4 === null) return v6 === null ? EMPTY : [v6];
    return v6 === null ? [v4] : [v4, v6];
  }

  /** The chunk holding `id`, or where it would go: the last whose first owner is <= id (-1: none). */
  #chunkOf(id: number): number {
    const chunks = this.#chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (chunks[mid]!.owners[0]! <= id) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** The entries of node `id`, joined (empty when it is not listed). */
  entriesOf(id: number): string {
    const chunk = this.#chunks[this.#chunkOf(id)];
    if (chunk === undefined) return '';
    const out: string[] = [];
    for (let i = lowerBound(chunk.owners, id); i < chunk.owners.length && chunk.owners[i] === id; i++) out.push(chunk.strings[i]!);
    return out.join(' ');
  }

  /**
   * Sets the entries of node `id` (none to unlist it). Returns whether the list changed; if
   * so, `strings`, `key` and `version` are new (earlier `strings` arrays stay as they were).
   */
  update(id: number, next: readonly string[], version: number): boolean {
    const chunks = this.#chunks;
    let ci = Math.max(0, this.#chunkOf(id));
    if (chunks.length === 0) {
      if (next.length === 0) return false;
      chunks.push({ owners: [], strings: [] });
      ci = 0;
    }
    const chunk = chunks[ci]!;
    const start = lowerBound(chunk.owners, id);
    let end = start;
    while (end < chunk.owners.length && chunk.owners[end] === id) end++;
    if (end - start === next.length) {
      let same = true;
      for (let i = 0; i < next.length; i++) if (chunk.strings[start + i] !== next[i]) same = false;
      if (same) return false;
    }
    chunk.owners.splice(start, end - start, ...next.map(() => id));
    chunk.strings.splice(start, end - start, ...next);
    if (chunk.owners.length === 0) chunks.splice(ci, 1);
    else if (chunk.owners.length > 2 * CHUNK) {
      const half = chunk.owners.length >>> 1;
      chunks.splice(ci + 1, 0, { owners: chunk.owners.splice(half), strings: chunk.strings.splice(half) });
    }
    const hadNodes = this.#capFlat !== null && this.#capFlat.length > this.#literal.length;
    this.#size += next.length - (end - start);
    if (this.hasNodeEntries !== hadNodes) this.#capFlat = null;
    this.#flat = null;
    this.key = this.#keyOf();
    this.version = version;
    return true;
  }
}

// A rule's SrcIPs as the service writes them, kept current while nodes come and go: literal
// strings first (hosts, CIDRs, Tailscale's space and served routes for `*`), then each listed
// node's own addresses in node-id order. A node joining or leaving splices its one or two
// strings in at their place instead of re-rendering the list; the arrays are copied on write,
// so a list handed out earlier never changes under its holder.
import type { IPSet } from '../../util/ip-set.js';
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

export class SrcList implements SrcRef {
  static #nextUid = 0;
  /** Identity of the list, stable for the index's life (filter signatures name lists by it). */
  readonly uid = SrcList.#nextUid++;
  readonly selectionKey: string | null;
  strings: readonly string[];
  key: string;
  /** Changes (to a fresh tailnet-wide counter value) whenever `strings` changes. */
  version: number;
  /** Classes whose filter templates use this list: they change when it does. */
  readonly dependents = new Set<number>();
  /** Node id of each entry; -1 for the literal strings in front. */
  #owners: readonly number[];
  readonly #literalCount: number;
  readonly #literal: ReadonlySet<string>;
  /** Node addresses inside this set are not listed (a literal already names them). */
  readonly #covered: IPSet | null;

  /** `nodes` in node-id order. */
  constructor(literal: readonly string[], nodes: readonly NodeRec[], covered: IPSet | null, selectionKey: string | null, version: number) {
    this.selectionKey = selectionKey;
    this.version = version;
    this.#covered = covered;
    const seen = new Set<string>();
    const strings: string[] = [];
    const owners: number[] = [];
    for (const s of literal) {
      if (seen.has(s)) continue;
      seen.add(s);
      strings.push(s);
      owners.push(-1);
    }
    this.#literalCount = strings.length;
    this.#literal = new Set(strings);
    for (const n of nodes) {
      for (const s of this.nodeStrings(n)) {
        if (seen.has(s)) continue;
        seen.add(s);
        strings.push(s);
        owners.push(n.id);
      }
    }
    this.strings = strings;
    this.#owners = owners;
    this.key = srcKey(strings, selectionKey);
  }

  /** The strings a node contributes when it is listed. */
  nodeStrings(n: NodeRec): readonly string[] {
    const v4 = n.v4Text !== null && !this.#literal.has(n.v4Text) && !(this.#covered !== null && this.#covered.containsV4(n.v4)) ? n.v4Text : null;
    const v6 = n.v6Text !== null && !this.#literal.has(n.v6Text) && !(this.#covered !== null && this.#covered.containsV6(n.v6!)) ? n.v6Text : null;
    if (v4 === null) return v6 === null ? EMPTY : [v6];
    return v6 === null ? [v4] : [v4, v6];
  }

  /**
   * Sets the entries of node `id` (none to unlist it). Returns whether the list changed; if
   * so, `strings`, `key` and `version` are new.
   */
  update(id: number, next: readonly string[], version: number): boolean {
    const owners = this.#owners;
    const lo = this.#lowerBound(id);
    let hi = lo;
    while (hi < owners.length && owners[hi] === id) hi++;
    if (hi - lo === next.length) {
      let same = true;
      for (let i = 0; i < next.length; i++) if (this.strings[lo + i] !== next[i]) same = false;
      if (same) return false;
    }
    const strings = this.strings.slice(0, lo);
    const ownerList = owners.slice(0, lo);
    for (const s of next) {
      strings.push(s);
      ownerList.push(id);
    }
    for (let i = hi; i < owners.length; i++) {
      strings.push(this.strings[i]!);
      ownerList.push(owners[i]!);
    }
    this.strings = strings;
    this.#owners = ownerList;
    this.key = srcKey(strings, this.selectionKey);
    this.version = version;
    return true;
  }

  /** First node entry whose owner is >= id. */
  #lowerBound(id: number): number {
    const owners = this.#owners;
    let lo = this.#literalCount;
    let hi = owners.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (owners[mid]! < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

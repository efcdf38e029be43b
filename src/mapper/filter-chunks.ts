// Packet filters as named chunks (MapResponse.PacketFilters, capver 81+), so that a change
// resends only the chunks it touched. A rule whose source list is long (every member's
// addresses under `autogroup:member`, thousands of entries) is split by a hash of each entry
// into buckets; one node joining changes one bucket, and one small chunk goes out instead of
// the whole filter. Splitting a rule's sources over several rules accepts the same packets
// (a packet passes when any rule matches), and the client concatenates chunks in name order.
import type * as tailcfg from '../tailcfg/index.js';

/** Sources per bucket, on average, before a rule is split. */
const BUCKET_TARGET = 256;

export interface FilterChunk {
  readonly json: string;
}

/** A filter as named chunks: name -> the JSON of that chunk's rule list. */
export type ChunkSet = ReadonlyMap<string, FilterChunk>;

interface Buckets {
  /** JSON of each bucket's entries, without brackets, e.g. `"100.64.0.1","100.64.0.2"`. */
  readonly parts: readonly string[];
}

export class FilterChunker {
  /** Bucketed JSON of a source list, by list identity (the policy shares lists between rules). */
  readonly #buckets = new WeakMap<readonly string[], Buckets>();
  /** Chunk sets by filter key; a bounded cache (sessions on an old key get a full resend). */
  readonly #sets = new Map<string, ChunkSet>();
  readonly #maxSets: number;

  constructor(options: { maxSets?: number } = {}) {
    this.#maxSets = options.maxSets ?? 4096;
  }

  /** The chunk set of the filter named `filterKey`; `rules` is read only on a cache miss. */
  chunks(filterKey: string, rules: () => readonly tailcfg.FilterRule[]): ChunkSet {
    let set = this.#sets.get(filterKey);
    if (set === undefined) {
      set = this.#build(rules());
      if (this.#sets.size >= this.#maxSets) this.#sets.delete(this.#sets.keys().next().value!);
      this.#sets.set(filterKey, set);
    }
    return set;
  }

  /** A chunk set built earlier, if still cached. */
  cached(filterKey: string): ChunkSet | undefined {
    return this.#sets.get(filterKey);
  }

  /** `{"name":[rules],...}` of a whole set; with `replace`, first clears every old chunk. */
  static fullJson(set: ChunkSet, replace: boolean): string {
    const parts: string[] = replace ? ['"*":null'] : [];
    for (const [name, chunk] of set) parts.push(`${JSON.stringify(name)}:${chunk.json}`);
    return `{${parts.join(',')}}`;
  }

  /** Only what differs from `before`: changed and new chunks, and null for chunks gone. */
  static deltaJson(before: ChunkSet, after: ChunkSet): string {
    const parts: string[] = [];
    for (const name of before.keys()) if (!after.has(name)) parts.push(`${JSON.stringify(name)}:null`);
    for (const [name, chunk] of after) {
      if (before.get(name)?.json !== chunk.json) parts.push(`${JSON.stringify(name)}:${chunk.json}`);
    }
    return `{${parts.join(',')}}`;
  }

  #build(rules: readonly tailcfg.FilterRule[]): ChunkSet {
    const set = new Map<string, FilterChunk>();
    const seen = new Map<string, number>();
    for (const rule of rules) {
      // The chunk name follows what the rule grants, not where it sits, so inserting a rule
      // does not rename the others.
      const rest = restJson(rule);
      const base = hash32(rest).toString(36);
      const occurrence = seen.get(base) ?? 0;
      seen.set(base, occurrence + 1);
      const name = occurrence === 0 ? base : `${base}.${occurrence}`;
      const buckets = this.#bucketsOf(rule.SrcIPs);
      buckets.parts.forEach((part, i) => {
        if (part === '' && buckets.parts.length > 1) return;
        const json = `[{"SrcIPs":[${part}]${rest}}]`;
        set.set(buckets.parts.length === 1 ? name : `${name}-${i}`, { json });
      });
    }
    return set;
  }

  #bucketsOf(srcIPs: readonly string[]): Buckets {
    let buckets = this.#buckets.get(srcIPs);
    if (buckets !== undefined) return buckets;
    const count = bucketCount(srcIPs.length);
    if (count === 1) {
      buckets = { parts: [srcIPs.map((s) => JSON.stringify(s)).join(',')] };
    } else {
      const lists: string[][] = Array.from({ length: count }, () => []);
      for (const entry of srcIPs) lists[hash32(entry) & (count - 1)]!.push(JSON.stringify(entry));
      buckets = { parts: lists.map((l) => l.join(',')) };
    }
    this.#buckets.set(srcIPs, buckets);
    return buckets;
  }
}

/** A power of two, so that a list keeps its bucket layout until it doubles or halves. */
function bucketCount(length: number): number {
  let count = 1;
  while (length / count > BUCKET_TARGET * 2) count *= 2;
  return count;
}

/** The rule's JSON after SrcIPs, starting with a comma: DstPorts, IPProto, CapGrant. */
function restJson(rule: tailcfg.FilterRule): string {
  let out = '';
  if (rule.DstPorts !== undefined) out += `,"DstPorts":${JSON.stringify(rule.DstPorts)}`;
  if (rule.IPProto !== undefined) out += `,"IPProto":${JSON.stringify(rule.IPProto)}`;
  if (rule.CapGrant !== undefined) out += `,"CapGrant":${JSON.stringify(rule.CapGrant)}`;
  return out;
}

/** FNV-1a over UTF-16 code units: cheap, stable, good enough to spread addresses. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

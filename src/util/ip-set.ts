// Sets of IP addresses over both families, as sorted disjoint inclusive ranges, and their text
// form as Tailscale writes it in FilterRule.SrcIPs and DstPorts[].IP: a single address bare, a
// range that is exactly one CIDR as that prefix, any other run as `first-last`.
//
// IPv4 values are plain numbers (exact below 2^53), so the common case never touches bigint;
// IPv6 values are bigints. Building a set from N single addresses sorts typed arrays (v4) or
// groups by the upper 64 bits and sorts BigUint64Arrays (v6), which keeps 100k addresses in a
// few milliseconds.
import {
  type IPAddr,
  type IPPrefix,
  formatIP,
  familyBits,
  prefixFirst,
  prefixLast,
  tryParseIP,
  tryParsePrefix,
} from './ip.js';

const V4_MAX = 0xffffffff;
const V6_MAX = (1n << 128n) - 1n;
const LOW64 = (1n << 64n) - 1n;

/** One inclusive run of addresses of one family. */
export interface IPRange {
  readonly family: 4 | 6;
  readonly first: bigint;
  readonly last: bigint;
}

export class IPSet {
  /** Flat [first0, last0, first1, last1, ...], sorted, disjoint and non-adjacent. */
  readonly #v4: readonly number[];
  readonly #v6: readonly bigint[];

  private constructor(v4: readonly number[], v6: readonly bigint[]) {
    this.#v4 = v4;
    this.#v6 = v6;
  }

  static readonly EMPTY = new IPSet([], []);

  /** For builders and set algebra only: the arrays must already be normalised. */
  static fromNormalised(v4: readonly number[], v6: readonly bigint[]): IPSet {
    if (v4.length === 0 && v6.length === 0) return IPSet.EMPTY;
    return new IPSet(v4, v6);
  }

  static of(...items: ReadonlyArray<IPAddr | IPPrefix>): IPSet {
    const builder = new IPSetBuilder();
    for (const item of items) {
      if ('bits' in item) builder.addPrefix(item);
      else builder.addAddr(item);
    }
    return builder.build();
  }

  /** Parses `*`-free text forms: an address, a CIDR, or `first-last`. Returns null on bad text. */
  static tryParse(text: string): IPSet | null {
    const builder = new IPSetBuilder();
    if (!builder.tryAddText(text)) return null;
    return builder.build();
  }

  get v4Ranges(): readonly number[] {
    return this.#v4;
  }

  get v6Ranges(): readonly bigint[] {
    return this.#v6;
  }

  isEmpty(): boolean {
    return this.#v4.length === 0 && this.#v6.length === 0;
  }

  /** Number of disjoint runs in both families. */
  get rangeCount(): number {
    return (this.#v4.length + this.#v6.length) / 2;
  }

  equals(other: IPSet): boolean {
    if (this === other) return true;
    const a4 = this.#v4;
    const b4 = other.#v4;
    const a6 = this.#v6;
    const b6 = other.#v6;
    if (a4.length !== b4.length || a6.length !== b6.length) return false;
    for (let i = 0; i < a4.length; i++) if (a4[i] !== b4[i]) return false;
    for (let i = 0; i < a6.length; i++) if (a6[i] !== b6[i]) return false;
    return true;
  }

  containsV4(value: number): boolean {
    return indexOfV4(this.#v4, value) >= 0;
  }

  containsV6(value: bigint): boolean {
    return indexOfV6(this.#v6, value) >= 0;
  }

  contains(addr: IPAddr): boolean {
    return addr.family === 4 ? this.containsV4(Number(addr.value)) : this.containsV6(addr.value);
  }

  /** True when some address of `prefix` is in the set. */
  overlapsPrefix(prefix: IPPrefix): boolean {
    return this.overlapsRange(prefix.addr.family, prefixFirst(prefix), prefixLast(prefix));
  }

  overlapsRange(family: 4 | 6, first: bigint, last: bigint): boolean {
    if (family === 4) {
      const lo = Number(first);
      const hi = Number(last);
      const r = this.#v4;
      const i = lowerBoundV4(r, lo);
      // The run starting at or before lo may extend into [lo, hi].
      if (i > 0 && r[i - 1]! >= lo) return true;
      return i < r.length && r[i]! <= hi;
    }
    const r = this.#v6;
    const i = lowerBoundV6(r, first);
    if (i > 0 && r[i - 1]! >= first) return true;
    return i < r.length && r[i]! <= last;
  }

  /** True when every address of `prefix` is in the set. */
  coversPrefix(prefix: IPPrefix): boolean {
    return this.coversRange(prefix.addr.family, prefixFirst(prefix), prefixLast(prefix));
  }

  coversRange(family: 4 | 6, first: bigint, last: bigint): boolean {
    if (family === 4) {
      const i = indexOfV4(this.#v4, Number(first));
      return i >= 0 && this.#v4[i + 1]! >= Number(last);
    }
    const i = indexOfV6(this.#v6, first);
    return i >= 0 && this.#v6[i + 1]! >= last;
  }

  overlaps(other: IPSet): boolean {
    return overlapV4(this.#v4, other.#v4) || overlapV6(this.#v6, other.#v6);
  }

  /** True when `other` is a subset of this set. */
  covers(other: IPSet): boolean {
    return other.difference(this).isEmpty();
  }

  union(other: IPSet): IPSet {
    if (other.isEmpty()) return this;
    if (this.isEmpty()) return other;
    return IPSet.fromNormalised(mergeV4(this.#v4, other.#v4), mergeV6(this.#v6, other.#v6));
  }

  intersect(other: IPSet): IPSet {
    return IPSet.fromNormalised(intersectV4(this.#v4, other.#v4), intersectV6(this.#v6, other.#v6));
  }

  difference(other: IPSet): IPSet {
    if (other.isEmpty() || this.isEmpty()) return this;
    return IPSet.fromNormalised(differenceV4(this.#v4, other.#v4), differenceV6(this.#v6, other.#v6));
  }

  ranges(): IPRange[] {
    const out: IPRange[] = [];
    for (let i = 0; i < this.#v4.length; i += 2) {
      out.push({ family: 4, first: BigInt(this.#v4[i]!), last: BigInt(this.#v4[i + 1]!) });
    }
    for (let i = 0; i < this.#v6.length; i += 2) out.push({ family: 6, first: this.#v6[i]!, last: this.#v6[i + 1]! });
    return out;
  }

  /** The minimal list of CIDR prefixes whose union is the set (netipx IPSet.Prefixes order). */
  prefixes(): IPPrefix[] {
    const out: IPPrefix[] = [];
    for (const range of this.ranges()) rangeToPrefixes(range.family, range.first, range.last, out);
    return out;
  }

  /**
   * The set as Tailscale writes it: per run, a bare address, an exact CIDR, or `first-last`;
   * IPv4 runs first, each family in address order.
   */
  toStrings(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.#v4.length; i += 2) out.push(formatRangeV4(this.#v4[i]!, this.#v4[i + 1]!));
    for (let i = 0; i < this.#v6.length; i += 2) out.push(formatRange(6, this.#v6[i]!, this.#v6[i + 1]!));
    return out;
  }

  toString(): string {
    return this.toStrings().join(', ');
  }
}

/**
 * Collects addresses, prefixes and ranges in any order and produces a normalised IPSet.
 * Single addresses are kept apart from runs so that the bulk case sorts typed arrays.
 */
export class IPSetBuilder {
  #v4Singles: number[] = [];
  #v4Runs: number[] = [];
  #v6Singles: bigint[] = [];
  #v6Runs: bigint[] = [];

  addV4(value: number): this {
    this.#v4Singles.push(value);
    return this;
  }

  addV4Range(first: number, last: number): this {
    if (first === last) this.#v4Singles.push(first);
    else if (first < last) this.#v4Runs.push(first, last);
    return this;
  }

  addV6(value: bigint): this {
    this.#v6Singles.push(value);
    return this;
  }

  addV6Range(first: bigint, last: bigint): this {
    if (first === last) this.#v6Singles.push(first);
    else if (first < last) this.#v6Runs.push(first, last);
    return this;
  }

  addAddr(addr: IPAddr): this {
    return addr.family === 4 ? this.addV4(Number(addr.value)) : this.addV6(addr.value);
  }

  addPrefix(prefix: IPPrefix): this {
    return this.addRange(prefix.addr.family, prefixFirst(prefix), prefixLast(prefix));
  }

  addRange(family: 4 | 6, first: bigint, last: bigint): this {
    return family === 4 ? this.addV4Range(Number(first), Number(last)) : this.addV6Range(first, last);
  }

  addSet(set: IPSet): this {
    const r4 = set.v4Ranges;
    for (let i = 0; i < r4.length; i += 2) this.addV4Range(r4[i]!, r4[i + 1]!);
    const r6 = set.v6Ranges;
    for (let i = 0; i < r6.length; i += 2) this.addV6Range(r6[i]!, r6[i + 1]!);
    return this;
  }

  /** Adds an address, a CIDR (host bits masked) or `first-last`; false when the text is none of these. */
  tryAddText(text: string): boolean {
    const dash = text.indexOf('-');
    if (dash > 0) {
      const first = tryParseIP(text.slice(0, dash));
      const last = tryParseIP(text.slice(dash + 1));
      if (first === null || last === null || first.family !== last.family || first.value > last.value) return false;
      this.addRange(first.family, first.value, last.value);
      return true;
    }
    if (text.includes('/')) {
      const prefix = tryParsePrefix(text);
      if (prefix === null) return false;
      this.addPrefix(prefix);
      return true;
    }
    const addr = tryParseIP(text);
    if (addr === null) return false;
    this.addAddr(addr);
    return true;
  }

  build(): IPSet {
    return IPSet.fromNormalised(this.#buildV4(), this.#buildV6());
  }

  #buildV4(): number[] {
    const singles = Float64Array.from(this.#v4Singles).sort();
    const runs = this.#v4Runs;
    let runPairs: Array<[number, number]> = [];
    for (let i = 0; i < runs.length; i += 2) runPairs.push([runs[i]!, runs[i + 1]!]);
    runPairs = runPairs.sort((a, b) => a[0] - b[0]);
    const out: number[] = [];
    let si = 0;
    let ri = 0;
    while (si < singles.length || ri < runPairs.length) {
      let lo: number;
      let hi: number;
      if (ri >= runPairs.length || (si < singles.length && singles[si]! <= runPairs[ri]![0])) {
        lo = singles[si]!;
        hi = lo;
        si++;
      } else {
        [lo, hi] = runPairs[ri]!;
        ri++;
      }
      const n = out.length;
      // Merge overlapping or adjacent runs.
      if (n > 0 && lo <= out[n - 1]! + 1) {
        if (hi > out[n - 1]!) out[n - 1] = hi;
      } else {
        out.push(lo, hi);
      }
    }
    return out;
  }

  #buildV6(): bigint[] {
    const singles = sortV6(this.#v6Singles);
    const runs = this.#v6Runs;
    const runPairs: Array<[bigint, bigint]> = [];
    for (let i = 0; i < runs.length; i += 2) runPairs.push([runs[i]!, runs[i + 1]!]);
    runPairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const out: bigint[] = [];
    let si = 0;
    let ri = 0;
    while (si < singles.length || ri < runPairs.length) {
      let lo: bigint;
      let hi: bigint;
      if (ri >= runPairs.length || (si < singles.length && singles[si]! <= runPairs[ri]![0])) {
        lo = singles[si]!;
        hi = lo;
        si++;
      } else {
        [lo, hi] = runPairs[ri]!;
        ri++;
      }
      const n = out.length;
      if (n > 0 && lo <= out[n - 1]! + 1n) {
        if (hi > out[n - 1]!) out[n - 1] = hi;
      } else {
        out.push(lo, hi);
      }
    }
    return out;
  }
}

/**
 * Sorts IPv6 values by grouping on the upper 64 bits and sorting the lower halves natively;
 * Tailscale addresses share their upper half, so this is one typed-array sort.
 */
function sortV6(values: bigint[]): bigint[] {
  if (values.length < 2) return values.slice();
  const groups = new Map<bigint, bigint[]>();
  for (const value of values) {
    const hi = value >> 64n;
    let group = groups.get(hi);
    if (group === undefined) groups.set(hi, (group = []));
    group.push(value & LOW64);
  }
  const his = [...groups.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: bigint[] = [];
  for (const hi of his) {
    const lows = BigUint64Array.from(groups.get(hi)!).sort();
    const base = hi << 64n;
    for (const low of lows) out.push(base | low);
  }
  return out;
}

// --- binary searches over flat run arrays ---------------------------------------------------

/** Index (even) of the first run whose first address is >= value. */
function lowerBoundV4(runs: readonly number[], value: number): number {
  let lo = 0;
  let hi = runs.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (runs[mid * 2]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo * 2;
}

function lowerBoundV6(runs: readonly bigint[], value: bigint): number {
  let lo = 0;
  let hi = runs.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (runs[mid * 2]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo * 2;
}

/** Index (even) of the run containing value, or -1. */
function indexOfV4(runs: readonly number[], value: number): number {
  const i = lowerBoundV4(runs, value + 1) - 2;
  return i >= 0 && runs[i + 1]! >= value ? i : -1;
}

function indexOfV6(runs: readonly bigint[], value: bigint): number {
  const i = lowerBoundV6(runs, value + 1n) - 2;
  return i >= 0 && runs[i + 1]! >= value ? i : -1;
}

// --- linear set algebra over normalised run arrays -----------------------------------------

function mergeV4(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let lo: number;
    let hi: number;
    if (j >= b.length || (i < a.length && a[i]! <= b[j]!)) {
      lo = a[i]!;
      hi = a[i + 1]!;
      i += 2;
    } else {
      lo = b[j]!;
      hi = b[j + 1]!;
      j += 2;
    }
    const n = out.length;
    if (n > 0 && lo <= out[n - 1]! + 1) {
      if (hi > out[n - 1]!) out[n - 1] = hi;
    } else out.push(lo, hi);
  }
  return out;
}

function mergeV6(a: readonly bigint[], b: readonly bigint[]): bigint[] {
  if (b.length === 0) return a.slice();
  if (a.length === 0) return b.slice();
  const out: bigint[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let lo: bigint;
    let hi: bigint;
    if (j >= b.length || (i < a.length && a[i]! <= b[j]!)) {
      lo = a[i]!;
      hi = a[i + 1]!;
      i += 2;
    } else {
      lo = b[j]!;
      hi = b[j + 1]!;
      j += 2;
    }
    const n = out.length;
    if (n > 0 && lo <= out[n - 1]! + 1n) {
      if (hi > out[n - 1]!) out[n - 1] = hi;
    } else out.push(lo, hi);
  }
  return out;
}

function intersectV4(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const lo = Math.max(a[i]!, b[j]!);
    const hi = Math.min(a[i + 1]!, b[j + 1]!);
    if (lo <= hi) out.push(lo, hi);
    if (a[i + 1]! < b[j + 1]!) i += 2;
    else j += 2;
  }
  return out;
}

function intersectV6(a: readonly bigint[], b: readonly bigint[]): bigint[] {
  const out: bigint[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const lo = a[i]! > b[j]! ? a[i]! : b[j]!;
    const hi = a[i + 1]! < b[j + 1]! ? a[i + 1]! : b[j + 1]!;
    if (lo <= hi) out.push(lo, hi);
    if (a[i + 1]! < b[j + 1]!) i += 2;
    else j += 2;
  }
  return out;
}

function differenceV4(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < a.length; i += 2) {
    let lo = a[i]!;
    const hi = a[i + 1]!;
    while (j < b.length && b[j + 1]! < lo) j += 2;
    let k = j;
    while (k < b.length && b[k]! <= hi) {
      if (b[k]! > lo) out.push(lo, b[k]! - 1);
      lo = Math.max(lo, b[k + 1]! + 1);
      k += 2;
    }
    if (lo <= hi) out.push(lo, hi);
  }
  return out;
}

function differenceV6(a: readonly bigint[], b: readonly bigint[]): bigint[] {
  const out: bigint[] = [];
  let j = 0;
  for (let i = 0; i < a.length; i += 2) {
    let lo = a[i]!;
    const hi = a[i + 1]!;
    while (j < b.length && b[j + 1]! < lo) j += 2;
    let k = j;
    while (k < b.length && b[k]! <= hi) {
      if (b[k]! > lo) out.push(lo, b[k]! - 1n);
      const next = b[k + 1]! + 1n;
      if (next > lo) lo = next;
      k += 2;
    }
    if (lo <= hi) out.push(lo, hi);
  }
  return out;
}

function overlapV4(a: readonly number[], b: readonly number[]): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i]! <= b[j + 1]! && b[j]! <= a[i + 1]!) return true;
    if (a[i + 1]! < b[j + 1]!) i += 2;
    else j += 2;
  }
  return false;
}

function overlapV6(a: readonly bigint[], b: readonly bigint[]): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i]! <= b[j + 1]! && b[j]! <= a[i + 1]!) return true;
    if (a[i + 1]! < b[j + 1]!) i += 2;
    else j += 2;
  }
  return false;
}

// --- text ------------------------------------------------------------------------------------

/** The prefix length when [first, last] is exactly one CIDR, else -1. */
export function rangePrefixBits(family: 4 | 6, first: bigint, last: bigint): number {
  const size = last - first + 1n;
  if (size <= 0n || (size & (size - 1n)) !== 0n || (first & (size - 1n)) !== 0n) return -1;
  let hostBits = 0;
  while (1n << BigInt(hostBits) < size) hostBits++;
  return familyBits(family) - hostBits;
}

function formatRangeV4(first: number, last: number): string {
  if (first === last) return formatV4(first);
  const size = last - first + 1;
  // Sizes are exact doubles; log2 of a power of two is an exact integer.
  const log = Math.log2(size);
  if (Number.isInteger(log) && first % size === 0) return `${formatV4(first)}/${32 - log}`;
  return `${formatV4(first)}-${formatV4(last)}`;
}

function formatRange(family: 4 | 6, first: bigint, last: bigint): string {
  const a = formatIP({ family, value: first });
  if (first === last) return a;
  const bits = rangePrefixBits(family, first, last);
  if (bits >= 0) return `${a}/${bits}`;
  return `${a}-${formatIP({ family, value: last })}`;
}

function formatV4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function rangeToPrefixes(family: 4 | 6, first: bigint, last: bigint, out: IPPrefix[]): void {
  const total = familyBits(family);
  let lo = first;
  while (lo <= last) {
    // Largest aligned block starting at lo that does not pass last.
    let hostBits = 0;
    while (hostBits < total) {
      const size = 1n << BigInt(hostBits + 1);
      if ((lo & (size - 1n)) !== 0n || lo + size - 1n > last) break;
      hostBits++;
    }
    out.push({ addr: { family, value: lo }, bits: total - hostBits });
    lo += 1n << BigInt(hostBits);
    if (family === 4 && lo > BigInt(V4_MAX)) break;
    if (family === 6 && lo > V6_MAX) break;
  }
}

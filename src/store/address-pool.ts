// The usable addresses of one configured prefix: the prefix minus the addresses Tailscale gives
// a meaning (protocol.md §12) and, for IPv4, the network and broadcast addresses. Pure arithmetic;
// address-allocator.ts asks the database which of them are taken.
import { randomBytes } from 'node:crypto';
import {
  familyBits, formatIP, formatPrefix, parsePrefix, prefixFirst, prefixLast, tryParseIP,
  type IPFamily, type IPPrefix,
} from '../util/ip.js';

interface Range {
  readonly from: bigint;
  readonly to: bigint;
}

/** Ranges inside Tailscale's address space that clients treat specially. */
const RESERVED_BY_FAMILY: Readonly<Record<IPFamily, readonly string[]>> = {
  4: [
    '100.100.100.0/24', // quad-100: 100.100.100.100 is the in-client DNS and services address
    '100.115.92.0/23', // ChromeOS VMs; Tailscale never assigns it
  ],
  6: [
    'fd7a:115c:a1e0::53/128', // quad-100 over IPv6
    'fd7a:115c:a1e0:b1a::/64', // 4via6 subnet routes
    'fd7a:115c:a1e0:ab12:4843:cd96:6200::/104', // IPv4-mapped Tailscale addresses
    'fd7a:115c:a1e0:efe3::/64', // reserved by Tailscale for services
  ],
};

export class AddressPool {
  readonly family: IPFamily;
  readonly prefix: IPPrefix;
  readonly first: bigint;
  readonly last: bigint;
  /** Sorted, merged, clipped to [first, last]. */
  readonly reserved: readonly Range[];
  /** How many addresses can be handed out. */
  readonly capacity: bigint;

  constructor(prefixText: string) {
    this.prefix = parsePrefix(prefixText);
    this.family = this.prefix.addr.family;
    this.first = prefixFirst(this.prefix);
    this.last = prefixLast(this.prefix);
    const ranges: Range[] = RESERVED_BY_FAMILY[this.family].map((text) => {
      const reserved = parsePrefix(text);
      return { from: prefixFirst(reserved), to: prefixLast(reserved) };
    });
    const hostBits = familyBits(this.family) - this.prefix.bits;
    // IPv4 network and broadcast addresses, except in /31 and /32 where every address is a host
    // (RFC 3021). IPv6 has no broadcast, but its first address is the subnet-router anycast.
    if (this.family === 4 && hostBits >= 2) {
      ranges.push({ from: this.first, to: this.first }, { from: this.last, to: this.last });
    } else if (this.family === 6 && hostBits >= 1) {
      ranges.push({ from: this.first, to: this.first });
    }
    this.reserved = mergeRanges(ranges, this.first, this.last);
    const reservedCount = this.reserved.reduce((sum, range) => sum + (range.to - range.from + 1n), 0n);
    this.capacity = this.last - this.first + 1n - reservedCount;
  }

  get text(): string {
    return formatPrefix(this.prefix);
  }

  contains(value: bigint): boolean {
    return value >= this.first && value <= this.last;
  }

  isUsable(value: bigint): boolean {
    return this.contains(value) && this.#reservedRangeAt(value) === undefined;
  }

  /** The first usable address at or after `value`, wrapping past the end. Needs capacity > 0. */
  nextUsable(value: bigint): bigint {
    let candidate = this.contains(value) ? value : this.first;
    for (;;) {
      const range = this.#reservedRangeAt(candidate);
      if (range === undefined) return candidate;
      candidate = range.to + 1n;
      if (candidate > this.last) candidate = this.first;
    }
  }

  /** A uniformly random address of the prefix, moved to the next usable one if reserved. */
  randomUsable(): bigint {
    const hostBits = familyBits(this.family) - this.prefix.bits;
    const bytes = randomBytes(Math.ceil(hostBits / 8) || 1);
    let offset = 0n;
    for (const byte of bytes) offset = (offset << 8n) | BigInt(byte);
    offset &= (1n << BigInt(hostBits)) - 1n;
    return this.nextUsable(this.first + offset);
  }

  format(value: bigint): string {
    return formatIP({ family: this.family, value });
  }

  /** The value of an address text of this pool's family, or undefined. */
  parse(text: string): bigint | undefined {
    const addr = tryParseIP(text);
    return addr !== null && addr.family === this.family ? addr.value : undefined;
  }

  #reservedRangeAt(value: bigint): Range | undefined {
    // A handful of ranges: a linear scan beats anything cleverer.
    for (const range of this.reserved) {
      if (value < range.from) return undefined;
      if (value <= range.to) return range;
    }
    return undefined;
  }
}

function mergeRanges(ranges: readonly Range[], first: bigint, last: bigint): Range[] {
  const clipped = ranges
    .filter((range) => range.to >= first && range.from <= last)
    .map((range) => ({ from: range.from < first ? first : range.from, to: range.to > last ? last : range.to }))
    .sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  const merged: Range[] = [];
  for (const range of clipped) {
    const previous = merged[merged.length - 1];
    if (previous !== undefined && range.from <= previous.to + 1n) {
      merged[merged.length - 1] = { from: previous.from, to: range.to > previous.to ? range.to : previous.to };
    } else {
      merged.push(range);
    }
  }
  return merged;
}

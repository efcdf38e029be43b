// IP addresses and prefixes as Go's net/netip parses and prints them. An address is its family
// plus its value as a bigint, so v4 and v6 share one arithmetic; v4 values fit in 32 bits.

export type IPFamily = 4 | 6;

export interface IPAddr {
  readonly family: IPFamily;
  readonly value: bigint;
}

export interface IPPrefix {
  readonly addr: IPAddr;
  readonly bits: number;
}

export class IPParseError extends Error {
  override name = 'IPParseError';
}

export const V4_BITS = 32;
export const V6_BITS = 128;
const V4_MAX = (1n << 32n) - 1n;
const V6_MAX = (1n << 128n) - 1n;

export function familyBits(family: IPFamily): number {
  return family === 4 ? V4_BITS : V6_BITS;
}

export function familyMax(family: IPFamily): bigint {
  return family === 4 ? V4_MAX : V6_MAX;
}

function parseV4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    // netip rejects leading zeros ("01") and empty octets.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseV6(text: string): bigint | null {
  if (text.includes('%')) return null; // zones never appear in our data
  let head = text;
  let tailV4: bigint | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const doubleColon = head.indexOf('::');
  if (doubleColon !== -1 && head.indexOf('::', doubleColon + 1) !== -1) return null;
  let groups: string[];
  if (doubleColon !== -1) {
    const left = head.slice(0, doubleColon);
    const right = head.slice(doubleColon + 2);
    const leftGroups = left === '' ? [] : left.split(':');
    const rightGroups = right === '' ? [] : right.split(':');
    const missing = 8 - leftGroups.length - rightGroups.length;
    if (missing < 1) return null;
    groups = [...leftGroups, ...Array<string>(missing).fill('0'), ...rightGroups];
  } else {
    groups = head.split(':');
  }
  if (groups.length !== 8) return null;
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  if (tailV4 !== null) value = (value & ~V4_MAX) | tailV4;
  return value;
}

export function tryParseIP(text: string): IPAddr | null {
  if (text.includes(':')) {
    const value = parseV6(text);
    return value === null ? null : { family: 6, value };
  }
  const value = parseV4(text);
  return value === null ? null : { family: 4, value };
}

export function parseIP(text: string): IPAddr {
  const addr = tryParseIP(text);
  if (addr === null) throw new IPParseError(`${JSON.stringify(text)} is not an IP address`);
  return addr;
}

export function formatIP(addr: IPAddr): string {
  return addr.family === 4 ? formatV4(addr.value) : formatV6(addr.value);
}

function formatV4(value: bigint): string {
  const n = Number(value);
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

// RFC 5952, as Go prints it: lower-case, the longest run (>= 2) of zero groups as "::",
// the first such run on a tie; IPv4-mapped addresses keep a dotted tail.
function formatV6(value: bigint): string {
  if (value >> 32n === 0xffffn) return `::ffff:${formatV4(value & V4_MAX)}`;
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(':');
  if (bestStart === -1) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function ipEqual(a: IPAddr, b: IPAddr): boolean {
  return a.family === b.family && a.value === b.value;
}

export function compareIP(a: IPAddr, b: IPAddr): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/**
 * Parses `addr/bits`. With `strict` (the client's rule for FilterRule CIDRs and ours for
 * config), host bits must be zero; otherwise they are masked off as netip's Masked() does.
 */
export function tryParsePrefix(text: string, options: { strict?: boolean } = {}): IPPrefix | null {
  const slash = text.indexOf('/');
  if (slash === -1) return null;
  const addr = tryParseIP(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (addr === null || !/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return null;
  const bits = Number(bitsText);
  if (bits > familyBits(addr.family)) return null;
  const masked = maskValue(addr.family, addr.value, bits);
  if (options.strict && masked !== addr.value) return null;
  return { addr: { family: addr.family, value: masked }, bits };
}

export function parsePrefix(text: string, options: { strict?: boolean } = {}): IPPrefix {
  const prefix = tryParsePrefix(text, options);
  if (prefix !== null) return prefix;
  const slash = text.indexOf('/');
  if (slash === -1) throw new IPParseError(`${JSON.stringify(text)} is not a prefix (want address/length)`);
  const addr = tryParseIP(text.slice(0, slash));
  if (addr === null) throw new IPParseError(`${JSON.stringify(text)} is not a prefix: bad address`);
  const bitsText = text.slice(slash + 1);
  const bits = Number(bitsText);
  const max = familyBits(addr.family);
  // Number('') and Number(' 8') are numbers too: only digits are a length.
  if (!/^[0-9]+$/.test(bitsText) || bits > max) {
    throw new IPParseError(`${JSON.stringify(text)} is not a prefix (length must be 0-${max})`);
  }
  const masked = tryParsePrefix(text);
  if (masked === null) throw new IPParseError(`${JSON.stringify(text)} is not a prefix (want address/length)`);
  throw new IPParseError(`${JSON.stringify(text)} has host bits set (want ${formatPrefix(masked)})`);
}

export function formatPrefix(prefix: IPPrefix): string {
  return `${formatIP(prefix.addr)}/${prefix.bits}`;
}

/** The single-address prefix: /32 or /128. */
export function hostPrefix(addr: IPAddr): IPPrefix {
  return { addr, bits: familyBits(addr.family) };
}

function maskValue(family: IPFamily, value: bigint, bits: number): bigint {
  const total = familyBits(family);
  const hostBits = BigInt(total - bits);
  return (value >> hostBits) << hostBits;
}

export function prefixFirst(prefix: IPPrefix): bigint {
  return prefix.addr.value;
}

export function prefixLast(prefix: IPPrefix): bigint {
  const hostBits = BigInt(familyBits(prefix.addr.family) - prefix.bits);
  return prefix.addr.value | ((1n << hostBits) - 1n);
}

export function prefixContains(prefix: IPPrefix, addr: IPAddr): boolean {
  return prefix.addr.family === addr.family && addr.value >= prefixFirst(prefix) && addr.value <= prefixLast(prefix);
}

export function prefixesOverlap(a: IPPrefix, b: IPPrefix): boolean {
  return a.addr.family === b.addr.family && prefixFirst(a) <= prefixLast(b) && prefixFirst(b) <= prefixLast(a);
}

/** True when `inner` lies entirely inside `outer`. */
export function prefixCovers(outer: IPPrefix, inner: IPPrefix): boolean {
  return outer.addr.family === inner.addr.family && outer.bits <= inner.bits && prefixContains(outer, inner.addr);
}

export function isExitRoute(prefix: IPPrefix): boolean {
  return prefix.bits === 0;
}

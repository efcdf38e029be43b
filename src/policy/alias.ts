// The selectors a policy writes in src, dst, target and approver lists ("aliases" in Tailscale's
// code), how each is recognised from its text, and the port and protocol syntax of destinations.
import { type IPPrefix, formatIP, formatPrefix, hostPrefix, tryParseIP, tryParsePrefix } from '../util/ip.js';

/** Autogroups Tailscale defines. Which are allowed where is decided by validate.ts. */
export const AUTOGROUPS = [
  'member',
  'tagged',
  'self',
  'internet',
  'danger-all',
  'nonroot',
  'admin',
  'owner',
  'it-admin',
  'network-admin',
  'billing-admin',
  'auditor',
  'shared',
] as const;
export type AutogroupName = (typeof AUTOGROUPS)[number];

/** Autogroups that select the devices of users holding a role. */
export const ROLE_AUTOGROUPS: ReadonlySet<string> = new Set(['admin', 'owner', 'it-admin', 'network-admin', 'billing-admin', 'auditor']);

export type Alias =
  | { readonly kind: 'wildcard' }
  /** `alice@example.com`, or `alice@` for a user without a domain. */
  | { readonly kind: 'user'; readonly login: string }
  /** `user:*@example.com`: every user whose login is in that domain. */
  | { readonly kind: 'userDomain'; readonly domain: string }
  | { readonly kind: 'group'; readonly name: string }
  | { readonly kind: 'tag'; readonly name: string }
  | { readonly kind: 'autogroup'; readonly name: string }
  /** A name from `hosts`; resolved to its prefix by compile. */
  | { readonly kind: 'host'; readonly name: string }
  | { readonly kind: 'ipset'; readonly name: string }
  /** A literal address or CIDR. `text` keeps what was written (Tailscale echoes it in DstPorts). */
  | { readonly kind: 'prefix'; readonly prefix: IPPrefix; readonly single: boolean };

export type AliasParse = { ok: true; alias: Alias } | { ok: false; reason: 'invalid address' };

/**
 * Recognises a selector by its shape. Names that are none of the prefixed kinds and not an
 * address are host names; whether the host exists is checked later.
 */
export function parseAlias(text: string): AliasParse {
  if (text === '*') return ok({ kind: 'wildcard' });
  if (text.startsWith('autogroup:')) return ok({ kind: 'autogroup', name: text.slice('autogroup:'.length) });
  if (text.startsWith('group:')) return ok({ kind: 'group', name: text });
  if (text.startsWith('tag:')) return ok({ kind: 'tag', name: text });
  if (text.startsWith('ipset:')) return ok({ kind: 'ipset', name: text });
  if (text.startsWith('user:*@')) return ok({ kind: 'userDomain', domain: text.slice('user:*@'.length) });
  if (text.includes('@')) return ok({ kind: 'user', login: text });
  const prefix = parseAddressOrPrefix(text);
  if (prefix !== null) return ok({ kind: 'prefix', prefix: prefix.prefix, single: prefix.single });
  if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(text)) return ok({ kind: 'host', name: text });
  return { ok: false, reason: 'invalid address' };
}

function ok(alias: Alias): AliasParse {
  return { ok: true, alias };
}

/** An address (as a /32 or /128) or a CIDR with host bits masked off. */
export function parseAddressOrPrefix(text: string): { prefix: IPPrefix; single: boolean } | null {
  if (text.includes('/')) {
    const prefix = tryParsePrefix(text);
    return prefix === null ? null : { prefix, single: false };
  }
  const addr = tryParseIP(text);
  return addr === null ? null : { prefix: hostPrefix(addr), single: true };
}

export function aliasText(alias: Alias): string {
  switch (alias.kind) {
    case 'wildcard':
      return '*';
    case 'user':
      return alias.login;
    case 'userDomain':
      return `user:*@${alias.domain}`;
    case 'group':
    case 'tag':
    case 'ipset':
    case 'host':
      return alias.name;
    case 'autogroup':
      return `autogroup:${alias.name}`;
    case 'prefix':
      return alias.single ? formatIP(alias.prefix.addr) : formatPrefix(alias.prefix);
  }
}

// --- ports and protocols --------------------------------------------------------------------

export interface PortRange {
  readonly first: number;
  readonly last: number;
}

export const ALL_PORTS: PortRange = { first: 0, last: 65535 };

/**
 * Parses `*`, `22`, `80-443` or a comma list of those. Errors use the service's wording
 * (`port range "ssh": invalid first integer`).
 */
export function parsePorts(text: string): { ok: true; ports: PortRange[] } | { ok: false; message: string } {
  if (text === '*') return { ok: true, ports: [ALL_PORTS] };
  const ports: PortRange[] = [];
  for (const part of text.split(',')) {
    const dash = part.indexOf('-');
    const firstText = dash === -1 ? part : part.slice(0, dash);
    const lastText = dash === -1 ? part : part.slice(dash + 1);
    const first = parsePortNumber(firstText);
    if (first === null) return { ok: false, message: `port range ${JSON.stringify(part)}: invalid first integer` };
    const last = parsePortNumber(lastText);
    if (last === null) return { ok: false, message: `port range ${JSON.stringify(part)}: invalid last integer` };
    if (first === 0) {
      return { ok: false, message: `port range ${JSON.stringify(part)}: first port must be >0, or use '*' for wildcard` };
    }
    if (last < first) return { ok: false, message: `port range ${JSON.stringify(part)}: last port must be >= first port` };
    ports.push({ first, last });
  }
  return { ok: true, ports };
}

function parsePortNumber(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}

/** IANA protocol names Tailscale accepts in `proto` and grant `ip` entries. */
const PROTOCOL_NAMES: Readonly<Record<string, number>> = {
  icmp: 1,
  igmp: 2,
  ipv4: 4,
  'ip-in-ip': 4,
  tcp: 6,
  egp: 8,
  igp: 9,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  'ipv6-icmp': 58,
  sctp: 132,
  fc: 133,
};

/** Protocols whose packets carry ports, so a rule for them may name ports. */
const PORTED_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 132]);

export function protocolAllowsPorts(proto: number): boolean {
  return PORTED_PROTOCOLS.has(proto);
}

/** A protocol by name (case-insensitive) or decimal number 1-255 without leading zeros. */
export function parseProtocol(text: string): number | null {
  const named = PROTOCOL_NAMES[text.toLowerCase()];
  if (named !== undefined) return named;
  if (/^[1-9][0-9]{0,2}$/.test(text)) {
    const n = Number(text);
    if (n <= 255) return n;
  }
  return null;
}

/** Why a protocol text is not accepted, in the wording the service uses. */
export function protocolError(text: string): string {
  if (text === '*') return 'proto name "*" not known; use protocol number 0-255 or protocol name (icmp, tcp, udp, etc.)';
  if (/^[0-9]+$/.test(text)) {
    if (text.startsWith('0')) return `leading 0 not permitted in protocol number: ${JSON.stringify(text)}`;
    return `protocol number out of range (0-255): ${text}`;
  }
  return `invalid protocol number: ${JSON.stringify(text)} must be a known protocol name or valid protocol number 0-255`;
}

/**
 * Splits an ACL destination `host:ports` at its last colon; `[v6addr]:ports` and
 * `[v6addr]/len:ports` are accepted too. Returns null when there is no colon at all.
 */
export function splitHostPorts(text: string): { host: string; ports: string } | null {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close > 0) {
      const rest = text.slice(close + 1);
      let host = text.slice(1, close);
      let after = rest;
      const lenMatch = /^(\/[0-9]+)(:.*)$/.exec(rest);
      if (lenMatch !== null) {
        host += lenMatch[1];
        after = lenMatch[2]!;
      }
      if (after.startsWith(':')) return { host, ports: after.slice(1) };
    }
  }
  const colon = text.lastIndexOf(':');
  if (colon === -1) return null;
  return { host: text.slice(0, colon), ports: text.slice(colon + 1) };
}

// Node, user and identity-class records: the tailnet facts bound to a compiled policy.
//
// An identity class is the set of nodes that match exactly the same policy atoms (users,
// groups, tags, autogroups, literal prefixes they sit in) and serve the same routes: for the
// policy they are interchangeable, so filters, visibility and attributes are computed once per
// class. Per-node data (own addresses, owner for autogroup:self, registration order) stays on
// the node record.
import { type IPPrefix, formatIP, parseIP, parsePrefix, formatPrefix, isExitRoute } from '../../util/ip.js';
import { IPSet, IPSetBuilder } from '../../util/ip-set.js';
import type { Atom, AtomSpec } from '../compile.js';
import type { NodeFacts, UserFacts, UserRole } from '../facts.js';

export interface UserRec {
  readonly id: number;
  name: string;
  email: string;
  role: UserRole;
  /** Synced groups (`name@domain`, lower case) from the identity provider and SCIM. */
  groups: readonly string[];
  /** Untagged nodes owned by this user, in node order. */
  readonly nodes: NodeRec[];
  /** Atom ids of user-kind atoms this user matches. */
  atoms: number[];
}

export interface NodeRec {
  readonly index: number;
  /** Replaced in place only for changes the policy ignores (online). */
  facts: NodeFacts;
  readonly id: number;
  readonly name: string;
  /** Owner for policy purposes: null when tagged. */
  readonly user: UserRec | null;
  readonly tagged: boolean;
  readonly tags: readonly string[];
  /** IPv4 as an unsigned 32-bit number, -1 when none. */
  readonly v4: number;
  /** IPv6 as a bigint, parsed on first use (most queries only need the text). */
  readonly v6: bigint | null;
  readonly v4Text: string | null;
  readonly v6Text: string | null;
  /** Served (advertised and approved) non-exit routes, sorted canonical text. */
  readonly routes: readonly IPPrefix[];
  readonly routeTexts: readonly string[];
  /** Served exit routes (`0.0.0.0/0`, `::/0`). */
  readonly exitRoutes: readonly string[];
  readonly order: number;
  classId: number;
  /** Position in its class's node list (for O(1) removal). */
  slot: number;
}

class NodeRecord implements NodeRec {
  classId = -1;
  slot = -1;
  #v6: bigint | null | undefined = undefined;

  constructor(
    readonly index: number,
    public facts: NodeFacts,
    readonly id: number,
    readonly name: string,
    readonly user: UserRec | null,
    readonly tagged: boolean,
    readonly tags: readonly string[],
    readonly v4: number,
    readonly v4Text: string | null,
    readonly v6Text: string | null,
    readonly routes: readonly IPPrefix[],
    readonly routeTexts: readonly string[],
    readonly exitRoutes: readonly string[],
    readonly order: number,
  ) {}

  get v6(): bigint | null {
    if (this.#v6 === undefined) this.#v6 = parseV6(this.v6Text);
    return this.#v6;
  }
}

/**
 * Whether IPv6 text is already as netip prints it, checked cheaply: lower-case, no leading
 * zeros, no uncompressed run of zero groups. Text failing the check is reformatted.
 */
function looksCanonicalV6(text: string): boolean {
  let groupStart = 0;
  let zeroGroups = 0;
  let doubles = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 58;
    if (c === 58) {
      const len = i - groupStart;
      if (len === 0) {
        if (i > 0 && text.charCodeAt(i - 1) === 58) doubles++;
      } else {
        const zero = len === 1 && text.charCodeAt(groupStart) === 48;
        if (!zero && text.charCodeAt(groupStart) === 48) return false;
        zeroGroups = zero ? zeroGroups + 1 : 0;
        if (zeroGroups >= 2) return false;
      }
      groupStart = i + 1;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return doubles <= 1;
}

export interface IdentityClass {
  readonly id: number;
  readonly key: string;
  readonly atoms: readonly number[];
  /** atom id -> 1 when matched. */
  readonly atomFlags: Uint8Array;
  readonly nodes: NodeRec[];
  /**
   * The ids of `nodes`, position for position: a change's recipients are listed from these,
   * a few cache lines per class, without loading each member's record.
   */
  readonly memberIds: number[];
  readonly routes: readonly IPPrefix[];
  readonly routeTexts: readonly string[];
  readonly routeSet: IPSet;
  readonly exit: boolean;
  /** Postures (of those the policy uses) its devices meet. */
  readonly postures: ReadonlySet<string>;
  addresses: IPSet | null;
}

const ADMIN_ROLES: ReadonlySet<UserRole> = new Set(['owner', 'admin']);

/** Whether a user holds the role an autogroup names (autogroup:admin includes the owner). */
export function userHasRole(role: UserRole, autogroup: string): boolean {
  if (autogroup === 'admin') return ADMIN_ROLES.has(role);
  return role === autogroup;
}

/** Whether a user is named by a login as policies write it: `alice@example.com` or `alice@`. */
export function userMatchesLogin(user: { name: string; email: string }, login: string): boolean {
  const l = login.trim().toLowerCase();
  if (l.endsWith('@')) return user.name.toLowerCase() === l.slice(0, -1) || user.email.toLowerCase() === l;
  return user.email.toLowerCase() === l || user.name.toLowerCase() === l;
}

export function emailDomain(email: string): string {
  const at = email.lastIndexOf('@');
  return at === -1 ? '' : email.slice(at + 1).toLowerCase();
}

/** Whether an atom matches a user's untagged devices (user-kind atoms only). */
export function userAtomMatches(spec: AtomSpec, user: { name: string; email: string; role: UserRole; groups?: readonly string[] }): boolean {
  switch (spec.kind) {
    case 'users':
      return spec.logins.some((login) => userMatchesLogin(user, login));
    case 'userDomain':
      return emailDomain(user.email) === spec.domain.toLowerCase();
    case 'member':
      return true;
    case 'role':
      return userHasRole(user.role, spec.role);
    case 'syncedGroup':
      return user.groups?.includes(spec.group) ?? false;
    default:
      return false;
  }
}

export function isUserAtom(spec: AtomSpec): boolean {
  return spec.kind === 'users' || spec.kind === 'userDomain' || spec.kind === 'member' || spec.kind === 'role' || spec.kind === 'syncedGroup';
}

/** IPv4 text to an unsigned 32-bit number without going through bigint; -1 when absent. */
export function parseV4(text: string | null): number {
  if (text === null || text === '') return -1;
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || octet > 255) break;
      n = n * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      // netip rejects leading zeros ("01").
      if (digits === 1 && octet === 0) {
        digits = 99;
        break;
      }
      octet = octet * 10 + (c - 48);
      digits++;
    } else {
      digits = 99;
      break;
    }
  }
  if (dots === 3 && digits > 0 && digits <= 3 && octet <= 255) return n * 256 + octet;
  throw new Error(`${JSON.stringify(text)} is not an IPv4 address`);
}

export function parseV6(text: string | null): bigint | null {
  if (text === null || text === '') return null;
  // Fast path for plain hex groups (no embedded IPv4): one BigInt conversion of 32 hex digits.
  if (/^[0-9a-fA-F:]+$/.test(text)) {
    const dbl = text.indexOf('::');
    let groups: string[] | null = null;
    if (dbl === -1) groups = text.split(':');
    else if (text.indexOf('::', dbl + 1) === -1) {
      const left = dbl === 0 ? [] : text.slice(0, dbl).split(':');
      const right = dbl + 2 === text.length ? [] : text.slice(dbl + 2).split(':');
      const missing = 8 - left.length - right.length;
      if (missing >= 1) groups = [...left, ...new Array<string>(missing).fill('0'), ...right];
    }
    if (groups !== null && groups.length === 8 && groups.every((g) => g.length >= 1 && g.length <= 4)) {
      return BigInt(`0x${groups.map((g) => g.padStart(4, '0')).join('')}`);
    }
  }
  const addr = parseIP(text);
  if (addr.family !== 6) throw new Error(`${JSON.stringify(text)} is not an IPv6 address`);
  return addr.value;
}

/** RFC 5952 text of an IPv6 value (Go's netip form), via one hex conversion. */
export function formatV6(value: bigint): string {
  const hex = value.toString(16).padStart(32, '0');
  const groups: string[] = [];
  for (let i = 0; i < 32; i += 4) groups.push(hex.slice(i, i + 4).replace(/^0+(?=.)/, ''));
  if (groups[0] === '0' && groups[1] === '0' && groups[2] === '0' && groups[3] === '0' && groups[4] === '0' && groups[5] === 'ffff') {
    // IPv4-mapped: keep netip's dotted tail.
    return formatIP({ family: 6, value });
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

export function buildUsers(users: readonly UserFacts[]): Map<number, UserRec> {
  const out = new Map<number, UserRec>();
  for (const u of users) out.set(u.id, { id: u.id, name: u.name, email: u.email, role: u.role ?? 'member', groups: normaliseGroups(u.groups), nodes: [], atoms: [] });
  return out;
}

/** Reads one node's facts into a record (addresses parsed once, served routes computed). */
export function buildNode(index: number, facts: NodeFacts, users: ReadonlyMap<number, UserRec>): NodeRec {
  const tags = facts.tags.length === 0 ? EMPTY : facts.tags.length === 1 ? [facts.tags[0]!] : [...new Set(facts.tags)].sort();
  const tagged = tags.length > 0;
  const user = tagged || facts.userId === null ? null : (users.get(facts.userId) ?? null);
  let routes: IPPrefix[] = [];
  const exitRoutes: string[] = [];
  if (facts.approvedRoutes.length > 0) {
    const advertised = new Set(facts.advertisedRoutes.map(canonicalPrefix));
    for (const text of facts.approvedRoutes) {
      const canonical = canonicalPrefix(text);
      if (!advertised.has(canonical)) continue;
      const prefix = parsePrefix(canonical);
      if (isExitRoute(prefix)) {
        if (!exitRoutes.includes(canonical)) exitRoutes.push(canonical);
      } else routes.push(prefix);
    }
    routes = dedupePrefixes(routes.sort(comparePrefix));
    exitRoutes.sort();
  }
  const v4 = parseV4(facts.ipv4);
  const v6Input = facts.ipv6 === null || facts.ipv6 === '' ? null : facts.ipv6;
  const v6Text = v6Input === null ? null : looksCanonicalV6(v6Input) ? v6Input : formatV6(parseV6(v6Input)!);
  const node = new NodeRecord(
    index,
    facts,
    facts.id,
    facts.name,
    user,
    tagged,
    tags,
    v4,
    v4 < 0 ? null : formatV4(v4),
    v6Text,
    routes,
    routes.length === 0 ? EMPTY : routes.map(formatPrefix),
    exitRoutes,
    facts.registeredOrder ?? facts.id,
  );
  if (user !== null) user.nodes.push(node);
  return node;
}

const EMPTY: readonly string[] = Object.freeze([]) as readonly string[];

function dedupePrefixes(prefixes: IPPrefix[]): IPPrefix[] {
  const out: IPPrefix[] = [];
  for (const p of prefixes) {
    const last = out[out.length - 1];
    if (last === undefined || comparePrefix(last, p) !== 0) out.push(p);
  }
  return out;
}

export function canonicalPrefix(text: string): string {
  return formatPrefix(parsePrefix(text));
}

export function comparePrefix(a: IPPrefix, b: IPPrefix): number {
  if (a.addr.family !== b.addr.family) return a.addr.family - b.addr.family;
  if (a.addr.value !== b.addr.value) return a.addr.value < b.addr.value ? -1 : 1;
  return a.bits - b.bits;
}

function formatV4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** The set of a node's own addresses. */
export function nodeAddressSet(nodes: readonly NodeRec[]): IPSet {
  const b = new IPSetBuilder();
  for (const n of nodes) {
    if (n.v4 >= 0) b.addV4(n.v4);
    if (n.v6 !== null) b.addV6(n.v6);
  }
  return b.build();
}

/** Whether a literal atom contains one of the node's addresses. */
export function literalAtomMatches(atom: Atom, node: { v4: number; v6: bigint | null }): boolean {
  if (atom.spec.kind !== 'literal') return false;
  const set = atom.spec.set;
  return (node.v4 >= 0 && set.containsV4(node.v4)) || (node.v6 !== null && set.containsV6(node.v6));
}

/** Synced group names as the index compares them: lower case, unique. */
export function normaliseGroups(groups: readonly string[] | undefined): string[] {
  return groups === undefined ? [] : [...new Set(groups.map((g) => g.toLowerCase()))].sort();
}

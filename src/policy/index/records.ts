// Node, user and identity-class records: the tailnet facts bound to a compiled policy.
//
// An identity class is the set of nodes that match exactly the same policy atoms (users,
// groups, tags, autogroups, literal prefixes they sit in) and serve the same routes: for the
// policy they are interchangeable, so filters, visibility and attributes are computed once per
// class. Per-node data (own addresses, owner for autogroup:self, registration order) stays on
// the node record.
import { type IPPrefix, parseIP, parsePrefix, formatPrefix, isExitRoute } from '../../util/ip.js';
import { IPSet, IPSetBuilder } from '../../util/ip-set.js';
import type { Atom, AtomSpec } from '../compile.js';
import type { NodeFacts, UserFacts, UserRole } from '../facts.js';

export interface UserRec {
  readonly id: number;
  readonly name: string;
  readonly email: string;
  readonly role: UserRole;
  /** Untagged nodes owned by this user, in node order. */
  readonly nodes: NodeRec[];
  /** Atom ids of user-kind atoms this user matches. */
  atoms: number[];
}

export interface NodeRec {
  readonly index: number;
  readonly facts: NodeFacts;
  readonly id: number;
  readonly name: string;
  /** Owner for policy purposes: null when tagged. */
  readonly user: UserRec | null;
  readonly tagged: boolean;
  readonly tags: readonly string[];
  /** IPv4 as an unsigned 32-bit number, -1 when none. */
  readonly v4: number;
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
}

export interface IdentityClass {
  readonly id: number;
  readonly key: string;
  readonly atoms: readonly number[];
  /** atom id -> 1 when matched. */
  readonly atomFlags: Uint8Array;
  readonly nodes: NodeRec[];
  readonly routes: readonly IPPrefix[];
  readonly routeTexts: readonly string[];
  readonly routeSet: IPSet;
  readonly exit: boolean;
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
export function userAtomMatches(spec: AtomSpec, user: { name: string; email: string; role: UserRole }): boolean {
  switch (spec.kind) {
    case 'users':
      return spec.logins.some((login) => userMatchesLogin(user, login));
    case 'userDomain':
      return emailDomain(user.email) === spec.domain.toLowerCase();
    case 'member':
      return true;
    case 'role':
      return userHasRole(user.role, spec.role);
    default:
      return false;
  }
}

export function isUserAtom(spec: AtomSpec): boolean {
  return spec.kind === 'users' || spec.kind === 'userDomain' || spec.kind === 'member' || spec.kind === 'role';
}

export function parseV4(text: string | null): number {
  if (text === null || text === '') return -1;
  const addr = parseIP(text);
  if (addr.family !== 4) throw new Error(`${JSON.stringify(text)} is not an IPv4 address`);
  return Number(addr.value);
}

export function parseV6(text: string | null): bigint | null {
  if (text === null || text === '') return null;
  const addr = parseIP(text);
  if (addr.family !== 6) throw new Error(`${JSON.stringify(text)} is not an IPv6 address`);
  return addr.value;
}

export function buildUsers(users: readonly UserFacts[]): Map<number, UserRec> {
  const out = new Map<number, UserRec>();
  for (const u of users) out.set(u.id, { id: u.id, name: u.name, email: u.email, role: u.role ?? 'member', nodes: [], atoms: [] });
  return out;
}

/** Reads one node's facts into a record (addresses parsed once, served routes computed). */
export function buildNode(index: number, facts: NodeFacts, users: ReadonlyMap<number, UserRec>): NodeRec {
  const tags = [...new Set(facts.tags)].sort();
  const tagged = tags.length > 0;
  const user = tagged || facts.userId === null ? null : (users.get(facts.userId) ?? null);
  const advertised = new Set(facts.advertisedRoutes.map(canonicalPrefix));
  const routes: IPPrefix[] = [];
  const exitRoutes: string[] = [];
  for (const text of facts.approvedRoutes) {
    const canonical = canonicalPrefix(text);
    if (!advertised.has(canonical)) continue;
    const prefix = parsePrefix(canonical);
    if (isExitRoute(prefix)) exitRoutes.push(canonical);
    else routes.push(prefix);
  }
  routes.sort(comparePrefix);
  const v4 = parseV4(facts.ipv4);
  const v6 = parseV6(facts.ipv6);
  const node: NodeRec = {
    index,
    facts,
    id: facts.id,
    name: facts.name,
    user,
    tagged,
    tags,
    v4,
    v6,
    v4Text: facts.ipv4 === null || facts.ipv4 === '' ? null : formatV4(v4),
    v6Text: v6 === null ? null : IPSet.of({ addr: { family: 6, value: v6 }, bits: 128 }).toStrings()[0]!,
    routes: dedupePrefixes(routes),
    routeTexts: dedupePrefixes(routes).map(formatPrefix),
    exitRoutes: [...new Set(exitRoutes)].sort(),
    order: facts.registeredOrder ?? facts.id,
    classId: -1,
  };
  if (user !== null) user.nodes.push(node);
  return node;
}

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

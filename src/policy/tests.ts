// The policy's own assertions: `tests` (can this source reach host:port?) and `sshTests` (may
// this source log in as these users?), evaluated against the compiled rules bound to a
// tailnet. A policy whose tests fail is rejected. As in the service, a malformed entry (no
// src, a CIDR or port range as destination, an unknown name) is a failing test, not a parse
// error; our message names each failing assertion.
import { type IPAddr, formatIP, parseIP } from '../util/ip.js';
import { type Alias, type PortRange, parseAlias, parseProtocol, splitHostPorts } from './alias.js';
import type { RuleItem, SelectionPart } from './compile.js';
import { PolicyError } from './errors.js';
import { isSyncedGroupName } from './parse.js';
import type { NodeFacts } from './facts.js';
import type { PolicyIndex } from './index/policy-index.js';
import { INTERNET } from './tailscale-ranges.js';

export interface TestFailure {
  readonly section: 'tests' | 'sshTests';
  readonly index: number;
  readonly path: string;
  readonly at: number;
  /** One failing assertion, e.g. `thor@example.org -> webserver:443 (tcp): expected accept, got deny`. */
  readonly message: string;
}

export interface TestReport {
  readonly passed: boolean;
  readonly total: number;
  readonly failures: readonly TestFailure[];
}

/** Client default protocols when a rule or test names none: TCP, UDP, ICMP, ICMPv6. */
const DEFAULT_PROTOS: readonly number[] = [6, 17, 1, 58];
/** Protocols a `tests` entry may name: TCP, UDP, SCTP. */
const TEST_PROTOS: ReadonlySet<number> = new Set([6, 17, 132]);

export function runPolicyTests(index: PolicyIndex): TestReport {
  const failures: TestFailure[] = [];
  const policy = index.compiled.policy;
  for (const test of policy.tests) {
    for (const message of runOneTest(index, test)) failures.push({ section: 'tests', index: test.index, path: test.path, at: test.at, message });
  }
  for (const test of policy.sshTests) {
    for (const message of runOneSshTest(index, test)) failures.push({ section: 'sshTests', index: test.index, path: test.path, at: test.at, message });
  }
  return { passed: failures.length === 0, total: policy.tests.length + policy.sshTests.length, failures };
}

/** Throws HW_POLICY_TESTS_FAILED naming every failing assertion when a test fails. */
export function assertTestsPass(index: PolicyIndex): void {
  const report = runPolicyTests(index);
  if (report.passed) return;
  const first = report.failures[0]!;
  const lines = report.failures.map((f) => `${f.path}: ${f.message}`);
  throw index.compiled.policy.source.error('testsFailed', `test(s) failed: ${lines.join('; ')}`, first.at, '');
}

// --- reachability ---------------------------------------------------------------------------

interface Endpoint {
  readonly addr: IPAddr;
  readonly node: NodeFacts | null;
}

function endpointsOfNode(n: NodeFacts): Endpoint[] {
  const out: Endpoint[] = [];
  if (n.ipv4) out.push({ addr: parseIP(n.ipv4), node: n });
  if (n.ipv6) out.push({ addr: parseIP(n.ipv6), node: n });
  return out;
}

/** Nodes a test selector names, or null when it names something malformed or unknown. */
function resolveNodes(index: PolicyIndex, text: string): { nodes: NodeFacts[]; literal: IPAddr | null } | null {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  const parsed = parseAlias(trimmed);
  if (!parsed.ok) return null;
  const alias = parsed.alias;
  const policy = index.compiled.policy;
  switch (alias.kind) {
    case 'prefix': {
      if (!alias.single) return null;
      const node = index.nodeByAddress(formatAddrText(alias.prefix.addr));
      return { nodes: node === null ? [] : [node], literal: alias.prefix.addr };
    }
    case 'host': {
      const host = policy.hosts.get(alias.name);
      if (host === undefined || !host.single) return null;
      const node = index.nodeByAddress(formatAddrText(host.prefix.addr));
      return { nodes: node === null ? [] : [node], literal: host.prefix.addr };
    }
    case 'tag':
      if (!policy.tagOwners.has(alias.name)) return null;
      break;
    case 'group':
      // A synced group (group:<name>@<domain>) has no groups entry; its members are the users.
      if (!policy.groups.has(alias.name) && !isSyncedGroupName(alias.name)) return null;
      break;
    case 'autogroup':
      if (!['member', 'tagged', 'admin', 'owner', 'it-admin', 'network-admin', 'billing-admin', 'auditor'].includes(alias.name)) return null;
      break;
    case 'wildcard':
    case 'ipset':
      return null;
    default:
      break;
  }
  return { nodes: index.nodesOf(index.compiled.select([{ text: trimmed, alias }])), literal: null };
}

function formatAddrText(addr: IPAddr): string {
  return formatIP(addr);
}

function srcEndpoints(index: PolicyIndex, text: string | null): Endpoint[] | null {
  if (text === null) return null;
  const r = resolveNodes(index, text);
  if (r === null) return null;
  if (r.nodes.length > 0) return r.nodes.flatMap(endpointsOfNode);
  return r.literal === null ? [] : [{ addr: r.literal, node: null }];
}

function runOneTest(index: PolicyIndex, test: { src: string | null; proto: string | null; accept: readonly string[]; deny: readonly string[] }): string[] {
  const srcText = test.src ?? '';
  const failures: string[] = [];
  if (test.src === null || test.src.trim() === '') return ['src is missing or empty'];
  if (test.accept.length === 0 && test.deny.length === 0) return [`${srcText}: no accept or deny assertions`];
  let protos: readonly number[] = DEFAULT_PROTOS;
  if (test.proto !== null && test.proto !== '') {
    const p = parseProtocol(test.proto);
    // A test describes one connection attempt, so only connection protocols are allowed.
    if (p === null || !TEST_PROTOS.has(p)) return [`${srcText}: test protocol must be tcp, udp, sctp, or empty, got ${JSON.stringify(test.proto)}`];
    protos = [p];
  }
  const protoNote = test.proto !== null && test.proto !== '' ? ` (${test.proto})` : '';
  const srcs = srcEndpoints(index, test.src);
  if (srcs === null || srcs.length === 0) return [`${srcText}: source names no device or address`];
  const check = (dst: string, want: boolean): void => {
    const verdict = reachable(index, srcs, dst, protos);
    if (verdict === null) failures.push(`${srcText} -> ${dst}${protoNote}: destination must be one host and one port`);
    else if (verdict !== want) failures.push(`${srcText} -> ${dst}${protoNote}: expected ${want ? 'accept' : 'deny'}, got ${verdict ? 'accept' : 'deny'}`);
  };
  for (const dst of test.accept) check(dst, true);
  for (const dst of test.deny) check(dst, false);
  return failures;
}

/** Whether every source reaches the destination; null when the destination is malformed. */
function reachable(index: PolicyIndex, srcs: readonly Endpoint[], dstText: string, protos: readonly number[]): boolean | null {
  const split = splitHostPorts(dstText.trim());
  if (split === null || !/^[0-9]{1,5}$/.test(split.ports)) return null;
  const port = Number(split.ports);
  if (port < 1 || port > 65535) return null;
  const parsed = parseAlias(split.host);
  if (!parsed.ok) return null;
  const alias = parsed.alias;
  if (alias.kind === 'autogroup' && alias.name === 'internet') return null;
  for (const src of srcs) {
    let dsts: Endpoint[];
    if (alias.kind === 'autogroup' && alias.name === 'self') {
      if (src.node === null || src.node.tags.length > 0 || src.node.userId === null) return false;
      const owner = src.node.userId;
      dsts = index
        .nodesOf(index.compiled.select([{ text: 'autogroup:member', alias: { kind: 'autogroup', name: 'member' } }]))
        .filter((n) => n.userId === owner)
        .flatMap(endpointsOfNode);
    } else {
      const r = resolveNodes(index, split.host);
      if (r === null) return null;
      dsts = r.nodes.length > 0 ? r.nodes.flatMap(endpointsOfNode) : r.literal === null ? [] : [{ addr: r.literal, node: null }];
    }
    if (dsts.length === 0) return false;
    if (!dsts.some((dst) => allowedBy(index, src, dst, port, protos).length > 0)) return false;
  }
  return true;
}

/** The compiled items that allow one packet (empty when none does). */
export function allowedBy(index: PolicyIndex, src: Endpoint, dst: Endpoint, port: number | null, protos: readonly number[]): RuleItem[] {
  const out: RuleItem[] = [];
  for (const { item, srcSet, srcIPs } of index.items()) {
    if (item.kind === 'cap' || item.kind === 'selfCap') continue;
    if (item.kind === 'via' && item.capMap !== null) continue;
    if (srcIPs.length === 0) continue;
    if (!(item.src.dangerAll || srcSet.contains(src.addr))) continue;
    const ruleProtos = item.ipProto ?? DEFAULT_PROTOS;
    if (!ruleProtos.some((p) => protos.includes(p))) continue;
    if (item.kind === 'selfNet') {
      if (src.node === null || dst.node === null || !index.sameUser(src.node.id, dst.node.id)) continue;
      if (portsAllow(item.ports, port)) out.push(item);
      continue;
    }
    const dsts = item.kind === 'net' ? item.dsts : item.dstsWithPorts;
    if (dsts.some((d) => partHas(index, d.part, dst) && portsAllow(d.ports, port))) out.push(item);
  }
  return out;
}

function partHas(index: PolicyIndex, part: SelectionPart, dst: Endpoint): boolean {
  switch (part.kind) {
    case 'wildcard':
      return true;
    case 'internet':
      return INTERNET.contains(dst.addr);
    case 'literal':
      return part.literal?.contains(dst.addr) ?? false;
    case 'atom':
      return dst.node !== null && index.nodeMatchesPart(dst.node.id, part);
    default:
      return false;
  }
}

function portsAllow(ports: readonly PortRange[], port: number | null): boolean {
  if (port === null) return true;
  return ports.some((p) => p.first <= port && port <= p.last);
}

// --- ssh ------------------------------------------------------------------------------------

type SshVerdict = 'accept' | 'check' | 'deny';

function runOneSshTest(
  index: PolicyIndex,
  test: { src: string | null; dst: readonly string[]; accept: readonly string[]; check: readonly string[]; deny: readonly string[] },
): string[] {
  const srcText = test.src ?? '';
  if (test.src === null || test.src.trim() === '') return ['src is missing or empty'];
  if (test.accept.length + test.check.length + test.deny.length === 0) return [`${srcText}: no accept, check or deny users`];
  const src = resolveNodes(index, test.src);
  if (src === null || src.nodes.length === 0) return [`${srcText}: source names no device`];
  if (test.dst.length === 0) return [`${srcText}: no dst`];
  const failures: string[] = [];
  for (const dstText of test.dst) {
    const dstNodes = sshTestDestinations(index, dstText, src.nodes);
    if (dstNodes === null || dstNodes.length === 0) {
      failures.push(`${srcText} -> ${dstText}: destination names no device`);
      continue;
    }
    const assertions: Array<[readonly string[], (v: SshVerdict) => boolean, string]> = [
      [test.accept, (v) => v !== 'deny', 'accept'],
      [test.check, (v) => v === 'check', 'check'],
      [test.deny, (v) => v === 'deny', 'deny'],
    ];
    for (const [users, ok, want] of assertions) {
      for (const user of users) {
        if (user === '') {
          failures.push(`${srcText} -> ${dstText}: empty user name`);
          continue;
        }
        for (const d of dstNodes) {
          for (const s of src.nodes) {
            const verdict = sshVerdict(index, s, d, user);
            if (!ok(verdict)) failures.push(`${srcText} -> ${dstText} as ${JSON.stringify(user)}: expected ${want}, got ${verdict}`);
          }
        }
      }
    }
  }
  return failures;
}

function sshTestDestinations(index: PolicyIndex, text: string, srcNodes: readonly NodeFacts[]): NodeFacts[] | null {
  const parsed = parseAlias(text.trim());
  if (!parsed.ok) return null;
  const alias: Alias = parsed.alias;
  if (alias.kind === 'autogroup' && alias.name === 'self') {
    const owners = new Set(srcNodes.filter((n) => n.tags.length === 0).map((n) => n.userId));
    return index
      .nodesOf(index.compiled.select([{ text: 'autogroup:member', alias: { kind: 'autogroup', name: 'member' } }]))
      .filter((n) => owners.has(n.userId));
  }
  const r = resolveNodes(index, text);
  return r === null ? null : r.nodes;
}

function sshVerdict(index: PolicyIndex, src: NodeFacts, dst: NodeFacts, user: string): SshVerdict {
  const addrs = new Set([src.ipv4, src.ipv6].filter((a): a is string => a !== null && a !== ''));
  for (const rule of index.sshRulesFor(dst.id)) {
    if (!rule.principals.some((p) => p.nodeIP !== undefined && addrs.has(p.nodeIP))) continue;
    const local = mapLocalUser(rule.sshUsers, user);
    if (local === undefined || local === '') continue;
    return rule.action.holdAndDelegate !== undefined ? 'check' : 'accept';
  }
  return 'deny';
}

/** The client's mapping of a requested user through a rule's sshUsers. */
function mapLocalUser(users: Readonly<Record<string, string>>, user: string): string | undefined {
  const direct = users[user];
  if (direct !== undefined) return direct === '=' ? user : direct;
  const wildcard = users['*'];
  if (wildcard !== undefined) return wildcard === '=' ? user : wildcard;
  return undefined;
}

export type { Endpoint };

// The pure functions behind `headway policy compile | check | explain`: no server, no
// database. They take policy text and a topology in the shape of a conformance case and return
// plain JSON-able values, so the CLI only reads files and prints.
import type * as tailcfg from '../tailcfg/index.js';
import { formatIP, parseIP } from '../util/ip.js';
import { IPSet } from '../util/ip-set.js';
import { parseAlias, parseProtocol, splitHostPorts } from './alias.js';
import { compilePolicyText, type CompiledPolicy, type RuleItem } from './compile.js';
import { PolicyError } from './errors.js';
import type { TailnetFacts, TailnetSettings } from './facts.js';
import { PolicyIndex } from './index/policy-index.js';
import { allowedBy, assertTestsPass, runPolicyTests, type TestReport } from './tests.js';
import { factsFromTopology } from './topology.js';

export interface PeerOutput {
  readonly name: string;
  readonly AllowedIPs: string[];
  readonly PrimaryRoutes?: string[];
  readonly Tags?: string[];
  readonly CapMap?: tailcfg.NodeCapMap;
}

export interface SelfOutput {
  readonly Addresses: string[];
  readonly AllowedIPs: string[];
  readonly PrimaryRoutes?: string[];
  readonly Tags?: string[];
  readonly CapMap: tailcfg.NodeCapMap;
}

export interface NodeOutput {
  readonly packet_filter: tailcfg.FilterRule[];
  readonly ssh_rules: tailcfg.SSHRule[];
  readonly peers: PeerOutput[];
  readonly self: SelfOutput;
  /** Peer address -> capabilities it holds towards this node (what `tailscale whois` shows). */
  readonly whois?: Record<string, { CapMap: tailcfg.PeerCapMap | null }>;
}

export type CompileResult = { readonly rejected: false; readonly nodes: Record<string, NodeOutput> } | { readonly rejected: true; readonly error: string };

export interface CompileOptions {
  /** Only this node's output. */
  readonly node?: string;
  /** File name used in error locations. */
  readonly file?: string;
  readonly settings?: TailnetSettings;
  /** Include each node's whois view of its peers. */
  readonly whois?: boolean;
}

/**
 * Compiles a policy against a topology and returns what each node would receive, with the
 * field names of a conformance case's `expect`; served routes are the topology's
 * `approved_routes` (advertised and approved), taken as recorded; `{rejected: true, error}` when the policy is
 * invalid or its tests fail. A malformed topology or an unknown `node` throws.
 */
export function compileTopology(policyText: string, topology: unknown, options: CompileOptions = {}): CompileResult {
  const { facts, names } = factsFromTopology(topology, options.settings);
  let index: PolicyIndex;
  try {
    // A topology records the routes the service approved: autoApprovers act when a route is
    // advertised, and their outcome is already in `approved_routes`. A route the topology
    // records as not approved is not served, whatever autoApprovers cover it.
    index = new PolicyIndex(compilePolicyText(policyText, { file: options.file }), facts);
    assertTestsPass(index);
  } catch (err) {
    if (err instanceof PolicyError && err.kind !== 'invalidTopology' && err.kind !== 'unknownNode') return { rejected: true, error: err.message };
    throw err;
  }
  const nodes: Record<string, NodeOutput> = {};
  const ids = options.node === undefined ? index.nodeIds() : [index.node(options.node).id];
  for (const id of ids) nodes[names.get(id)!] = nodeOutput(index, id, names, options.whois === true);
  return { rejected: false, nodes };
}

/** Everything one node receives, as compileTopology reports it. */
export function nodeOutput(index: PolicyIndex, id: number, names: ReadonlyMap<number, string>, withWhois: boolean): NodeOutput {
  const filter = index.filterFor(id);
  const peerIds = index.peersOf(id).sort((a, b) => compareNames(names.get(a)!, names.get(b)!));
  const peers: PeerOutput[] = peerIds.map((peerId) => {
    const view = index.peerView(id, peerId);
    const out: { -readonly [K in keyof PeerOutput]: PeerOutput[K] } = { name: names.get(peerId)!, AllowedIPs: view.AllowedIPs };
    if (view.PrimaryRoutes.length > 0) out.PrimaryRoutes = view.PrimaryRoutes;
    if (view.Tags.length > 0) out.Tags = view.Tags;
    if (view.CapMap !== null) out.CapMap = view.CapMap;
    return out;
  });
  const sv = index.selfView(id);
  const self: { -readonly [K in keyof SelfOutput]: SelfOutput[K] } = { Addresses: sv.Addresses, AllowedIPs: sv.AllowedIPs, CapMap: sv.CapMap };
  if (sv.PrimaryRoutes.length > 0) self.PrimaryRoutes = sv.PrimaryRoutes;
  if (sv.Tags.length > 0) self.Tags = sv.Tags;
  const result: { -readonly [K in keyof NodeOutput]: NodeOutput[K] } = { packet_filter: filter, ssh_rules: index.sshRulesFor(id), peers, self };
  if (withWhois) result.whois = whoisOf(index, id, filter, peerIds);
  return result;
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The capabilities each peer address holds towards the node, merged as the client merges them. */
function whoisOf(index: PolicyIndex, id: number, filter: readonly tailcfg.FilterRule[], peerIds: readonly number[]): Record<string, { CapMap: tailcfg.PeerCapMap | null }> {
  const self = index.node(id);
  const own = [self.ipv4, self.ipv6].filter((a): a is string => a !== null && a !== '').map(parseIP);
  const capRules = filter
    .filter((r) => r.CapGrant !== undefined)
    .map((r) => ({ src: sourceSet(r.SrcIPs), grants: r.CapGrant! }));
  const out: Record<string, { CapMap: tailcfg.PeerCapMap | null }> = {};
  for (const peerId of peerIds) {
    const peer = index.node(peerId);
    for (const text of [peer.ipv4, peer.ipv6]) {
      if (text === null || text === '') continue;
      const addr = parseIP(text);
      let caps: tailcfg.PeerCapMap | null = null;
      for (const rule of capRules) {
        if (!rule.src.contains(addr)) continue;
        for (const grant of rule.grants) {
          const dsts = sourceSet(grant.Dsts);
          if (!own.some((a) => dsts.contains(a))) continue;
          caps ??= {};
          for (const [name, values] of Object.entries(grant.CapMap)) {
            const prior = caps[name] ?? null;
            caps[name] = values === null ? prior : [...(prior ?? []), ...values];
          }
        }
      }
      out[formatIP(addr)] = { CapMap: caps };
    }
  }
  return out;
}

function sourceSet(entries: readonly string[]): IPSet {
  let set = IPSet.EMPTY;
  for (const e of entries) {
    if (e === '*') return IPSet.of({ addr: { family: 4, value: 0n }, bits: 0 }, { addr: { family: 6, value: 0n }, bits: 0 });
    const s = IPSet.tryParse(e);
    if (s !== null) set = set.union(s);
  }
  return set;
}

// --- check ----------------------------------------------------------------------------------

export interface CheckResult {
  readonly ok: boolean;
  /** The first problem, with its location. */
  readonly error?: string;
  /** Results of tests and sshTests when they were run. */
  readonly tests?: TestReport;
  /** Why tests were not run (no topology to run them against). */
  readonly note?: string;
}

/**
 * Validates a policy; with a topology, also binds it (domain checks) and runs its tests.
 * Without one, tests run against a tailnet synthesised from the policy: one device for each
 * user the policy names and one for each tag, as the service evaluates tests by identity.
 */
export function checkPolicy(policyText: string, options: { file?: string; topology?: unknown; settings?: TailnetSettings } = {}): CheckResult {
  let compiled: CompiledPolicy;
  try {
    compiled = compilePolicyText(policyText, { file: options.file });
  } catch (err) {
    if (err instanceof PolicyError) return { ok: false, error: err.message };
    throw err;
  }
  const facts = options.topology !== undefined ? factsFromTopology(options.topology, options.settings).facts : withDevicesForTests(compiled);
  try {
    const index = new PolicyIndex(compiled, facts);
    const report = runPolicyTests(index);
    if (!report.passed) {
      try {
        assertTestsPass(index);
      } catch (err) {
        if (err instanceof PolicyError) return { ok: false, error: err.message, tests: report };
        throw err;
      }
    }
    return { ok: true, tests: report, ...(options.topology === undefined ? { note: 'tests ran against one stand-in device per user and tag named in the policy' } : {}) };
  } catch (err) {
    if (err instanceof PolicyError) return { ok: false, error: err.message };
    throw err;
  }
}

/** Tailscale's behaviour without a policy file: every packet from anywhere, to everyone. */
export const ALLOW_ALL_POLICY_TEXT = '{"acls":[{"action":"accept","src":["autogroup:danger-all"],"dst":["*:*"]}]}';

/**
 * The tailnet a policy's `tests` run against: `facts` (empty offline, the real devices on a
 * server) plus one stand-in device for each user and each tag the policy names that has none.
 * The service evaluates tests by identity, so a policy that names a user with no device yet,
 * or a tag no device carries yet, is still checked, and nothing real is hidden.
 */
export function withDevicesForTests(compiled: CompiledPolicy, facts: TailnetFacts = { users: [], nodes: [] }): TailnetFacts {
  const p = compiled.policy;
  const logins = new Set<string>();
  const collect = (text: string): void => {
    if (text.includes('@') && !text.startsWith('user:*@') && !text.startsWith('localpart:')) logins.add(text.trim());
  };
  for (const members of p.groups.values()) members.forEach(collect);
  for (const owners of p.tagOwners.values()) owners.forEach((o) => collect(o.text));
  for (const r of p.acls ?? []) [...r.src, ...r.dst].forEach((a) => collect(a.text));
  for (const r of p.grants ?? []) [...r.src, ...r.dst].forEach((a) => collect(a.text));
  for (const r of p.ssh ?? []) [...r.src, ...r.dst].forEach((a) => collect(a.text));

  const users = [...facts.users];
  const nodes = [...facts.nodes];
  let nextUserId = users.reduce((m, u) => Math.max(m, u.id), 0) + 1;
  let nextNodeId = nodes.reduce((m, n) => Math.max(m, n.id), 0) + 1;
  const used = new Set(nodes.flatMap((n) => [n.ipv4, n.ipv6]).filter((a): a is string => a !== null));
  // Stand-ins count down from the top of the CGNAT range, clear of the usual allocations.
  let slot = 0;
  const address = (): { ipv4: string; ipv6: string } => {
    for (;;) {
      slot++;
      const ipv4 = `100.127.${255 - (slot >> 8)}.${255 - (slot & 255)}`;
      const ipv6 = `fd7a:115c:a1e0:ffff::${slot.toString(16)}`;
      if (!used.has(ipv4) && !used.has(ipv6)) return { ipv4, ipv6 };
    }
  };
  const standIn = (name: string, userId: number | null, tags: string[]) => {
    nodes.push({ id: nextNodeId++, name, ...address(), userId, tags, advertisedRoutes: [], approvedRoutes: [], online: true });
  };
  for (const login of logins) {
    const bare = login.endsWith('@') ? login.slice(0, -1) : null;
    let user = users.find((u) => (bare !== null ? u.name === bare : u.email.toLowerCase() === login.toLowerCase()));
    if (user === undefined) {
      user = { id: nextUserId++, name: bare ?? login.slice(0, login.indexOf('@')), email: bare === null ? login : '', role: 'member' };
      users.push(user);
    }
    const userId = user.id;
    if (!nodes.some((n) => n.userId === userId && n.tags.length === 0)) standIn(`test-user-${userId}`, userId, []);
  }
  for (const tag of p.tagOwners.keys()) {
    if (!nodes.some((n) => n.tags.includes(tag))) standIn(`test-${tag.slice(4)}`, null, [tag]);
  }
  return { users, nodes, settings: facts.settings ?? {} };
}

// --- explain --------------------------------------------------------------------------------

export interface ExplainMatch {
  readonly section: 'acls' | 'grants' | 'default';
  readonly index: number;
  /** Where the rule is in the file (line:column). */
  readonly location: string;
  /** A one-line rendering of the rule. */
  readonly rule: string;
}

export interface ExplainResult {
  readonly allowed: boolean;
  readonly src: string;
  readonly dst: string;
  readonly proto: string;
  /** Rules and grants that allow the traffic, in policy order. */
  readonly matches: readonly ExplainMatch[];
  /** Whether the two nodes are peers (see each other in their netmaps). */
  readonly peers: boolean;
  readonly reason?: string;
}

/**
 * Says whether `src` may open `dst` (`node:port` or `address:port`) with `proto` (default
 * tcp), and which acl or grant allows it: Tailscale's admin-console rule preview, offline.
 */
export function explain(policyText: string, topology: unknown, query: { src: string; dst: string; proto?: string }, options: { settings?: TailnetSettings; file?: string } = {}): ExplainResult {
  return explainFacts(policyText, factsFromTopology(topology, options.settings).facts, query, options);
}

/** explain() over a tailnet's facts (a running server's devices) instead of a topology file. */
export function explainFacts(policyText: string, facts: TailnetFacts, query: { src: string; dst: string; proto?: string }, options: { file?: string } = {}): ExplainResult {
  const compiled = compilePolicyText(policyText, { file: options.file });
  const index = new PolicyIndex(compiled, facts);
  const protoText = query.proto ?? 'tcp';
  const proto = parseProtocol(protoText);
  if (proto === null) throw new PolicyError('invalidPorts', `explain: unknown protocol ${JSON.stringify(protoText)}`, null);
  const src = index.node(query.src);
  const split = splitHostPorts(query.dst);
  if (split === null || !/^[0-9]{1,5}$/.test(split.ports)) throw new PolicyError('invalidPorts', `explain: dst ${JSON.stringify(query.dst)}: want node:port`, null);
  const port = Number(split.ports);
  let dstNode = index.hasNode(split.host) ? index.node(split.host) : null;
  let dstAddr = dstNode !== null ? (dstNode.ipv4 ?? dstNode.ipv6) : null;
  if (dstNode === null) {
    const parsed = parseAlias(split.host);
    if (!parsed.ok || parsed.alias.kind !== 'prefix' || !parsed.alias.single) throw new PolicyError('unknownNode', `explain: dst ${JSON.stringify(split.host)} is neither a node nor an address`, null);
    dstAddr = formatIP(parsed.alias.prefix.addr);
    dstNode = index.nodeByAddress(dstAddr);
  }
  const srcAddrs = [src.ipv4, src.ipv6].filter((a): a is string => a !== null && a !== '');
  const dstAddrs = dstNode !== null ? [dstNode.ipv4, dstNode.ipv6].filter((a): a is string => a !== null && a !== '') : [dstAddr!];
  const items = new Map<number, RuleItem>();
  for (const s of srcAddrs) {
    for (const d of dstAddrs) {
      if (parseIP(s).family !== parseIP(d).family) continue;
      for (const item of allowedBy(index, { addr: parseIP(s), node: src }, { addr: parseIP(d), node: dstNode }, port, [proto])) items.set(item.order, item);
    }
  }
  const seen = new Set<string>();
  const matches: ExplainMatch[] = [];
  for (const item of [...items.values()].sort((a, b) => a.order - b.order)) {
    const key = `${item.origin.section}:${item.origin.index}`;
    if (seen.has(key)) continue;
    seen.add(key);
    matches.push(describeRule(compiled, item));
  }
  const peers = dstNode !== null && dstNode.id !== src.id ? index.sees(src.id, dstNode.id) : false;
  const result: ExplainResult = { allowed: matches.length > 0, src: query.src, dst: query.dst, proto: protoText, matches, peers };
  if (matches.length === 0) return { ...result, reason: 'no acl or grant allows this traffic; everything not allowed is denied' };
  return result;
}

function describeRule(compiled: CompiledPolicy, item: RuleItem): ExplainMatch {
  const { section, index, at } = item.origin;
  const pos = compiled.policy.source.position(at);
  const location = `${compiled.policy.source.file}:${pos.line}:${pos.column}`;
  if (section === 'default') return { section, index, location: '(no acls or grants: allow all)', rule: '* -> *:*' };
  if (section === 'acls') {
    const acl = compiled.policy.acls![index]!;
    const proto = acl.proto === null ? '' : ` proto ${acl.proto}`;
    return { section, index, location, rule: `accept ${acl.src.map((s) => s.text).join(', ')} -> ${acl.dst.map((d) => `${d.text}:${d.ports.map(portText).join(',')}`).join(', ')}${proto}` };
  }
  const grant = compiled.policy.grants![index]!;
  const via = grant.via.length > 0 ? ` via ${grant.via.map((v) => v.text).join(', ')}` : '';
  return { section, index, location, rule: `grant ${grant.src.map((s) => s.text).join(', ')} -> ${grant.dst.map((d) => d.text).join(', ')} ip [${grant.ip.map((i) => i.text).join(', ')}]${via}` };
}

function portText(p: { first: number; last: number }): string {
  if (p.first === 0 && p.last === 65535) return '*';
  return p.first === p.last ? String(p.first) : `${p.first}-${p.last}`;
}

// Benchmark: compiling a policy for a large tailnet and binding it to the nodes (identity
// classes, visibility, per-class filter templates), then answering per-node queries.
//
// Workloads, generated deterministically from a seed:
// - `segmented`: a company of teams of 50 users, each user with 1-5 devices, each team with its
//   own tagged servers; every team may reach its own servers, every fifth team also a partner
//   team's; everyone may reach three shared services; admins reach everything; ssh for admins
//   to servers and for everyone to their own devices. About 300 acls at 50,000 nodes.
// - `fullmesh`: `*` may reach `*:*`.
// - `members`: `autogroup:member` may reach `autogroup:member:*` (every join changes every
//   member's SrcIPs).
// The bench runner (bench/main.ts) will import `policyBenchCases` and `policyEventCases`;
// running this file directly prints the compile cases at 5,000 and 50,000 nodes, or with
// `events <policy> <nodes>` the per-event cost of the incremental index.
import { fileURLToPath } from 'node:url';
import { compilePolicyText } from './compile.js';
import type { NodeFacts, TailnetFacts, UserFacts } from './facts.js';
import type { PolicyDelta } from './index/delta.js';
import { PolicyIndex } from './index/policy-index.js';
import { seededRandom } from '../util/random.js';

export type BenchPolicy = 'segmented' | 'fullmesh' | 'members';

export interface PolicyBenchResult {
  readonly policy: BenchPolicy;
  readonly nodes: number;
  readonly users: number;
  readonly rules: number;
  readonly classes: number;
  /** Parse and compile of the policy text (topology independent). */
  readonly compile_ms: number;
  /** PolicyIndex construction: classes, resolutions, visibility, filter templates (wall clock). */
  readonly build_ms: number;
  /** CPU time of compile + build (user + system), less sensitive to a busy machine. */
  readonly cpu_ms: number;
  /** Mean cost of one filterFor / peersOf / sshPolicyFor over a sample of nodes. */
  readonly filter_us: number;
  readonly peers_us: number;
  readonly ssh_us: number;
  readonly mean_peers: number;
  readonly rss_mb: number;
  readonly heap_mb: number;
}

/** Deterministic, so every run builds the same tailnet. */
const rng = seededRandom;

export interface Workload {
  readonly policyText: string;
  readonly facts: TailnetFacts;
  readonly rules: number;
}

/** Builds the tailnet and policy text for `nodeCount` nodes. */
/**
 * The addresses of benchmark slot `n` (1-based). IPv6 spreads the slot over the last two
 * groups: a single group holds only 65,535 slots, and `fd7a:115c:a1e0::10d82` is no address.
 */
export function benchAddresses(n: number): { ipv4: string; ipv6: string } {
  const high = Math.floor(n / 0x10000);
  const low = n % 0x10000;
  return {
    ipv4: `100.${64 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`,
    ipv6: high === 0 ? `fd7a:115c:a1e0::${low.toString(16)}` : `fd7a:115c:a1e0::${high.toString(16)}:${low.toString(16)}`,
  };
}

export function generateWorkload(policy: BenchPolicy, nodeCount: number, seed = 42): Workload {
  const random = rng(seed);
  const users: UserFacts[] = [];
  const pending: Array<Omit<NodeFacts, 'id' | 'ipv4' | 'ipv6'>> = [];
  const teamSize = 50;
  const serversPerTeam = 10;
  // Average devices per user is 3; a team is ~150 devices plus its servers.
  const teams = Math.max(1, Math.round(nodeCount / (teamSize * 3 + serversPerTeam)));
  const groups: Record<string, string[]> = { 'group:admins': [] };
  const tagOwners: Record<string, string[]> = {};
  let userId = 1;
  let teamCount = 0;
  for (let t = 0; t < teams && pending.length < nodeCount; t++) {
    teamCount++;
    const group = `group:team-${t}`;
    groups[group] = [];
    tagOwners[`tag:team-${t}-server`] = ['group:admins'];
    for (let u = 0; u < teamSize && pending.length < nodeCount; u++) {
      const email = `user${userId}@example.com`;
      users.push({ id: userId, name: `user${userId}`, email, role: userId === 1 ? 'owner' : 'member' });
      groups[group]!.push(email);
      // A fixed team of 10 admins: the people who reach everything do not grow with the company,
      // so a device's number of viewers is the same at 5,000 and 50,000 nodes.
      if (userId <= 500 && userId % 50 === 1) groups['group:admins']!.push(email);
      const devices = 1 + Math.floor(random() * 5);
      for (let d = 0; d < devices && pending.length < nodeCount; d++) {
        pending.push({ name: `u${userId}-d${d}`, userId, tags: [], advertisedRoutes: [], approvedRoutes: [], online: true });
      }
      userId++;
    }
    for (let s = 0; s < serversPerTeam && pending.length < nodeCount; s++) {
      pending.push({ name: `team${t}-srv${s}`, userId: 1, tags: [`tag:team-${t}-server`], advertisedRoutes: [], approvedRoutes: [], online: true });
    }
  }
  const shared = ['dns', 'git', 'wiki'];
  for (const svc of shared) tagOwners[`tag:shared-${svc}`] = ['group:admins'];
  for (let i = 0; pending.length < nodeCount; i++) {
    pending.push({ name: `shared-${shared[i % 3]}-${i}`, userId: 1, tags: [`tag:shared-${shared[i % 3]}`], advertisedRoutes: [], approvedRoutes: [], online: true });
  }
  // Addresses are handed out in a shuffled order, so teams are not contiguous ranges.
  const slots = pending.map((_, i) => i + 1);
  for (let i = slots.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [slots[i], slots[j]] = [slots[j]!, slots[i]!];
  }
  const nodes: NodeFacts[] = pending.map((p, i) => {
    const n = slots[i]!;
    return { ...p, id: i + 1, ...benchAddresses(n) };
  });

  let acls: unknown[];
  let ssh: unknown[] = [];
  if (policy === 'fullmesh') {
    acls = [{ action: 'accept', src: ['*'], dst: ['*:*'] }];
  } else if (policy === 'members') {
    acls = [{ action: 'accept', src: ['autogroup:member'], dst: ['autogroup:member:*'] }];
  } else {
    acls = [];
    for (let t = 0; t < teamCount; t++) {
      acls.push({ action: 'accept', src: [`group:team-${t}`], dst: [`tag:team-${t}-server:22,443,8000-8100`] });
      if (t % 5 === 0 && teamCount > 1) acls.push({ action: 'accept', src: [`group:team-${t}`], dst: [`tag:team-${(t + 1) % teamCount}-server:443`] });
    }
    acls.push({ action: 'accept', src: ['autogroup:member'], proto: 'udp', dst: ['tag:shared-dns:53'] });
    acls.push({ action: 'accept', src: ['autogroup:member'], dst: ['tag:shared-git:22,443'] });
    acls.push({ action: 'accept', src: ['autogroup:member'], dst: ['tag:shared-wiki:443'] });
    acls.push({ action: 'accept', src: ['group:admins'], dst: ['*:*'] });
    ssh = [
      { action: 'accept', src: ['group:admins'], dst: Object.keys(tagOwners).slice(0, 20), users: ['root', 'autogroup:nonroot'] },
      { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self'], users: ['autogroup:nonroot'] },
    ];
  }
  const policyText = JSON.stringify({ groups, tagOwners, acls, ...(ssh.length > 0 ? { ssh } : {}) }, null, 2);
  return { policyText, facts: { users, nodes, settings: {} }, rules: acls.length };
}

/** Compiles and binds one workload, then samples per-node queries. */
export function benchPolicyCompile(policy: BenchPolicy, nodeCount: number, seed = 42): PolicyBenchResult {
  const w = generateWorkload(policy, nodeCount, seed);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const compiled = compilePolicyText(w.policyText);
  const t1 = performance.now();
  const index = new PolicyIndex(compiled, w.facts);
  const t2 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const mem = process.memoryUsage();
  const ids = index.nodeIds();
  const sample = Math.min(ids.length, 500);
  const step = Math.max(1, Math.floor(ids.length / sample));
  let filterMs = 0;
  let peersMs = 0;
  let sshMs = 0;
  let peerTotal = 0;
  for (let i = 0, k = 0; k < sample; i += step, k++) {
    const id = ids[i % ids.length]!;
    const a = performance.now();
    index.filterFor(id);
    const b = performance.now();
    peerTotal += index.peersOf(id).length;
    const c = performance.now();
    index.sshPolicyFor(id);
    const d = performance.now();
    filterMs += b - a;
    peersMs += c - b;
    sshMs += d - c;
  }
  return {
    policy,
    nodes: w.facts.nodes.length,
    users: w.facts.users.length,
    rules: w.rules,
    classes: index.classCount,
    compile_ms: round(t1 - t0),
    build_ms: round(t2 - t1),
    cpu_ms: round((cpu.user + cpu.system) / 1000),
    filter_us: round((filterMs * 1000) / sample),
    peers_us: round((peersMs * 1000) / sample),
    ssh_us: round((sshMs * 1000) / sample),
    mean_peers: Math.round(peerTotal / sample),
    rss_mb: Math.round(mem.rss / 1048576),
    heap_mb: Math.round(mem.heapUsed / 1048576),
  };
}

/** Cost of one kind of event on the incremental index. */
export interface EventCost {
  readonly count: number;
  readonly median_us: number;
  readonly p99_us: number;
  readonly max_us: number;
  /** Mean number of nodes the delta names (who must hear about the event). */
  readonly recipients: number;
}

export interface PolicyEventResult {
  readonly policy: BenchPolicy;
  readonly nodes: number;
  readonly classes: number;
  readonly build_ms: number;
  readonly rss_mb: number;
  readonly events: Readonly<Record<string, EventCost>>;
}

/** Every node a delta names: the nodes that must hear about the event. */
function recipientsOf(delta: PolicyDelta): number {
  const out = new Set<number>();
  for (const m of [delta.gained, delta.lost]) for (const [viewer, peers] of m) if (peers.length > 0) out.add(viewer);
  for (const viewers of delta.viewChanged.values()) for (const v of viewers) out.add(v);
  for (const list of [delta.filterChanged, delta.sshChanged, delta.selfChanged]) for (const id of list) out.add(id);
  return out.size;
}

function cost(samples: { us: number; recipients: number }[]): EventCost {
  const us = samples.map((s) => s.us).sort((a, b) => a - b);
  const at = (q: number): number => round(us[Math.min(us.length - 1, Math.floor(q * us.length))]!);
  return {
    count: us.length,
    median_us: at(0.5),
    p99_us: at(0.99),
    max_us: round(us[us.length - 1]!),
    recipients: Math.round(samples.reduce((s, x) => s + x.recipients, 0) / samples.length),
  };
}

/**
 * Builds the tailnet, then measures the incremental index's events: joins of new member
 * devices, their leaves, retags of existing devices (to a shared-service tag and back), online
 * changes of non-routers, and policy edits (one rule added, then removed). Each event's time is
 * the policy work only (the update and its delta), not the mapper's.
 */
export function benchPolicyEvents(policy: BenchPolicy, nodeCount: number, repeats = 200, seed = 42): PolicyEventResult {
  const w = generateWorkload(policy, nodeCount, seed);
  const compiled = compilePolicyText(w.policyText);
  const t0 = performance.now();
  const index = new PolicyIndex(compiled, w.facts);
  const buildMs = performance.now() - t0;
  const rss = process.memoryUsage().rss;
  const random = rng(seed + 1);
  const members = w.facts.users.map((u) => u.id);
  const untagged = w.facts.nodes.filter((n) => n.tags.length === 0);
  // Warm the lazily built parts (SSH rules) the way a running server has them.
  index.sshPolicyFor(w.facts.nodes[0]!.id);
  const time = (run: () => PolicyDelta): { us: number; recipients: number } => {
    const a = performance.now();
    const delta = run();
    const us = (performance.now() - a) * 1000;
    return { us, recipients: recipientsOf(delta) };
  };
  const joins: { us: number; recipients: number }[] = [];
  const leaves: { us: number; recipients: number }[] = [];
  const retags: { us: number; recipients: number }[] = [];
  const online: { us: number; recipients: number }[] = [];
  const joined: number[] = [];
  let slot = nodeCount + 1;
  for (let i = 0; i < repeats; i++) {
    const id = 10_000_000 + i;
    const n = slot++;
    const facts: NodeFacts = {
      id,
      name: `bench-${i}`,
      ...benchAddresses(n),
      userId: members[Math.floor(random() * members.length)]!,
      tags: [],
      advertisedRoutes: [],
      approvedRoutes: [],
      online: true,
    };
    joins.push(time(() => index.upsertNode(facts)));
    joined.push(id);
  }
  for (const id of joined) leaves.push(time(() => index.removeNode(id)));
  for (let i = 0; i < repeats; i++) {
    const node = untagged[Math.floor(random() * untagged.length)]!;
    retags.push(time(() => index.upsertNode({ ...node, tags: ['tag:team-1-server'] })));
    retags.push(time(() => index.upsertNode(node)));
    online.push(time(() => index.setOnline(node.id, false)));
    online.push(time(() => index.setOnline(node.id, true)));
  }
  // Two HA routers of one prefix (a route change: in place, unless a `*` source lists routes),
  // then the primary failing over and back (only the prefix's viewers hear).
  const routes: { us: number; recipients: number }[] = [];
  const failover: { us: number; recipients: number }[] = [];
  const routers: NodeFacts[] = [0, 1].map((k) => {
    const n = slot++;
    return {
      id: 20_000_000 + k,
      name: `router-${k}`,
      ...benchAddresses(n),
      userId: 1,
      tags: ['tag:shared-dns'],
      advertisedRoutes: ['10.99.0.0/16'],
      approvedRoutes: ['10.99.0.0/16'],
      online: true,
    };
  });
  for (const r of routers) routes.push(time(() => index.upsertNode(r)));
  for (let i = 0; i < Math.min(repeats, 50); i++) {
    // The primary goes offline (its twin takes over), then comes back as the secondary.
    const primary = index.primaryRoutes().primaryFor('10.99.0.0/16')!;
    failover.push(time(() => index.setOnline(primary, false)));
    index.setOnline(primary, true);
  }
  for (const r of routers) routes.push(time(() => index.removeNode(r.id)));
  const edited = compilePolicyText(withExtraRule(w.policyText));
  const edits: { us: number; recipients: number }[] = [];
  for (let i = 0; i < (process.env['BENCH_SKIP_EDIT'] !== undefined ? 0 : 2); i++) {
    edits.push(time(() => index.replacePolicy(edited)));
    edits.push(time(() => index.replacePolicy(compiled)));
  }
  return {
    policy,
    nodes: nodeCount,
    classes: index.classCount,
    build_ms: round(buildMs),
    rss_mb: Math.round(rss / 1048576),
    events: {
      join: cost(joins),
      leave: cost(leaves),
      retag: cost(retags),
      online: cost(online),
      route_change: cost(routes),
      router_online: cost(failover),
      ...(edits.length > 0 ? { policy_edit: cost(edits) } : {}),
    },
  };
}

/** The policy with one more rule: the first user may reach team 0's servers on 8443. */
function withExtraRule(text: string): string {
  const policy = JSON.parse(text) as { acls: unknown[]; tagOwners?: Record<string, string[]> };
  policy.tagOwners = { ...(policy.tagOwners ?? {}), 'tag:team-0-server': policy.tagOwners?.['tag:team-0-server'] ?? [] };
  policy.acls = [...policy.acls, { action: 'accept', src: ['user1@example.com'], dst: ['tag:team-0-server:8443'] }];
  return JSON.stringify(policy);
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

/** Named cases for the bench runner. */
export const policyBenchCases: readonly { readonly name: string; readonly run: () => PolicyBenchResult }[] = [
  { name: 'policy/compile: segmented n=5000', run: () => benchPolicyCompile('segmented', 5000) },
  { name: 'policy/compile: segmented n=50000', run: () => benchPolicyCompile('segmented', 50000) },
  { name: 'policy/compile: fullmesh n=5000', run: () => benchPolicyCompile('fullmesh', 5000) },
  { name: 'policy/compile: fullmesh n=50000', run: () => benchPolicyCompile('fullmesh', 50000) },
];

/** Per-event cases for the bench runner. */
export const policyEventCases: readonly { readonly name: string; readonly run: () => PolicyEventResult }[] = [
  { name: 'policy/events: segmented n=5000', run: () => benchPolicyEvents('segmented', 5000) },
  { name: 'policy/events: segmented n=50000', run: () => benchPolicyEvents('segmented', 50000) },
  { name: 'policy/events: fullmesh n=10000', run: () => benchPolicyEvents('fullmesh', 10000, 50) },
  { name: 'policy/events: members n=10000', run: () => benchPolicyEvents('members', 10000, 50) },
];

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1] && process.argv[2] === 'events') {
  const policy = (process.argv[3] ?? 'segmented') as BenchPolicy;
  const nodes = Number(process.argv[4] ?? 5000);
  console.log(JSON.stringify(benchPolicyEvents(policy, nodes, Number(process.argv[5] ?? 200))));
} else if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const only = process.argv[2];
  for (const c of policyBenchCases) {
    if (only !== undefined && !c.name.endsWith(only)) continue;
    console.log(c.name, JSON.stringify(c.run()));
  }
}

// Property test of the incremental policy index: after every event of seeded random event
// sequences, the index updated in place answers every query exactly as an index built from
// scratch over the same facts, and the delta it returned equals diffIndexes() of the two
// from-scratch indexes around the event. HEADWAY_PROPERTY_ITERATIONS=n runs n sequences per
// seed group instead of the default.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPSet, IPSetBuilder } from '../../util/ip-set.js';
import { seededRandom } from '../../util/random.js';
import type * as tailcfg from '../../tailcfg/index.js';
import {
  PolicyIndex,
  PrimaryRouteTable,
  compilePolicyText,
  diffIndexes,
  type CompiledPolicy,
  type NodeFacts,
  type PolicyDelta,
  type UserFacts,
} from '../index.js';

const rng = seededRandom;

const TAG_OWNERS = {
  'tag:web': ['group:eng'],
  'tag:db': ['group:ops'],
  'tag:router': ['group:ops'],
  'tag:exit': ['group:ops'],
  'tag:ssh': ['group:ops'],
};
const GROUPS = {
  'group:eng': ['alice@example.com', 'bob@example.com', 'erin@example.com'],
  'group:ops': ['carol@example.com', 'dave@example.org'],
};

/** Policies the sequences switch between; together they use every selector kind the index binds. */
const POLICIES: readonly string[] = [
  // Groups, tags, hosts, CIDRs, autogroup:self, autogroup:internet, ssh, nodeAttrs.
  JSON.stringify({
    groups: GROUPS,
    tagOwners: TAG_OWNERS,
    hosts: { printer: '100.64.0.7', lab: '10.1.2.0/24' },
    acls: [
      { action: 'accept', src: ['group:eng'], dst: ['tag:web:80,443', 'printer:*'] },
      { action: 'accept', src: ['group:ops'], dst: ['*:*'] },
      { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] },
      { action: 'accept', src: ['tag:web'], proto: 'tcp', dst: ['tag:db:5432'] },
      { action: 'accept', src: ['group:eng', 'lab'], dst: ['lab:22', '10.1.0.0/16:443'] },
      { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:internet:*'] },
      { action: 'accept', src: ['100.64.0.0/29'], dst: ['tag:db:*'] },
    ],
    ssh: [
      { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self'], users: ['autogroup:nonroot'] },
      { action: 'check', src: ['group:ops'], dst: ['tag:db', 'tag:web'], users: ['root'] },
      { action: 'accept', src: ['group:eng'], dst: ['tag:ssh'], users: ['root', 'localpart:*@example.com'] },
    ],
    nodeAttrs: [
      { target: ['tag:db'], attr: ['disable-ipv4'] },
      { target: ['group:eng'], attr: ['funnel'] },
    ],
  }),
  // Full mesh.
  JSON.stringify({ acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] }),
  // All members, and tagged to tagged.
  JSON.stringify({
    tagOwners: TAG_OWNERS,
    groups: GROUPS,
    acls: [
      { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:member:*'] },
      { action: 'accept', src: ['autogroup:tagged'], dst: ['autogroup:tagged:22'] },
    ],
  }),
  // Grants: via routers and exit nodes, app capabilities, subnet destinations, postures.
  JSON.stringify({
    groups: GROUPS,
    tagOwners: TAG_OWNERS,
    postures: { 'posture:linux': ["node:os == 'linux'"] },
    grants: [
      { src: ['autogroup:member'], dst: ['10.1.0.0/16'], ip: ['*'], via: ['tag:router'] },
      { src: ['group:eng'], dst: ['autogroup:internet'], ip: ['*'], via: ['tag:exit'] },
      { src: ['autogroup:tagged'], dst: ['autogroup:tagged'], ip: ['tcp:22'] },
      { src: ['group:ops'], dst: ['tag:web'], app: { 'example.com/cap/admin': [{}] } },
      { src: ['alice@example.com'], dst: ['192.168.1.0/24', 'tag:db'], ip: ['*'] },
      { src: ['group:eng'], srcPosture: ['posture:linux'], dst: ['tag:ssh'], ip: ['tcp:22'] },
      { src: ['tag:router'], dst: ['autogroup:member'], ip: ['icmp:*'] },
    ],
    ssh: [{ action: 'accept', src: ['tag:web'], dst: ['tag:db'], users: ['admin'] }],
  }),
  // Routes as destinations and sources, including the tailnet range and the internet.
  JSON.stringify({
    groups: GROUPS,
    tagOwners: TAG_OWNERS,
    acls: [
      { action: 'accept', src: ['group:eng'], dst: ['10.0.0.0/8:*', '192.168.1.0/24:80'] },
      { action: 'accept', src: ['10.1.0.0/16'], dst: ['group:ops:*'] },
      { action: 'accept', src: ['autogroup:member'], dst: ['tag:web:443', 'autogroup:internet:443'] },
      { action: 'accept', src: ['tag:router', 'tag:exit'], dst: ['100.64.0.0/24:*'] },
    ],
    nodeAttrs: [{ target: ['*'], attr: ['randomize-client-port'] }],
  }),
];

const USERS: readonly UserFacts[] = [
  { id: 1, name: 'alice', email: 'alice@example.com', role: 'owner' },
  { id: 2, name: 'bob', email: 'bob@example.com', role: 'member' },
  { id: 3, name: 'carol', email: 'carol@example.com', role: 'admin' },
  { id: 4, name: 'dave', email: 'dave@example.org', role: 'member' },
  { id: 5, name: 'erin', email: 'erin@example.com', role: 'member' },
  { id: 6, name: 'frank', email: 'frank@example.net', role: 'member' },
];
const EMAILS = ['alice@example.com', 'bob@example.com', 'carol@example.com', 'dave@example.org', 'erin@example.com', 'frank@example.net', 'gina@example.com'];
const TAG_SETS: readonly (readonly string[])[] = [['tag:web'], ['tag:db'], ['tag:router'], ['tag:exit'], ['tag:ssh'], ['tag:web', 'tag:db'], ['tag:router', 'tag:exit']];
/** Routes a node may advertise: HA subnets shared by several routers, exit routes, the tailnet range. */
const ROUTES = ['10.1.0.0/16', '10.1.2.0/24', '192.168.1.0/24', '10.9.0.0/16', '0.0.0.0/0', '::/0', '100.64.0.0/28'];
const EXIT = new Set(['0.0.0.0/0', '::/0']);

interface World {
  readonly users: Map<number, UserFacts>;
  readonly nodes: Map<number, NodeFacts>;
  /** The HA election state the running index keeps; from-scratch builds start from a copy. */
  readonly table: PrimaryRouteTable;
  compiled: CompiledPolicy;
}

function served(n: NodeFacts): string[] {
  const advertised = new Set(n.advertisedRoutes);
  return [...new Set(n.approvedRoutes)].filter((r) => advertised.has(r) && !EXIT.has(r)).sort();
}

/** Keeps the reference election table as the running index must: routers in, out, on, off. */
function trackRouter(world: World, n: NodeFacts | null, id: number): void {
  const routes = n === null ? [] : served(n);
  if (routes.length === 0) world.table.remove(id);
  else world.table.upsert({ nodeId: id, order: n!.registeredOrder ?? id, online: n!.online, routes });
}

function fromScratch(world: World, shuffle: () => number): PolicyIndex {
  const nodes = [...world.nodes.values()];
  // Output must not depend on the order facts arrive in.
  for (let i = nodes.length - 1; i > 0; i--) {
    const j = Math.floor(shuffle() * (i + 1));
    [nodes[i], nodes[j]] = [nodes[j]!, nodes[i]!];
  }
  return new PolicyIndex(world.compiled, { users: [...world.users.values()], nodes, settings: {} }, { primaryRoutes: world.table.clone() });
}

function json(v: unknown): string {
  return JSON.stringify(v);
}

function sortedIds(ids: Iterable<number>): number[] {
  return [...ids].sort((a, b) => a - b);
}

function normalDelta(d: PolicyDelta): unknown {
  const map = (m: ReadonlyMap<number, readonly number[]>): [number, number[]][] =>
    [...m].filter(([, v]) => v.length > 0).map(([k, v]): [number, number[]] => [k, sortedIds(v)]).sort((a, b) => a[0] - b[0]);
  return {
    gained: map(d.gained),
    lost: map(d.lost),
    viewChanged: map(d.viewChanged),
    filterChanged: sortedIds(d.filterChanged),
    sshChanged: sortedIds(d.sshChanged),
    selfChanged: sortedIds(d.selfChanged),
    sourceCapsChanged: sortedIds(d.sourceCapsChanged),
  };
}

const WIRE = { selfAsWildcard: true } as const;
const CAPS = { selfAsWildcard: true, sourceCaps: true } as const;

const ALL = IPSet.tryParse('0.0.0.0/0')!.union(IPSet.tryParse('::/0')!);

/**
 * What a filter accepts, as the receiving client evaluates it: per (protocols, destination,
 * ports) and per capability grant, the set of source addresses. `cap:` sources resolve the
 * way the client resolves them: to the addresses of the receiver's peers whose CapMap holds
 * the capability. The receiver's own addresses are left out (its own traffic never meets the
 * filter).
 */
function acceptance(index: PolicyIndex, receiver: number, filter: readonly tailcfg.FilterRule[]): string {
  const capHolders = new Map<string, string[]>();
  for (const peer of index.peersOf(receiver)) {
    const facts = index.node(peer);
    for (const cap of index.sourceCapsOf(peer)) {
      let list = capHolders.get(cap);
      if (list === undefined) capHolders.set(cap, (list = []));
      if (facts.ipv4 !== null) list.push(facts.ipv4);
      if (facts.ipv6 !== null) list.push(facts.ipv6);
    }
  }
  const self = new IPSetBuilder();
  const me = index.node(receiver);
  if (me.ipv4 !== null) self.tryAddText(me.ipv4);
  if (me.ipv6 !== null) self.tryAddText(me.ipv6);
  const selfSet = self.build();
  const sources = new Map<string, IPSetBuilder>();
  const add = (key: string, srcs: readonly string[]): void => {
    let b = sources.get(key);
    if (b === undefined) sources.set(key, (b = new IPSetBuilder()));
    for (const s of srcs) {
      if (s === '*') b.addSet(ALL);
      else if (s.startsWith('cap:')) for (const ip of capHolders.get(s.slice(4)) ?? []) b.tryAddText(ip);
      else assert.ok(b.tryAddText(s), `unparsable source ${s}`);
    }
  };
  for (const rule of filter) {
    for (const d of rule.DstPorts ?? []) add(`${(rule.IPProto ?? []).join(',')}|${d.IP}|${d.Ports.First}-${d.Ports.Last}`, rule.SrcIPs);
    for (const g of rule.CapGrant ?? []) for (const dst of g.Dsts) add(`grant|${dst}|${json(g.CapMap)}`, rule.SrcIPs);
  }
  return json(
    [...sources]
      .map(([k, b]) => [k, b.build().difference(selfSet).toStrings().join(' ')])
      .filter(([, v]) => v !== '')
      .sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
  );
}

/** The cap: form accepts exactly what the address form does, for every node. */
function checkCapForm(index: PolicyIndex): string | null {
  for (const id of index.nodeIds()) {
    const byAddress = acceptance(index, id, index.filterFor(id, WIRE));
    const byCap = acceptance(index, id, index.filterFor(id, CAPS));
    if (byAddress !== byCap) return `cap: form of node ${id} accepts other packets:\n  address form ${byAddress}\n  cap form     ${byCap}\n  filter ${json(index.filterFor(id, CAPS))}`;
  }
  return null;
}

/** The O(1) keys: equal keys name equal values. */
function checkKeys(inc: PolicyIndex): string | null {
  const byKey = new Map<string, { id: number; filter: string }>();
  const byWireKey = new Map<string, { id: number; filter: string }>();
  const byCapKey = new Map<string, { id: number; filter: string }>();
  for (const id of inc.nodeIds()) {
    const capKey = inc.filterKey(id, CAPS);
    const capFilter = json(inc.filterFor(id, CAPS));
    const capOther = byCapKey.get(capKey);
    if (capOther === undefined) byCapKey.set(capKey, { id, filter: capFilter });
    else if (capOther.filter !== capFilter) return `cap filterKey ${capKey} names different filters of nodes ${capOther.id} and ${id}`;
    const key = inc.filterKey(id);
    const filter = json(inc.filterFor(id));
    const other = byKey.get(key);
    if (other === undefined) byKey.set(key, { id, filter });
    else if (other.filter !== filter) return `filterKey ${key} names different filters of nodes ${other.id} and ${id}`;
    const wireKey = inc.filterKey(id, WIRE);
    const wireFilter = json(inc.filterFor(id, WIRE));
    const wireOther = byWireKey.get(wireKey);
    if (wireOther === undefined) byWireKey.set(wireKey, { id, filter: wireFilter });
    else if (wireOther.filter !== wireFilter) return `wire filterKey ${wireKey} names different filters of nodes ${wireOther.id} and ${id}`;
    const views = new Map<string, string>();
    for (const viewer of inc.peersOf(id)) {
      const viewKey = inc.peerViewKey(viewer, id);
      const view = json(inc.peerView(viewer, id));
      const seen = views.get(viewKey);
      if (seen === undefined) views.set(viewKey, view);
      else if (seen !== view) return `peerViewKey ${viewKey} of peer ${id} names different views`;
    }
  }
  return null;
}

/** Every query of the two indexes, compared; returns the first difference found. */
function compareIndexes(inc: PolicyIndex, ref: PolicyIndex): string | null {
  const ids = sortedIds(ref.nodeIds());
  if (json(sortedIds(inc.nodeIds())) !== json(ids)) return `nodeIds ${json(sortedIds(inc.nodeIds()))} != ${json(ids)}`;
  for (const id of ids) {
    const f = [json(inc.filterFor(id)), json(ref.filterFor(id))];
    if (f[0] !== f[1]) return `filterFor(${id}):\n  got  ${f[0]}\n  want ${f[1]}`;
    const fc = [json(inc.filterFor(id, CAPS)), json(ref.filterFor(id, CAPS))];
    if (fc[0] !== fc[1]) return `filterFor(${id}, caps):\n  got  ${fc[0]}\n  want ${fc[1]}`;
    const sc = [json(inc.sourceCapsOf(id)), json(ref.sourceCapsOf(id))];
    if (sc[0] !== sc[1]) return `sourceCapsOf(${id}):\n  got  ${sc[0]}\n  want ${sc[1]}`;
    const s = [json(inc.sshPolicyFor(id)), json(ref.sshPolicyFor(id))];
    if (s[0] !== s[1]) return `sshPolicyFor(${id}):\n  got  ${s[0]}\n  want ${s[1]}`;
    const v = [json(inc.selfView(id)), json(ref.selfView(id))];
    if (v[0] !== v[1]) return `selfView(${id}):\n  got  ${v[0]}\n  want ${v[1]}`;
    const p = [json(sortedIds(inc.peersOf(id))), json(sortedIds(ref.peersOf(id)))];
    if (p[0] !== p[1]) {
      const got = new Set(inc.peersOf(id));
      const want = new Set(ref.peersOf(id));
      const disputed = ids.filter((i) => got.has(i) !== want.has(i)).map((i) => json(ref.node(i)));
      return `peersOf(${id}): got ${p[0]} want ${p[1]}; node ${json(ref.node(id))}; disputed ${disputed.join(', ')}; policy ${ref.compiled.policy.source?.file ?? ''}; classes ${json(ids.map((i) => [i, inc.classOf(i), ref.classOf(i)]))}`;
    }
    for (const other of ids) {
      if (inc.sees(id, other) !== ref.sees(id, other)) return `sees(${id}, ${other}) = ${inc.sees(id, other)}`;
      // seesIfKnown reads class ids by node id, kept apart from the records: it must agree.
      if (inc.seesIfKnown(id, other) !== ref.sees(id, other)) return `seesIfKnown(${id}, ${other}) = ${inc.seesIfKnown(id, other)}`;
    }
    const absent = (ids[ids.length - 1] ?? 0) + 1;
    if (inc.seesIfKnown(id, absent) || inc.seesIfKnown(absent, id)) return `seesIfKnown(${id}, ${absent}) is true for a node not in the index`;
    for (const peer of ref.peersOf(id)) {
      const pv = [json(inc.peerView(id, peer)), json(ref.peerView(id, peer))];
      if (pv[0] !== pv[1]) return `peerView(${id}, ${peer}):\n  got  ${pv[0]}\n  want ${pv[1]}`;
    }
  }
  return null;
}

type EventKind = 'join' | 'leave' | 'retag' | 'move' | 'routes' | 'online' | 'userAdd' | 'userRemove' | 'email' | 'policy';
const WEIGHTS: readonly [EventKind, number][] = [
  ['join', 6],
  ['leave', 3],
  ['retag', 3],
  ['move', 2],
  ['routes', 3],
  ['online', 4],
  ['userAdd', 1],
  ['userRemove', 1],
  ['email', 1],
  ['policy', 2],
];
const TOTAL_WEIGHT = WEIGHTS.reduce((s, [, w]) => s + w, 0);

class Sequence {
  readonly #random: () => number;
  readonly world: World;
  readonly compiled: CompiledPolicy[];
  #nextNode = 1;
  #nextUser = 7;
  readonly #freeV4: number[] = [];

  constructor(seed: number, compiled: CompiledPolicy[]) {
    this.#random = rng(seed);
    this.compiled = compiled;
    this.world = { users: new Map(), nodes: new Map(), table: new PrimaryRouteTable(), compiled: compiled[0]! };
    for (let i = 1; i <= 60; i++) this.#freeV4.push(i);
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.#random() * list.length)]!;
  }

  chance(p: number): boolean {
    return this.#random() < p;
  }

  /** Facts for a node, new or changed; `base` keeps its id and addresses. */
  nodeFacts(base: NodeFacts | null): NodeFacts {
    const users = [...this.world.users.keys()];
    const id = base?.id ?? this.#nextNode++;
    let ipv4 = base?.ipv4 ?? null;
    if (base === null && this.#freeV4.length > 0) {
      const i = Math.floor(this.#random() * this.#freeV4.length);
      ipv4 = `100.64.0.${this.#freeV4.splice(i, 1)[0]!}`;
    }
    const tags = this.chance(0.35) ? [...this.pick(TAG_SETS)] : [];
    const routes = tags.length > 0 && this.chance(0.6) ? this.#routes() : base !== null && this.chance(0.3) ? [...base.advertisedRoutes] : [];
    const approved = routes.filter(() => this.chance(0.8));
    return {
      id,
      name: base?.name ?? `node-${id}`,
      ipv4,
      ipv6: base?.ipv6 ?? (this.chance(0.9) ? `fd7a:115c:a1e0::${id.toString(16)}` : null),
      userId: users.length > 0 ? this.pick(users) : null,
      tags,
      advertisedRoutes: routes,
      approvedRoutes: approved,
      online: base?.online ?? this.chance(0.8),
      registeredOrder: id,
      postureAttributes: this.chance(0.5) ? { 'node:os': this.pick(['linux', 'macos']) } : {},
    };
  }

  #routes(): string[] {
    const out = new Set<string>();
    const n = 1 + Math.floor(this.#random() * 3);
    for (let i = 0; i < n; i++) {
      const r = this.pick(ROUTES);
      out.add(r);
      if (r === '0.0.0.0/0') out.add('::/0');
    }
    return [...out];
  }

  /** One random event, applied to the world and to the index; returns its label and delta. */
  step(index: PolicyIndex): { label: string; delta: PolicyDelta } {
    const w = this.world;
    let roll = this.#random() * TOTAL_WEIGHT;
    let kind: EventKind = 'join';
    for (const [k, weight] of WEIGHTS) {
      if ((roll -= weight) < 0) {
        kind = k;
        break;
      }
    }
    const nodeIds = [...w.nodes.keys()];
    if (nodeIds.length === 0 || (nodeIds.length < 10 && kind === 'leave')) kind = 'join';
    switch (kind) {
      case 'join':
      case 'retag':
      case 'move':
      case 'routes': {
        const base = kind === 'join' ? null : w.nodes.get(this.pick(nodeIds))!;
        let n = this.nodeFacts(base);
        if (base !== null && kind === 'retag') n = { ...base, tags: n.tags };
        if (base !== null && kind === 'move') n = { ...base, userId: n.userId };
        if (base !== null && kind === 'routes') {
          const routes = this.#routes();
          n = { ...base, advertisedRoutes: routes, approvedRoutes: routes.filter(() => this.chance(0.8)) };
        }
        w.nodes.set(n.id, n);
        trackRouter(w, n, n.id);
        return { label: `${kind} ${json(n)}`, delta: index.upsertNode(n) };
      }
      case 'leave': {
        const id = this.pick(nodeIds);
        const n = w.nodes.get(id)!;
        w.nodes.delete(id);
        if (n.ipv4 !== null) this.#freeV4.push(Number(n.ipv4.split('.')[3]));
        trackRouter(w, null, id);
        return { label: `leave ${id}`, delta: index.removeNode(id) };
      }
      case 'online': {
        // Mostly routers: their online state moves HA primaries.
        const routers = nodeIds.filter((id) => w.nodes.get(id)!.approvedRoutes.length > 0);
        const id = routers.length > 0 && this.chance(0.75) ? this.pick(routers) : this.pick(nodeIds);
        const n = { ...w.nodes.get(id)!, online: !w.nodes.get(id)!.online };
        w.nodes.set(id, n);
        if (w.table.router(id) !== undefined) w.table.setOnline(id, n.online);
        return { label: `online ${id} ${n.online}`, delta: index.setOnline(id, n.online) };
      }
      case 'userAdd': {
        const id = this.#nextUser++;
        const u: UserFacts = { id, name: `user${id}`, email: this.pick(EMAILS).replace('@', `${id}@`), role: 'member' };
        w.users.set(id, u);
        return { label: `userAdd ${json(u)}`, delta: index.upsertUser(u) };
      }
      case 'userRemove': {
        // Users normally leave without devices; now and then one still owns some.
        const users = [...w.users.keys()].filter((u) => w.users.get(u)!.role !== 'owner');
        if (users.length === 0) return { label: 'userRemove none', delta: index.removeUser(-1) };
        const idle = users.filter((u) => ![...w.nodes.values()].some((n) => n.userId === u));
        const id = idle.length > 0 && this.chance(0.8) ? this.pick(idle) : this.pick(users);
        w.users.delete(id);
        return { label: `userRemove ${id}`, delta: index.removeUser(id) };
      }
      case 'email': {
        const u = w.users.get(this.pick([...w.users.keys()]))!;
        // The owner's domain is the tailnet's: policies naming it stay valid.
        const email = u.role === 'owner' ? this.pick(['alice@example.com', 'boss@example.com']) : this.pick(EMAILS);
        const changed: UserFacts = { ...u, email };
        w.users.set(u.id, changed);
        return { label: `email ${json(changed)}`, delta: index.upsertUser(changed) };
      }
      case 'policy': {
        w.compiled = this.pick(this.compiled);
        return { label: `policy ${this.compiled.indexOf(w.compiled)}`, delta: index.replacePolicy(w.compiled) };
      }
    }
  }

  /** Starts the world with some users and nodes, built directly. */
  seed(nodeCount: number): void {
    for (const u of USERS) this.world.users.set(u.id, u);
    for (let i = 0; i < nodeCount; i++) {
      const n = this.nodeFacts(null);
      this.world.nodes.set(n.id, n);
      trackRouter(this.world, n, n.id);
    }
  }
}

function iterations(fallback: number): number {
  const env = Number(process.env['HEADWAY_PROPERTY_ITERATIONS']);
  return Number.isInteger(env) && env > 0 ? env : fallback;
}

/** For a wrong filterChanged: the filters before and after of the nodes in dispute. */
function explainFilters(delta: PolicyDelta, before: PolicyIndex, after: PolicyIndex): string {
  const want = new Set(diffIndexes(before, after).filterChanged);
  const got = new Set(delta.filterChanged);
  const disputed = [...new Set([...want, ...got])].filter((id) => want.has(id) !== got.has(id)).slice(0, 2);
  const capsWant = new Set(diffIndexes(before, after).sourceCapsChanged);
  const capsGot = new Set(delta.sourceCapsChanged);
  const capsDisputed = [...new Set([...capsWant, ...capsGot])].filter((id) => capsWant.has(id) !== capsGot.has(id)).slice(0, 2);
  return (
    disputed.map((id) => `\n  node ${id} filter before ${before.hasNode(id) ? json(before.filterFor(id)) : '-'}\n  node ${id} filter after  ${json(after.filterFor(id))}`).join('') +
    capsDisputed.map((id) => `\n  node ${id} source caps before ${json(before.sourceCapsOf(id))}\n  node ${id} source caps after  ${json(after.sourceCapsOf(id))}`).join('')
  );
}

/** Runs one seeded sequence; fails with the event history on the first divergence. */
function runSequence(seed: number, compiled: CompiledPolicy[], steps: number, startNodes: number): void {
  const seq = new Sequence(seed, compiled);
  seq.world.compiled = compiled[seed % compiled.length]!;
  seq.seed(startNodes);
  const shuffle = rng(seed ^ 0x5eed);
  let ref = fromScratch(seq.world, shuffle);
  const index = fromScratch(seq.world, shuffle);
  const history: string[] = [];
  for (let i = 0; i < steps; i++) {
    const keysBefore = new Map(index.nodeIds().map((id) => [id, index.filterKey(id)]));
    const wireBefore = new Map(index.nodeIds().map((id) => [id, { key: index.filterKey(id, WIRE), filter: json(index.filterFor(id, WIRE)) }]));
    const capsBefore = new Map(index.nodeIds().map((id) => [id, { key: index.filterKey(id, CAPS), filter: json(index.filterFor(id, CAPS)) }]));
    const { label, delta } = seq.step(index);
    history.push(label);
    const next = fromScratch(seq.world, shuffle);
    const where = `seed ${seed}, step ${i}; events:\n  ${history.slice(-6).join('\n  ')}`;
    const diff = compareIndexes(index, next) ?? checkKeys(index) ?? checkCapForm(index);
    if (diff !== null) assert.fail(`${where}\n${diff}`);
    for (const id of delta.filterChanged) {
      if (keysBefore.has(id) && keysBefore.get(id) === index.filterKey(id)) assert.fail(`${where}\nfilter of node ${id} changed but its filterKey ${keysBefore.get(id)} did not`);
    }
    // A changed wire filter must change its key (the mapper caches by key).
    for (const [id, before] of wireBefore) {
      if (!index.hasNode(id)) continue;
      if (before.filter !== json(index.filterFor(id, WIRE)) && before.key === index.filterKey(id, WIRE)) {
        assert.fail(`${where}\nwire filter of node ${id} changed but its key ${before.key} did not`);
      }
    }
    for (const [id, before] of capsBefore) {
      if (!index.hasNode(id)) continue;
      if (before.filter !== json(index.filterFor(id, CAPS)) && before.key === index.filterKey(id, CAPS)) {
        assert.fail(`${where}\ncap filter of node ${id} changed but its key ${before.key} did not`);
      }
    }
    const got = json(normalDelta(delta));
    const want = json(normalDelta(diffIndexes(ref, next)));
    if (got !== want) assert.fail(`${where}\ndelta differs from the from-scratch diff:\n  got  ${got}\n  want ${want}${explainFilters(delta, ref, next)}`);
    ref = next;
  }
}

describe('incremental policy index (property)', () => {
  const compiled = POLICIES.map((text, i) => compilePolicyText(text, { file: `policy ${i}` }));
  const sequences = iterations(12);
  it(`equals a from-scratch build after every event (${sequences} sequences of 60 events)`, () => {
    const only = Number(process.env['HEADWAY_PROPERTY_SEED']);
    for (let s = 0; s < sequences; s++) if (!(only > 0) || only === 1000 + s) runSequence(1000 + s, compiled, 60, 10 + ((s * 7) % 25));
  });
});

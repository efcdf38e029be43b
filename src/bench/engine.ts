// The engine benchmark: a whole tailnet in one process, no network. It loads N nodes into a
// real SQLite store, starts the tailnet's pipeline (state -> policy index -> mapper -> session
// hub) with one attached session per node, then times events. An event's time runs from the
// state command until the bytes of every recipient's frame are ready (compressed, framed,
// handed to the transport), which is the work the server does for it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../config/index.js';
import type { FrameSink } from '../control/index.js';
import { DnsConfigSource } from '../dns/index.js';
import { silentLogger } from '../log/index.js';
import type { MachinePublicKey, NodePublicKey } from '../key/index.js';
import type { Node, NodeId, UserId } from '../model/index.js';
import { TailnetPipeline } from '../server/index.js';
import { ServerState, type TailnetState } from '../state/index.js';
import { openStore, type Store } from '../store/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { engineWorkload, fakeKeyHex, seededRandom, type EnginePolicy } from './workload.js';
import { quantile, round } from './figures.js';

export type EngineEvent = 'endpoint' | 'join' | 'leave' | 'retag' | 'route' | 'policy_edit';
export const ENGINE_EVENTS: readonly EngineEvent[] = ['endpoint', 'join', 'leave', 'retag', 'route', 'policy_edit'];

export interface EngineOptions {
  policy: EnginePolicy;
  nodes: number;
  seed?: number;
  /** Capability version of every attached session (default 130: Tailscale 1.90). */
  capVersion?: number;
  /** Repetitions per event kind. */
  reps?: Partial<Record<EngineEvent, number>>;
  /**
   * When set, also times `endpoint_cold`: endpoint events that each start after a sweep over a
   * buffer of this many MiB, which pushes the engine's data out of the CPU caches (and the TLB)
   * the way other work between two changes does on a busy server.
   */
  coldSweepMb?: number;
  /** Repetitions of the cold endpoint event (default 300). */
  coldReps?: number;
  /** Progress lines (not part of the result). */
  progress?: (line: string) => void;
}

export interface EventStats {
  readonly median_us: number;
  readonly p99_us: number;
  /** Median number of sessions that received a frame. */
  readonly recipients: number;
  /** Median total bytes of those frames. */
  readonly bytes: number;
  readonly samples: number;
}

export interface EngineResult {
  readonly scenario: 'engine';
  readonly policy: EnginePolicy;
  readonly nodes: number;
  readonly build_ms: number;
  readonly rss_mb: number;
  readonly load_ms: number;
  readonly events: Readonly<Record<EngineEvent, EventStats>>;
  /** Endpoint events that start with cold caches (only with coldSweepMb). */
  readonly endpoint_cold?: EventStats;
}

const DEFAULT_REPS: Record<EngineEvent, number> = { endpoint: 1000, join: 100, leave: 100, retag: 60, route: 40, policy_edit: 5 };
/** Cold endpoint events (each after a sweep of the caches). */
const COLD_REPS = 300;
/** Joins (and leaves) before the timed ones: the JIT and the caches warm up as for endpoints. */
const WARMUP_JOINS = 10;
const WARMUP_EVENTS = 200;
const ACTOR = { name: 'bench' };

const STATIC_DERP: tailcfg.DERPMap = {
  Regions: { '999': { RegionID: 999, RegionCode: 'bench', RegionName: 'Bench', Nodes: [{ Name: '999a', RegionID: 999, HostName: '127.0.0.1', DERPPort: 8080, STUNPort: 3478 }] } },
};

interface SinkCounters { frames: number; bytes: number }

export async function runEngine(options: EngineOptions): Promise<EngineResult> {
  const log = options.progress ?? (() => {});
  const seed = options.seed ?? 42;
  const capVersion = options.capVersion ?? 130;
  const reps = { ...DEFAULT_REPS, ...options.reps };
  const random = seededRandom(seed ^ 0x5eed);
  const workload = engineWorkload(options.policy, options.nodes, seed);
  const dir = await mkdtemp(join(tmpdir(), 'headway-bench-'));
  let store: Store | null = null;
  let state: ServerState | null = null;
  let pipeline: TailnetPipeline | null = null;
  try {
    const config = configFromObject({ data_dir: dir, log: { level: 'silent' } }, { source: 'bench', baseDir: dir });
    store = await openStore(config);
    const loadStart = performance.now();
    await populate(store, workload.users, workload.nodes, random, workload.policyText);
    state = await ServerState.load(store, { flushIntervalMs: 0 });
    const loadMs = performance.now() - loadStart;
    log(`loaded ${workload.nodes.length} nodes in ${Math.round(loadMs)} ms`);

    const tailnet = state.defaultTailnet;
    const dns = new DnsConfigSource({ magicDns: true, baseDomain: 'bench.internal', overrideLocalDns: false, globalNameservers: [], splitNameservers: {}, searchDomains: [], extraRecords: [] });
    const derp = { current: () => STATIC_DERP, version: 1 };
    global.gc?.();
    const buildStart = performance.now();
    pipeline = new TailnetPipeline(tailnet, { dns, derp, logger: silentLogger() }, {
      coalesceMs: 1_000_000, keepAliveMs: 3_600_000, nodeExpiryMs: 0, ephemeralInactivityMs: 3_600_000, offlineGraceMs: 1_000,
    });
    // Only the sinks written since the last reset are visited again: walking every session's
    // counters around each event would sweep the CPU caches with N objects the engine never
    // reads, and time that (not the event) at large N.
    let written: SinkCounters[] = [];
    const attach = (id: NodeId) => {
      const c: SinkCounters = { frames: 0, bytes: 0 };
      const sink: FrameSink = {
        write: (frame) => { if (c.frames++ === 0) written.push(c); c.bytes += frame.length; return true; },
        onceDrain: () => {},
        end: () => {},
      };
      pipeline!.hub.attach(id, capVersion, sink);
    };
    for (const node of tailnet.nodes()) attach(node.id);
    const buildMs = performance.now() - buildStart;
    global.gc?.();
    const rssMb = process.memoryUsage().rss / 1048576;
    log(`pipeline built in ${Math.round(buildMs)} ms, rss ${Math.round(rssMb)} MB`);

    const measure = async (fn: () => Promise<unknown>): Promise<{ us: number; recipients: number; bytes: number }> => {
      for (const c of written) { c.frames = 0; c.bytes = 0; }
      written = [];
      const t0 = performance.now();
      await fn();
      pipeline!.hub.flushNow();
      const us = (performance.now() - t0) * 1000;
      let bytes = 0;
      for (const c of written) bytes += c.bytes;
      return { us, recipients: written.length, bytes };
    };

    const samples: Record<EngineEvent, Array<{ us: number; recipients: number; bytes: number }>> = { endpoint: [], join: [], leave: [], retag: [], route: [], policy_edit: [] };
    const ids = [...tailnet.nodes()].map((n) => n.id);
    const pick = () => ids[Math.floor(random() * ids.length)]!;

    // endpoint: a device moves networks. The first events only warm the JIT and caches up.
    // A forced full GC (the report runs with --expose-gc) goes before the warm-up, never between
    // it and the timed events: timed right after one, endpoint events at 100,000 nodes ran 2-2.5x
    // slower than in steady state (median 52-57 µs against 22-23 µs with a warm-up after it).
    global.gc?.();
    for (let i = 0; i < WARMUP_EVENTS; i++) await tailnet.applyLiveUpdate(pick(), { endpoints: [`198.51.100.250:${1000 + i}`] });
    pipeline.hub.flushNow();
    // Event i moves a random node to two new endpoints; `net` keeps warm and cold events apart.
    const endpointEvent = (i: number, net: number) => {
      const id = pick();
      const port = 1024 + Math.floor(random() * 60000);
      return () => tailnet.applyLiveUpdate(id, { endpoints: [`198.51.100.${i % 250}:${port}`, `10.${net}.${i % 250}.7:${port}`] });
    };
    for (let i = 0; i < reps.endpoint; i++) samples.endpoint.push(await measure(endpointEvent(i, 1)));
    log('endpoint done');

    const cold: Array<{ us: number; recipients: number; bytes: number }> = [];
    if (options.coldSweepMb !== undefined && options.coldSweepMb > 0) {
      const sweep = new CacheSweep(options.coldSweepMb);
      for (let i = 0; i < (options.coldReps ?? COLD_REPS); i++) {
        const event = endpointEvent(i, 2);
        sweep.run();
        cold.push(await measure(event));
      }
      log(`endpoint_cold done (sweep ${options.coldSweepMb} MiB, checksum ${sweep.checksum})`);
    }

    // join and leave: a user device registers, then is deleted (N stays the same). Warm-up
    // joins first: the address allocator seeks its cursor after the bulk load, and the JIT.
    const users = [...tailnet.users()];
    const joinOnce = async (): Promise<Node> => {
      const user = users[Math.floor(random() * users.length)]!;
      return tailnet.addNode({
        machineKey: `mkey:${fakeKeyHex(random)}` as MachinePublicKey,
        nodeKey: `nodekey:${fakeKeyHex(random)}` as NodePublicKey,
        hostinfo: { Hostname: `joiner-${Math.floor(random() * 1e9)}`, OS: 'linux' },
        userId: user.id as UserId,
        keyExpiry: null,
        ephemeral: false,
        registerMethod: 'cli',
      }, ACTOR);
    };
    global.gc?.();
    for (let i = 0; i < WARMUP_JOINS; i++) await tailnet.deleteNode((await joinOnce()).id, ACTOR);
    pipeline.hub.flushNow();
    for (let i = 0; i < Math.max(reps.join, reps.leave); i++) {
      let joined: Node | null = null;
      const joinSample = await measure(async () => { joined = await joinOnce(); });
      if (i < reps.join) samples.join.push(joinSample);
      const leaveSample = await measure(() => tailnet.deleteNode(joined!.id, ACTOR));
      if (i < reps.leave) samples.leave.push(leaveSample);
    }
    log('join/leave done');

    // retag: a tagged server moves to another team's tag (segmented), or a device is tagged and
    // untagged (fullmesh, members).
    for (let i = 0; i < reps.retag; i++) {
      const node = retagSubject(tailnet, options.policy, random);
      const tags = nextTags(node, options.policy, random);
      samples.retag.push(await measure(() => tailnet.updateNode(node.id, { tags }, ACTOR)));
    }
    log('retag done');

    // route: an admin approves a subnet route a server advertises, then withdraws the approval
    // (both timed). Under a `*` source the served routes are part of every filter, so there
    // every node hears; elsewhere only the router's viewers do.
    for (let i = 0; i < reps.route; i += 2) {
      const node = retagSubject(tailnet, options.policy, random);
      const prefix = `10.${200 + ((i / 2) % 50)}.${Math.floor(i / 100)}.0/24`;
      await tailnet.applyLiveUpdate(node.id, { hostinfo: { ...node.hostinfo, RoutableIPs: [prefix] } });
      pipeline.hub.flushNow();
      samples.route.push(await measure(() => tailnet.updateNode(node.id, { approvedRoutes: [prefix] }, ACTOR)));
      if (i + 1 < reps.route) samples.route.push(await measure(() => tailnet.updateNode(node.id, { approvedRoutes: [] }, ACTOR)));
    }
    log('route done');

    for (let i = 0; i < reps.policy_edit; i++) {
      const text = i % 2 === 0 ? workload.editedPolicyText : workload.policyText;
      samples.policy_edit.push(await measure(() => tailnet.setPolicy(text, ACTOR, { persist: true })));
    }
    log('policy_edit done');

    const events = Object.fromEntries(ENGINE_EVENTS.map((e) => [e, summarise(samples[e])])) as Record<EngineEvent, EventStats>;
    return {
      scenario: 'engine',
      policy: options.policy,
      nodes: workload.nodes.length,
      build_ms: round(buildMs),
      rss_mb: Math.round(rssMb),
      load_ms: Math.round(loadMs),
      events,
      ...(cold.length > 0 ? { endpoint_cold: summarise(cold) } : {}),
    };
  } finally {
    pipeline?.close();
    await state?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function populate(store: Store, users: EngineWorkloadUsers, nodes: EngineWorkloadNodes, random: () => number, policyText: string): Promise<void> {
  const tailnet = await store.read.tailnets.getByName('default');
  if (tailnet === undefined) throw new Error('bench: the default tailnet is missing');
  await store.transaction(async (tx) => {
    const userIds = new Map<number, UserId>();
    for (const u of users) {
      const created = await tx.users.create({ tailnetId: tailnet.id, name: u.name, email: u.email });
      userIds.set(u.id, created.id);
    }
    for (const n of nodes) {
      await tx.nodes.create({
        tailnetId: tailnet.id,
        machineKey: `mkey:${fakeKeyHex(random)}` as MachinePublicKey,
        nodeKey: `nodekey:${fakeKeyHex(random)}` as NodePublicKey,
        discoKey: null,
        ipv4: n.ipv4,
        ipv6: n.ipv6,
        hostname: n.name,
        givenName: n.name,
        userId: n.userId === null ? null : (userIds.get(n.userId) ?? null),
        tags: [...n.tags].sort(),
        advertisedRoutes: [...n.advertisedRoutes],
        approvedRoutes: [...n.approvedRoutes],
        endpoints: [`203.0.113.${n.id % 250}:41641`],
        hostinfo: { Hostname: n.name, OS: 'linux', NetInfo: { PreferredDERP: 999 } },
        keyExpiry: null,
        ephemeral: false,
        registerMethod: 'cli',
        preAuthKeyId: null,
      });
    }
    await tx.policies.save(tailnet.id, policyText, 'bench');
  });
}

/**
 * Writes one byte per cache line of a buffer larger than the caches: afterwards what the
 * engine reads next comes from memory. The checksum is read so the loop is not optimised away.
 */
class CacheSweep {
  readonly #buffer: Uint8Array;
  checksum = 0;

  constructor(mb: number) {
    this.#buffer = new Uint8Array(Math.round(mb * 1048576));
  }

  run(): void {
    const buffer = this.#buffer;
    let sum = this.checksum;
    for (let i = 0; i < buffer.length; i += 64) {
      sum = (sum + buffer[i]!) | 0;
      buffer[i] = sum & 0xff;
    }
    this.checksum = sum;
  }
}

type EngineWorkloadUsers = ReturnType<typeof engineWorkload>['users'];
type EngineWorkloadNodes = ReturnType<typeof engineWorkload>['nodes'];

function retagSubject(tailnet: TailnetState, policy: EnginePolicy, random: () => number): Node {
  const nodes = [...tailnet.nodes()];
  const wantTagged = policy === 'segmented';
  for (let tries = 0; tries < 10_000; tries++) {
    const node = nodes[Math.floor(random() * nodes.length)]!;
    if (wantTagged ? node.tags.some((t) => t.endsWith('-server')) : node.userId !== null) return node;
  }
  return nodes[0]!;
}

function nextTags(node: Node, policy: EnginePolicy, random: () => number): string[] {
  if (policy === 'segmented') {
    const team = Math.floor(random() * 10);
    return [`tag:team-${team}-server`];
  }
  return node.tags.length > 0 ? [] : ['tag:bench'];
}

function summarise(samples: readonly { us: number; recipients: number; bytes: number }[]): EventStats {
  if (samples.length === 0) return { median_us: 0, p99_us: 0, recipients: 0, bytes: 0, samples: 0 };
  const times = samples.map((s) => s.us).sort((a, b) => a - b);
  const recipients = samples.map((s) => s.recipients).sort((a, b) => a - b);
  const bytes = samples.map((s) => s.bytes).sort((a, b) => a - b);
  return {
    median_us: round(quantile(times, 0.5)),
    p99_us: round(quantile(times, 0.99)),
    recipients: quantile(recipients, 0.5),
    bytes: quantile(bytes, 0.5),
    samples: samples.length,
  };
}


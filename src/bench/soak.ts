// The soak (issue 17, item 6): Headway in its own process (network-server.js, logging warnings
// and errors as JSON on stderr), N devices of our real protocol client in this one, for M rounds
// of one minute each. Every round starts with a policy edit over the admin API (alternating
// between the workload's policy and its edited form, which changes who sees whom), then runs
// endpoint changes, quick reconnects and leaves (devices gone past the offline grace, joining
// again later), and ends with every device back and a check: each device's peer set is exactly
// what the policy says, and it has seen every peer's latest endpoint. The server's RSS is taken
// at the same point of every round, and its heap after a full collection (SIGUSR2); after
// warm-up the heap must stay within 5% (memory-drift.ts says how that is read).
// Every loop is bounded in count and in time.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient, fetchServerKey, SharedDecodeCache, type MapStream } from '../client/index.js';
import { compilePolicyText, PolicyIndex } from '../policy/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { rssMb } from './proc-stats.js';
import { spawnServer } from './network.js';
import { benchDiscoKey, benchHostinfo, benchMachineKey, benchNodeKey } from './network-server.js';
import { engineWorkload, seededRandom, type EnginePolicy } from './workload.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { memoryDrift } from './memory-drift.js';

export interface SoakOptions {
  policy: EnginePolicy;
  nodes: number;
  /** Rounds of `roundS` seconds (a policy edit each). */
  minutes: number;
  /** Length of a round; 60 s unless a quick check wants less. */
  roundS?: number;
  seed?: number;
  /** Endpoint changes per second. */
  churnPerSecond?: number;
  /** Devices that reconnect at once (within the offline grace), per round. */
  reconnectsPerRound?: number;
  /** Devices that leave for longer than the offline grace and join again, per round. */
  leavesPerRound?: number;
  progress?: (line: string) => void;
}

export interface SoakRound {
  readonly round: number;
  readonly policy: 'base' | 'edited';
  readonly changes: number;
  readonly reconnects: number;
  readonly leaves: number;
  readonly joins: number;
  /** Devices whose peer set differs from the policy's at the check. */
  readonly wrong_peer_sets: number;
  /** (device, peer) pairs where the device has not seen the peer's latest endpoint. */
  readonly stale_endpoints: number;
  readonly rss_mb: number;
  /** The server's V8 heap in use after a full collection. */
  readonly heap_mb: number;
}

export interface SoakResult {
  readonly scenario: 'soak';
  readonly policy: EnginePolicy;
  readonly nodes: number;
  readonly round_s: number;
  readonly rounds: readonly SoakRound[];
  /** Rounds taken as warm-up (the first tenth, at least one). */
  readonly warmup_rounds: number;
  /** RSS baseline after warm-up, the largest later deviation and the fitted trend, in %. */
  readonly rss_after_warmup_mb: number;
  readonly rss_max_drift_pct: number;
  readonly rss_trend_pct: number;
  /** The same for the heap after a full collection (the "memory flat within 5%"). */
  readonly heap_after_warmup_mb: number;
  readonly heap_max_drift_pct: number;
  readonly heap_trend_pct: number;
  readonly undelivered: number;
  readonly log_errors: number;
  readonly log_warnings: number;
  readonly first_log_errors: readonly string[];
  readonly client_failures: number;
  readonly first_client_failures: readonly string[];
}

interface Device {
  readonly index: number;
  control: ControlClient | null;
  stream: MapStream | null;
  /** Peers held (device indexes). */
  readonly peers: Set<number>;
  /** Peer device index -> the highest endpoint sequence number seen for it. */
  readonly seen: Map<number, number>;
  /** Our own latest endpoint sequence number (-1 before the first change). */
  lastSeq: number;
}

const ENDPOINT_HOST = '198.51.100.1';
const PORT_BASE = 10_000;
/** Ports stay valid: at most this many endpoint changes per run. */
const MAX_CHANGES = 55_000;
const MAX_ROUNDS = 24 * 60;
/** How long the end-of-round check waits for every device to be back and settled. */
const SETTLE_TIMEOUT_MS = 60_000;

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const log = options.progress ?? (() => {});
  const seed = options.seed ?? 42;
  const capVersion = 130;
  const roundMs = (options.roundS ?? 60) * 1000;
  const rounds = Math.min(MAX_ROUNDS, Math.max(1, Math.round(options.minutes)));
  const churn = options.churnPerSecond ?? 5;
  const changesPerRound = Math.max(1, Math.round((churn * roundMs * 0.75) / 1000));
  if (changesPerRound * rounds > MAX_CHANGES) throw new Error(`soak: ${changesPerRound * rounds} endpoint changes is more than ${MAX_CHANGES}; lower --churn or --minutes`);
  const workload = engineWorkload(options.policy, options.nodes, seed);
  const n = workload.nodes.length;
  const reconnectsPerRound = options.reconnectsPerRound ?? Math.max(1, Math.round(n / 100));
  const leavesPerRound = options.leavesPerRound ?? Math.max(1, Math.round(n / 100));
  const facts = { users: workload.users, nodes: workload.nodes };
  const indexes = {
    base: new PolicyIndex(compilePolicyText(workload.policyText), facts),
    edited: new PolicyIndex(compilePolicyText(workload.editedPolicyText), facts),
  };
  const texts = { base: workload.policyText, edited: workload.editedPolicyText };

  const logErrors: string[] = [];
  let logErrorCount = 0;
  let logWarnCount = 0;
  const onServerLine = (line: string): void => {
    let level = 0;
    try {
      level = (JSON.parse(line) as { level?: number }).level ?? 0;
    } catch {
      level = 50; // anything that is not a log line (a crash trace) counts as an error
    }
    if (level >= 50) {
      logErrorCount++;
      if (logErrors.length < 5) logErrors.push(line.slice(0, 400));
    } else if (level >= 40) logWarnCount++;
  };
  const clientFailures: string[] = [];
  let clientFailureCount = 0;
  const fail = (what: string, err: unknown): void => {
    clientFailureCount++;
    if (clientFailures.length < 5) clientFailures.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  };

  const dir = await mkdtemp(join(tmpdir(), 'headway-soak-'));
  const server = await spawnServer(options.policy, n, seed, dir, ['--log-level', 'warn', '--api-key'], onServerLine);
  log(`server pid ${server.pid} at ${server.url} with ${n} nodes, ${rounds} round(s) of ${roundMs / 1000} s`);
  const devices: Device[] = workload.nodes.map((_, i) => ({ index: i, control: null, stream: null, peers: new Set(), seen: new Map(), lastSeq: -1 }));
  const decodeCache = new SharedDecodeCache(1024);
  try {
    const serverKey = await fetchServerKey(server.url, { protocolVersion: capVersion });
    const endpointsOf = (d: Device): string[] => (d.lastSeq < 0 ? [] : [`${ENDPOINT_HOST}:${PORT_BASE + d.lastSeq}`]);
    const noteEndpoints = (receiver: Device, peer: number, endpoints: readonly string[] | undefined): void => {
      for (const endpoint of endpoints ?? []) {
        if (!endpoint.startsWith(`${ENDPOINT_HOST}:`)) continue;
        const seq = Number(endpoint.slice(ENDPOINT_HOST.length + 1)) - PORT_BASE;
        if (seq > (receiver.seen.get(peer) ?? -1)) receiver.seen.set(peer, seq);
      }
    };
    // Node ids are the workload's (1-based, loaded in order into a fresh store): index = id - 1.
    const apply = (device: Device, message: tailcfg.MapResponse): void => {
      if (message.Peers != null && message.Peers.length > 0) {
        device.peers.clear();
        for (const peer of message.Peers) {
          device.peers.add(peer.ID - 1);
          noteEndpoints(device, peer.ID - 1, peer.Endpoints);
        }
      }
      for (const id of message.PeersRemoved ?? []) device.peers.delete(id - 1);
      for (const peer of message.PeersChanged ?? []) {
        device.peers.add(peer.ID - 1);
        noteEndpoints(device, peer.ID - 1, peer.Endpoints);
      }
      for (const patch of message.PeersChangedPatch ?? []) noteEndpoints(device, patch.NodeID - 1, patch.Endpoints);
    };
    const connect = async (device: Device): Promise<void> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          device.control = await ControlClient.connect({ serverUrl: server.url, serverKey, machineKey: benchMachineKey(seed, device.index), protocolVersion: capVersion, dialTimeoutMs: 60_000 });
          const stream = await device.control.openMapStream({
            Version: capVersion, Compress: 'zstd', KeepAlive: true, Stream: true,
            NodeKey: benchNodeKey(seed, device.index), DiscoKey: benchDiscoKey(seed, device.index), Hostinfo: benchHostinfo(workload.nodes[device.index]!.name),
            // A real client sends its endpoints when it reconnects.
            Endpoints: endpointsOf(device), EndpointTypes: endpointsOf(device).map(() => 1),
          } satisfies tailcfg.MapRequest, { decodeCache, highWaterMark: 1_000_000, onMessage: (message) => apply(device, message) });
          device.stream = stream;
          void drain(stream);
          return;
        } catch (err) {
          fail(`device ${device.index} connect`, err);
          await device.control?.close().catch(() => undefined);
          device.control = null;
          await sleep(200 * (attempt + 1));
        }
      }
    };
    const disconnect = async (device: Device): Promise<void> => {
      const control = device.control;
      device.control = null;
      device.stream = null;
      await control?.close().catch(() => undefined);
    };
    const connectAll = async (list: readonly Device[]): Promise<void> => {
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(256, list.length) }, async () => {
        while (next < list.length) await connect(list[next++]!);
      }));
    };

    await connectAll(devices);
    const storm = performance.now();
    while (devices.some((d) => d.stream !== null && d.stream.stats.messages < 1) && performance.now() - storm < SETTLE_TIMEOUT_MS) await sleep(50);
    log(`all ${n} devices connected`);

    const random = seededRandom(seed ^ 0x50a4);
    const pick = (from: readonly Device[]): Device => from[Math.floor(random() * from.length)]!;
    let seq = 0;
    let current: 'base' | 'edited' = 'base';
    const results: SoakRound[] = [];
    for (let round = 1; round <= rounds; round++) {
      const roundStart = performance.now();
      // The policy edit.
      current = current === 'base' ? 'edited' : 'base';
      try {
        const res = await fetch(`${server.url}/api/v1/policy`, { method: 'PUT', headers: { authorization: `Bearer ${server.apiKey ?? ''}`, 'content-type': 'application/json' }, body: JSON.stringify({ policy: texts[current] }) });
        await res.arrayBuffer();
        if (res.status !== 200) fail(`round ${round} policy edit`, `HTTP ${res.status}`);
      } catch (err) {
        fail(`round ${round} policy edit`, err);
      }
      // The schedule: endpoint changes spread over the first three quarters of the round,
      // reconnects and leaves among them; those who left join again in the last quarter.
      const actions: Array<'change' | 'reconnect' | 'leave'> = [
        ...Array<'change'>(changesPerRound).fill('change'),
        ...Array<'reconnect'>(reconnectsPerRound).fill('reconnect'),
        ...Array<'leave'>(leavesPerRound).fill('leave'),
      ];
      for (let i = actions.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [actions[i], actions[j]] = [actions[j]!, actions[i]!];
      }
      const away: Device[] = [];
      const pending: Array<Promise<void>> = [];
      let changes = 0;
      let reconnects = 0;
      for (const [i, action] of actions.entries()) {
        const due = roundStart + (i * roundMs * 0.75) / actions.length;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const present = devices.filter((d) => d.control !== null && d.stream !== null);
        if (present.length === 0) break;
        const device = pick(present);
        if (action === 'change') {
          device.lastSeq = seq++;
          changes++;
          const body = {
            Version: capVersion, Compress: 'zstd', KeepAlive: true, Stream: false, OmitPeers: true,
            NodeKey: benchNodeKey(seed, device.index), Endpoints: endpointsOf(device), EndpointTypes: [1],
          };
          pending.push(device.control!.postJson('/machine/map', body).then(() => undefined, (err: unknown) => fail(`device ${device.index} endpoint change`, err)));
        } else if (action === 'reconnect') {
          reconnects++;
          pending.push(disconnect(device).then(() => connect(device)));
        } else {
          away.push(device);
          await disconnect(device);
        }
      }
      await Promise.all(pending);
      // Joins: past the offline grace (10 s by default), those who left come back.
      const rejoinAt = roundStart + roundMs * 0.8;
      if (rejoinAt > performance.now()) await sleep(rejoinAt - performance.now());
      await connectAll(away);

      // The check: every device back, settled, holding exactly its policy peers at their latest endpoints.
      const expected = indexes[current];
      const deadline = Math.min(roundStart + roundMs, performance.now() + SETTLE_TIMEOUT_MS);
      let wrongPeerSets = 0;
      let staleEndpoints = 0;
      for (;;) {
        await sleep(1_000);
        wrongPeerSets = 0;
        staleEndpoints = 0;
        for (const device of devices) {
          const want = expected.peersOf(workload.nodes[device.index]!.id).map((id) => id - 1);
          if (device.stream === null || want.length !== device.peers.size || want.some((p) => !device.peers.has(p))) wrongPeerSets++;
          for (const peer of want) if (devices[peer]!.lastSeq >= 0 && (device.seen.get(peer) ?? -1) < devices[peer]!.lastSeq) staleEndpoints++;
        }
        if ((wrongPeerSets === 0 && staleEndpoints === 0) || performance.now() >= deadline) break;
      }
      const rss = await rssMb(server.pid);
      let heap = -1;
      server.child.kill('SIGUSR2');
      const reply = await Promise.race([server.lines.next(), sleep(10_000).then(() => null)]);
      if (reply !== null && reply.done !== true) heap = (JSON.parse(reply.value) as { heap_mb: number }).heap_mb;
      else fail(`round ${round} heap sample`, 'no answer within 10 s');
      const result: SoakRound = { round, policy: current, changes, reconnects, leaves: away.length, joins: away.length, wrong_peer_sets: wrongPeerSets, stale_endpoints: staleEndpoints, rss_mb: Math.round(rss * 10) / 10, heap_mb: heap };
      results.push(result);
      log(`round ${round}: policy ${current}, ${changes} endpoint changes, ${reconnects} reconnects, ${away.length} leaves and joins; wrong peer sets ${wrongPeerSets}, stale endpoints ${staleEndpoints}; server rss ${result.rss_mb} MB, heap after gc ${heap} MB; log errors ${logErrorCount}`);
      const rest = roundStart + roundMs - performance.now();
      if (rest > 0 && round < rounds) await sleep(rest);
    }

    const rss = memoryDrift(results.map((r) => r.rss_mb));
    const heap = memoryDrift(results.map((r) => r.heap_mb));
    return {
      scenario: 'soak', policy: options.policy, nodes: n, round_s: roundMs / 1000, rounds: results,
      warmup_rounds: heap.warmupSamples,
      rss_after_warmup_mb: rss.baseline, rss_max_drift_pct: rss.maxDriftPct, rss_trend_pct: rss.trendPct,
      heap_after_warmup_mb: heap.baseline, heap_max_drift_pct: heap.maxDriftPct, heap_trend_pct: heap.trendPct,
      undelivered: results.reduce((sum, r) => sum + r.wrong_peer_sets + r.stale_endpoints, 0),
      log_errors: logErrorCount, log_warnings: logWarnCount, first_log_errors: logErrors,
      client_failures: clientFailureCount, first_client_failures: clientFailures,
    };
  } finally {
    await Promise.all(devices.map((d) => d.control?.close().catch(() => undefined)));
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

/** Drains a stream (messages are applied by its onMessage hook) until it ends. */
async function drain(stream: MapStream): Promise<void> {
  try {
    while ((await stream.next()) !== null) {
      // applied on arrival
    }
  } catch {
    // the stream ends when the device disconnects
  }
}


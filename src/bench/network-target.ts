// The network benchmark against any running TS2021 control server (ours or another, such as
// headscale): N devices of our protocol client register with one reusable pre-auth key over the
// real protocol (bounded concurrency), each opens a streaming map poll, and the benchmark
// measures
// - the join: wall time until every device holds every other benchmark device as a peer (the
//   tailnet's policy must let everyone see everyone), and the server's CPU for it;
// - churn: endpoint changes sent as lite updates at a fixed rate; a change's latency runs until
//   the last other device's stream delivered the new endpoint, whether the server sends a patch,
//   a changed peer or the whole peer list again;
// - idle: the server's CPU and RSS while nothing happens.
// The server's CPU and memory need --server-pid (a process on this machine). Every loop is
// bounded in count and in time: a server that never converges is reported with what it reached.
import type { MachinePublicKey } from '../key/index.js';
import { Curve25519PrivateKey } from '../key/index.js';
import { ControlClient, fetchServerKey, SharedDecodeCache, type MapStream } from '../client/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { CpuMeter, rssMb } from './proc-stats.js';
import { seededRandom } from './workload.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { quantile, round } from './figures.js';

export interface TargetOptions {
  /** The control server's URL, as given to `tailscale up --login-server`. */
  target: string;
  /** A reusable pre-auth key of that server. */
  authKey: string;
  nodes: number;
  /** The server's process id on this machine, for its CPU and RSS. */
  serverPid?: number;
  /** Endpoint changes per second during churn (default 5). */
  churnPerSecond?: number;
  /** Seconds of churn (default 20). */
  durationS?: number;
  /** Seconds of idle measurement (default 10). */
  idleS?: number;
  /** Registrations and polls being opened at once (default 32). */
  concurrency?: number;
  /** Give up on the join after this many seconds (default 60 + 0.2 s per node). */
  joinTimeoutS?: number;
  /** After the last change, wait at most this long for deliveries (default 10). */
  settleS?: number;
  /** Each dial and each request (default 30 s). */
  requestTimeoutMs?: number;
  capVersion?: number;
  seed?: number;
  progress?: (line: string) => void;
}

export interface TargetJoin {
  /** Every device registered, streams, and holds every other device as a peer. */
  readonly converged: boolean;
  readonly wall_s: number;
  readonly server_cpu_s: number | null;
  readonly registered: number;
  readonly streaming: number;
  /** Devices holding all `expected_peers` benchmark peers when the join ended. */
  readonly complete: number;
  readonly expected_peers: number;
  readonly peers_min: number;
  readonly peers_median: number;
  /** Map messages the devices received during the join (every join is news to every device online). */
  readonly frames: number;
}

export interface TargetChurn {
  readonly changes: number;
  readonly delivered: number;
  readonly undelivered: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly server_cpu_pct: number | null;
  readonly client_cpu_pct: number;
  /** Map messages the devices received from the first change until the deliveries settled. */
  readonly frames: number;
  /** Server CPU in that time over those frames (keep-alives included); null without a pid. */
  readonly server_us_per_frame: number | null;
  /** How the server told the devices: messages with a whole peer list, with changed peers, with patches. */
  readonly messages: { readonly full_peer_lists: number; readonly peers_changed: number; readonly patches: number };
}

export interface TargetResult {
  readonly scenario: 'network-target';
  readonly target: string;
  readonly nodes: number;
  readonly join: TargetJoin;
  /** Null when the join did not converge (there is nothing meaningful to time). */
  readonly churn: TargetChurn | null;
  readonly idle: { readonly seconds: number; readonly server_cpu_pct: number | null; readonly server_rss_mb: number | null } | null;
  /** The first few failures (dials, registrations, streams), with how many there were. */
  readonly failures: { readonly count: number; readonly first: readonly string[] };
}

/** The endpoint that carries change `seq`: the port says which change it is. */
const CHURN_HOST = '198.51.100.1';
const CHURN_PORT_BASE = 10_000;
const MAX_CHANGES = 65_535 - CHURN_PORT_BASE;

interface Device {
  readonly index: number;
  readonly machineKey: Curve25519PrivateKey;
  readonly nodeKey: string;
  readonly discoKey: string;
  control: ControlClient | null;
  stream: MapStream | null;
  /** Benchmark peers this device holds: peer node id -> device index. */
  readonly peers: Map<number, number>;
}

export async function runTargetNetwork(options: TargetOptions): Promise<TargetResult> {
  const log = options.progress ?? (() => {});
  const n = options.nodes;
  const capVersion = options.capVersion ?? 130;
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 32, n));
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const joinTimeoutMs = (options.joinTimeoutS ?? 60 + 0.2 * n) * 1000;
  const churnRate = options.churnPerSecond ?? 5;
  const churnTotal = Math.min(MAX_CHANGES, Math.max(1, Math.round(churnRate * (options.durationS ?? 20))));
  const pid = options.serverPid ?? null;
  const random = seededRandom(options.seed ?? 42);

  const failures: string[] = [];
  let failureCount = 0;
  const fail = (what: string, err: unknown): void => {
    failureCount++;
    if (failures.length < 5) failures.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  };

  const devices: Device[] = Array.from({ length: n }, (_, index) => ({
    index,
    machineKey: Curve25519PrivateKey.generate(),
    nodeKey: Curve25519PrivateKey.generate().publicKey('node'),
    discoKey: Curve25519PrivateKey.generate().publicKey('disco'),
    control: null,
    stream: null,
    peers: new Map(),
  }));
  const deviceByNodeKey = new Map<string, number>(devices.map((d) => [d.nodeKey, d.index]));
  // change seq -> receiving device -> arrival time (performance.now()).
  const arrivals = new Map<number, Map<number, number>>();
  const styles = { full_peer_lists: 0, peers_changed: 0, patches: 0 };
  const decodeCache = new SharedDecodeCache(1024);
  let framesIn = 0;

  const noteEndpoints = (receiver: number, endpoints: readonly string[] | undefined, at: number): void => {
    for (const endpoint of endpoints ?? []) {
      if (!endpoint.startsWith(`${CHURN_HOST}:`)) continue;
      const seq = Number(endpoint.slice(CHURN_HOST.length + 1)) - CHURN_PORT_BASE;
      let byDevice = arrivals.get(seq);
      if (byDevice === undefined) arrivals.set(seq, (byDevice = new Map()));
      if (!byDevice.has(receiver)) byDevice.set(receiver, at);
    }
  };
  /** Applies one message to what `device` knows of its benchmark peers (tailscaled's rules). */
  const apply = (device: Device, message: tailcfg.MapResponse, at: number): void => {
    framesIn++;
    if (message.Peers != null && message.Peers.length > 0) {
      styles.full_peer_lists++;
      device.peers.clear();
      for (const peer of message.Peers) {
        const other = deviceByNodeKey.get(peer.Key);
        if (other === undefined || other === device.index) continue;
        device.peers.set(peer.ID, other);
        noteEndpoints(device.index, peer.Endpoints, at);
      }
      return;
    }
    for (const id of message.PeersRemoved ?? []) device.peers.delete(id);
    if (message.PeersChanged != null && message.PeersChanged.length > 0) {
      styles.peers_changed++;
      for (const peer of message.PeersChanged) {
        const other = deviceByNodeKey.get(peer.Key);
        if (other === undefined || other === device.index) continue;
        device.peers.set(peer.ID, other);
        noteEndpoints(device.index, peer.Endpoints, at);
      }
    }
    if (message.PeersChangedPatch != null && message.PeersChangedPatch.length > 0) {
      styles.patches++;
      for (const patch of message.PeersChangedPatch) if (device.peers.has(patch.NodeID)) noteEndpoints(device.index, patch.Endpoints, at);
    }
  };

  const serverKey: MachinePublicKey = await fetchServerKey(options.target, { protocolVersion: capVersion });
  log(`target ${options.target}: server key ${serverKey.slice(0, 16)}..., ${n} devices, ${concurrency} at a time`);

  const joinMeter = new CpuMeter(pid);
  await joinMeter.start();
  const joinDeadline = performance.now() + joinTimeoutMs;
  let registered = 0;
  let streaming = 0;

  const join = async (device: Device): Promise<void> => {
    const timeout = Math.ceil(Math.max(1, Math.min(requestTimeoutMs, joinDeadline - performance.now())));
    const control = await ControlClient.connect({ serverUrl: options.target, serverKey, machineKey: device.machineKey, protocolVersion: capVersion, dialTimeoutMs: timeout });
    device.control = control;
    const register: tailcfg.RegisterRequest = {
      Version: capVersion,
      NodeKey: device.nodeKey,
      OldNodeKey: `nodekey:${'0'.repeat(64)}`,
      Expiry: '0001-01-01T00:00:00Z',
      Followup: '',
      Hostinfo: { Hostname: `bench-${device.index}`, OS: 'linux', IPNVersion: 'headway-bench' },
      Auth: { AuthKey: options.authKey },
    };
    const response = await control.postJson('/machine/register', register, { signal: AbortSignal.timeout(timeout) });
    const body = response.json as Partial<tailcfg.RegisterResponse> | undefined;
    if (response.status !== 200) throw new Error(`register: HTTP ${response.status}: ${response.body.toString('utf8').trim().slice(0, 200)}`);
    if (body?.Error) throw new Error(`register: refused: ${body.Error}`);
    if (body?.MachineAuthorized !== true) throw new Error(`register: not authorized with the key${body?.AuthURL ? ` (the server asks for ${body.AuthURL})` : ''}`);
    registered++;
    device.stream = await control.openMapStream({
      Version: capVersion, Compress: 'zstd', KeepAlive: true, Stream: true,
      NodeKey: device.nodeKey, DiscoKey: device.discoKey,
      Hostinfo: { Hostname: `bench-${device.index}`, OS: 'linux', IPNVersion: 'headway-bench' },
      Endpoints: [`198.51.100.2:${1 + device.index}`], EndpointTypes: [1],
    } satisfies tailcfg.MapRequest, {
      highWaterMark: 1 << 30,
      decodeCache,
      onMessage: (message, at) => apply(device, message, at),
    });
    streaming++;
    void drain(device.stream);
  };

  let next = 0;
  const workers = Array.from({ length: concurrency }, async () => {
    while (next < n && performance.now() < joinDeadline) {
      const device = devices[next++]!;
      try {
        await join(device);
      } catch (err) {
        fail(`device ${device.index}`, err);
      }
    }
  });
  await Promise.all(workers);
  log(`join: ${registered} registered, ${streaming} streaming after ${((performance.now() - (joinDeadline - joinTimeoutMs)) / 1000).toFixed(1)} s`);

  const expectedPeers = n - 1;
  const complete = (): number => devices.reduce((sum, d) => sum + (d.stream !== null && d.peers.size >= expectedPeers ? 1 : 0), 0);
  let lastReport = performance.now();
  while (complete() < n && streaming === n && performance.now() < joinDeadline) {
    await sleep(50);
    if (performance.now() - lastReport > 5_000) {
      lastReport = performance.now();
      log(`join: ${complete()} of ${n} devices hold all ${expectedPeers} peers`);
    }
  }
  const joinReading = await joinMeter.read();
  const peerCounts = devices.map((d) => d.peers.size).sort((a, b) => a - b);
  const joinResult: TargetJoin = {
    converged: complete() === n,
    wall_s: round(joinReading.wallS),
    server_cpu_s: joinReading.cpuS === null ? null : round(joinReading.cpuS),
    registered,
    streaming,
    complete: complete(),
    expected_peers: expectedPeers,
    peers_min: peerCounts[0] ?? 0,
    peers_median: quantile(peerCounts, 0.5),
    frames: framesIn,
  };
  log(`join: ${joinResult.converged ? 'converged' : 'NOT converged'} in ${joinResult.wall_s} s; ${joinResult.complete} of ${n} complete, peers min ${joinResult.peers_min} median ${joinResult.peers_median} of ${expectedPeers}; ${joinResult.frames} map messages${joinResult.server_cpu_s === null ? '' : `; server cpu ${joinResult.server_cpu_s} s`}`);

  let churn: TargetChurn | null = null;
  let idle: TargetResult['idle'] = null;
  try {
    if (joinResult.converged) {
      churn = await runChurn();
      const idleS = options.idleS ?? 10;
      const idleMeter = new CpuMeter(pid);
      await idleMeter.start();
      await sleep(idleS * 1000);
      const reading = await idleMeter.read();
      idle = { seconds: idleS, server_cpu_pct: reading.pct === null ? null : round(reading.pct), server_rss_mb: pid === null ? null : Math.round(await rssMb(pid)) };
      log(`idle: server cpu ${idle.server_cpu_pct ?? '?'}% of a core, rss ${idle.server_rss_mb ?? '?'} MB`);
    }
  } finally {
    await Promise.all(devices.map((d) => closeWithin(d.control, 5_000)));
  }
  return { scenario: 'network-target', target: options.target, nodes: n, join: joinResult, churn, idle, failures: { count: failureCount, first: failures } };

  async function runChurn(): Promise<TargetChurn> {
    const sent: Array<{ seq: number; at: number; device: number }> = [];
    for (const k of Object.keys(styles) as Array<keyof typeof styles>) styles[k] = 0;
    const meter = new CpuMeter(pid);
    await meter.start();
    const clientCpu0 = process.cpuUsage();
    const framesBefore = framesIn;
    const start = performance.now();
    const posts: Array<Promise<unknown>> = [];
    for (let seq = 0; seq < churnTotal; seq++) {
      const wait = start + (seq * 1000) / churnRate - performance.now();
      if (wait > 0) await sleep(wait);
      const device = devices[Math.floor(random() * n)]!;
      sent.push({ seq, at: performance.now(), device: device.index });
      posts.push(device.control!.postJson('/machine/map', {
        Version: capVersion, Compress: 'zstd', KeepAlive: true, Stream: false, OmitPeers: true,
        NodeKey: device.nodeKey, DiscoKey: device.discoKey,
        Endpoints: [`${CHURN_HOST}:${CHURN_PORT_BASE + seq}`], EndpointTypes: [1],
      } satisfies tailcfg.MapRequest, { signal: AbortSignal.timeout(requestTimeoutMs) }).catch((err: unknown) => fail(`change ${seq}`, err)));
    }
    const reading = await meter.read();
    const clientCpu = process.cpuUsage(clientCpu0);
    // Deliveries still in flight: wait for them, but never longer than the settle time.
    const settleDeadline = performance.now() + (options.settleS ?? 10) * 1000;
    // Allow-all: every other device must hear a change (the sender never holds itself as a peer).
    const delivered = (change: { seq: number }): boolean => (arrivals.get(change.seq)?.size ?? 0) >= expectedPeers;
    while (performance.now() < settleDeadline && !sent.every(delivered)) await sleep(50);
    await Promise.race([Promise.all(posts), sleep(1_000)]);
    const frames = framesIn - framesBefore;
    const settled = await meter.read();
    const latencies: number[] = [];
    let undelivered = 0;
    for (const change of sent) {
      const got = arrivals.get(change.seq);
      if (got === undefined || !delivered(change)) {
        undelivered++;
        continue;
      }
      let last = 0;
      for (const at of got.values()) last = Math.max(last, at);
      latencies.push(last - change.at);
    }
    latencies.sort((a, b) => a - b);
    const result: TargetChurn = {
      changes: sent.length,
      delivered: sent.length - undelivered,
      undelivered,
      p50_ms: round(quantile(latencies, 0.5)),
      p99_ms: round(quantile(latencies, 0.99)),
      server_cpu_pct: reading.pct === null ? null : round(reading.pct),
      client_cpu_pct: round(((clientCpu.user + clientCpu.system) / 1000 / (reading.wallS * 1000)) * 100),
      frames,
      server_us_per_frame: settled.cpuS === null ? null : round((settled.cpuS * 1e6) / Math.max(1, frames)),
      messages: { ...styles },
    };
    log(`churn: ${result.changes} changes, ${result.undelivered} undelivered, p50 ${result.p50_ms} ms p99 ${result.p99_ms} ms, server cpu ${result.server_cpu_pct ?? '?'}%, ${result.server_us_per_frame ?? '?'} µs per frame; messages: ${styles.full_peer_lists} full peer lists, ${styles.peers_changed} with changed peers, ${styles.patches} with patches`);
    return result;
  }
}

/** Reads a stream to its end; arrival and peers are noted by its onMessage hook. */
async function drain(stream: MapStream): Promise<void> {
  try {
    while ((await stream.next()) !== null) {
      // queued messages are only drained here
    }
  } catch {
    // the stream ends when the benchmark closes it, or the server drops it (counted as not holding peers)
  }
}

async function closeWithin(control: ControlClient | null, ms: number): Promise<void> {
  if (control === null) return;
  await Promise.race([control.close().catch(() => undefined), sleep(ms)]);
}


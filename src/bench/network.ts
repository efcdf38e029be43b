// The network benchmark: Headway in its own process, N clients of our real protocol client in
// this one, all on loopback. It measures the reconnect storm (all N dial, upgrade, handshake
// and open their map poll at once, until every one holds its complete netmap), then R endpoint
// changes per second for a while (each sent as a real lite update; latency runs until the last
// peer that must hear it has the frame), then an idle period; and the server's CPU and RSS.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ControlClient, fetchServerKey, SharedDecodeCache, type MapStream } from '../client/index.js';
import { compilePolicyText, PolicyIndex } from '../policy/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { CLOCK_TICKS, cpuTicks, rssMb } from './proc-stats.js';
import { benchDiscoKey, benchHostinfo, benchMachineKey, benchNodeKey } from './network-server.js';
import { engineWorkload, seededRandom, type EnginePolicy } from './workload.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { lastArrival, quantile, round } from './figures.js';

export interface NetworkOptions {
  policy: EnginePolicy;
  nodes: number;
  seed?: number;
  /** Endpoint changes per second during the churn phase. */
  churnPerSecond?: number;
  durationS?: number;
  /** Idle measurement after the churn. */
  idleS?: number;
  /** Dials in flight at once during the storm (the listen backlog is finite). */
  dialConcurrency?: number;
  capVersion?: number;
  progress?: (line: string) => void;
  /** Load started after the storm and stopped after the churn (the hostile scenario). */
  background?: (serverUrl: string) => Promise<BackgroundLoad>;
}

/** Something running against the server during the churn; stop() reports its counters. */
export interface BackgroundLoad {
  stop(): Promise<Record<string, number>>;
}

export interface NetworkResult {
  readonly scenario: 'network';
  readonly policy: EnginePolicy;
  readonly nodes: number;
  readonly storm_s: number;
  /** Server CPU during the storm, % of one core. */
  readonly storm_cpu_pct: number;
  readonly latency_p50_ms: number;
  readonly latency_p99_ms: number;
  readonly server_cpu_pct: number;
  /** CPU of this process (all the simulated clients) during the churn, % of one core. */
  readonly client_cpu_pct: number;
  readonly server_rss_mb: number;
  readonly idle_cpu_pct: number;
  readonly changes: number;
  readonly undelivered: number;
  /**
   * Server CPU per map frame during the churn and the 2 s after it: server CPU time over the
   * frames all clients received in that time (whatever a frame holds, keep-alives included).
   */
  readonly server_us_per_frame: number;
  /** Server RSS over the nodes it holds, after the idle period. */
  readonly server_kb_per_node: number;
  /** Server RSS at the end of the churn (with the background load still running). */
  readonly server_rss_churn_mb: number;
  /** The background load's counters, when there was one. */
  readonly background?: Record<string, number>;
}

/** One simulated device of a benchmark: its control connection and map stream, once open. */
export interface Device {
  readonly index: number;
  control: ControlClient | null;
  stream: MapStream | null;
}

export async function runNetwork(options: NetworkOptions): Promise<NetworkResult> {
  const log = options.progress ?? (() => {});
  const seed = options.seed ?? 42;
  const capVersion = options.capVersion ?? 130;
  const churn = options.churnPerSecond ?? 10;
  const durationS = options.durationS ?? 20;
  const idleS = options.idleS ?? 10;
  const workload = engineWorkload(options.policy, options.nodes, seed);
  const n = workload.nodes.length;
  // Who must hear about each device, from the same policy engine the server runs.
  const index = new PolicyIndex(compilePolicyText(workload.policyText), { users: workload.users, nodes: workload.nodes });
  const dir = await mkdtemp(join(tmpdir(), 'headway-netbench-'));
  const server = await spawnServer(options.policy, n, seed, dir);
  log(`server pid ${server.pid} at ${server.url} with ${n} nodes`);
  const devices: Device[] = workload.nodes.map((_, i) => ({ index: i, control: null, stream: null }));
  try {
    const serverKey = await fetchServerKey(server.url, { protocolVersion: capVersion });
    const machineKeys = devices.map((d) => benchMachineKey(seed, d.index));

    const arrivals = new Map<number, Map<number, number>>(); // seq -> device -> arrival ms

    // --- storm ---
    const cpuBefore = await cpuTicks(server.pid);
    const stormStart = performance.now();
    let next = 0;
    let failures = 0;
    const decodeCache = new SharedDecodeCache(512);
    const dialOne = async (device: Device): Promise<void> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          device.control = await ControlClient.connect({ serverUrl: server.url, serverKey, machineKey: machineKeys[device.index]!, protocolVersion: capVersion, dialTimeoutMs: 60_000 });
          device.stream = await device.control.openMapStream({
            Version: capVersion, Compress: 'zstd', KeepAlive: true, Stream: true,
            NodeKey: benchNodeKey(seed, device.index), DiscoKey: benchDiscoKey(seed, device.index), Hostinfo: benchHostinfo(workload.nodes[device.index]!.name),
          } satisfies tailcfg.MapRequest, {
            shouldDecode: (i) => i > 0,
            // Every peer of a change gets the same frame: decode it once for all the clients.
            decodeCache,
            highWaterMark: 1_000_000,
            // Delivery is when the frame is in, before this process gets round to decoding it.
            onMessage: (message, at) => {
              for (const patch of message.PeersChangedPatch ?? []) noteEndpoints(patch.Endpoints, device.index, at, arrivals);
              for (const peer of message.PeersChanged ?? []) noteEndpoints(peer.Endpoints, device.index, at, arrivals);
            },
          });
          return;
        } catch {
          failures++;
          await device.control?.close().catch(() => undefined);
          device.control = null;
          await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
        }
      }
      throw new Error(`device ${device.index} could not connect`);
    };
    const workers = Array.from({ length: Math.min(options.dialConcurrency ?? 256, n) }, async () => {
      while (next < devices.length) await dialOne(devices[next++]!);
    });
    await Promise.all(workers);
    // Every device holds its complete netmap once its first message arrived.
    while (devices.some((d) => (d.stream?.stats.messages ?? 0) < 1)) await sleep(20);
    const stormS = (performance.now() - stormStart) / 1000;
    const stormCpuPct = ((((await cpuTicks(server.pid)) - cpuBefore) / CLOCK_TICKS) * 100) / stormS;
    log(`storm: ${n} clients with their netmaps in ${stormS.toFixed(2)} s (${failures} retried dials), server cpu ${stormCpuPct.toFixed(0)}%`);

    // --- churn ---
    for (const device of devices) void consume(device);
    const background = await options.background?.(server.url);
    await sleep(500);
    const random = seededRandom(seed ^ 0xc4a2);
    const sent: Array<{ seq: number; at: number; device: number }> = [];
    const churnCpu0 = await cpuTicks(server.pid);
    const framesBefore = devices.reduce((sum, d) => sum + (d.stream?.stats.messages ?? 0), 0);
    const clientCpu0 = process.cpuUsage();
    const churnStart = performance.now();
    const total = Math.max(1, Math.round(churn * durationS));
    for (let seq = 0; seq < total; seq++) {
      const due = churnStart + (seq * 1000) / churn;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const device = devices[Math.floor(random() * n)]!;
      const at = performance.now();
      sent.push({ seq, at, device: device.index });
      void device.control!.postJson('/machine/map', {
        Version: capVersion, Compress: 'zstd', KeepAlive: true, Stream: false, OmitPeers: true,
        NodeKey: benchNodeKey(seed, device.index), Endpoints: [`198.51.100.1:${10_000 + seq}`], EndpointTypes: [1],
      });
    }
    const churnMs = performance.now() - churnStart;
    const churnCpu = (await cpuTicks(server.pid)) - churnCpu0;
    const rssChurn = await rssMb(server.pid);
    const backgroundStats = await background?.stop();
    const clientCpu = process.cpuUsage(clientCpu0);
    const clientCpuPct = ((clientCpu.user + clientCpu.system) / 1000 / churnMs) * 100;
    log(`churn: ${total} changes in ${(churnMs / 1000).toFixed(1)} s; the clients' process used ${clientCpuPct.toFixed(0)}% of a core`);
    await sleep(2_000);
    const frames = devices.reduce((sum, d) => sum + (d.stream?.stats.messages ?? 0), 0) - framesBefore;
    const frameCpuUs = (((await cpuTicks(server.pid)) - churnCpu0) / CLOCK_TICKS) * 1e6;
    log(`frames: ${frames} during the churn and 2 s after; server ${(frameCpuUs / Math.max(1, frames)).toFixed(1)} µs of CPU per frame`);
    const latencies: number[] = [];
    const slowest: Array<{ ms: number; afterStartMs: number; recipients: number }> = [];
    let undelivered = 0;
    for (const change of sent) {
      const expected = index.peersOf(workload.nodes[change.device]!.id);
      const last = lastArrival(arrivals.get(change.seq), expected);
      if (last === null) undelivered++;
      else if (expected.length > 0) {
        latencies.push(last - change.at);
        slowest.push({ ms: last - change.at, afterStartMs: change.at - churnStart, recipients: expected.length });
      }
    }
    latencies.sort((a, b) => a - b);
    slowest.sort((a, b) => b.ms - a.ms);
    log(`slowest changes: ${slowest.slice(0, 3).map((c) => `${Math.round(c.ms)} ms (sent at +${(c.afterStartMs / 1000).toFixed(1)} s, ${c.recipients} recipients)`).join(', ')}`);

    // --- idle ---
    const idleCpu0 = await cpuTicks(server.pid);
    const idleStart = performance.now();
    await sleep(idleS * 1000);
    const idleCpu = (await cpuTicks(server.pid)) - idleCpu0;
    const idleMs = performance.now() - idleStart;
    const rss = await rssMb(server.pid);
    return {
      scenario: 'network',
      policy: options.policy,
      nodes: n,
      storm_s: round(stormS),
      storm_cpu_pct: round(stormCpuPct),
      latency_p50_ms: round(quantile(latencies, 0.5)),
      latency_p99_ms: round(quantile(latencies, 0.99)),
      server_cpu_pct: round(((churnCpu / CLOCK_TICKS) * 1000 * 100) / churnMs),
      client_cpu_pct: round(clientCpuPct),
      server_rss_mb: Math.round(rss),
      idle_cpu_pct: round(((idleCpu / CLOCK_TICKS) * 1000 * 100) / idleMs),
      changes: sent.length,
      undelivered,
      server_us_per_frame: round(frameCpuUs / Math.max(1, frames)),
      server_kb_per_node: Math.round((rss * 1024) / n),
      server_rss_churn_mb: Math.round(rssChurn),
      ...(backgroundStats !== undefined ? { background: backgroundStats } : {}),
    };
  } finally {
    await Promise.all(devices.map((d) => d.control?.close().catch(() => undefined)));
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

/** Drains a device's stream (arrival times are noted by the stream's onMessage hook). */
function consume(device: Device): Promise<void> {
  return drainStream(device.stream!);
}

/** Reads a map stream to its end; what arrives is noted by the stream's onMessage hook. */
export async function drainStream(stream: MapStream): Promise<void> {
  try {
    while ((await stream.next()) !== null) {
      // queued messages are only drained here
    }
  } catch {
    // the stream ends when the benchmark closes it
  }
}

/** Notes when `device` first saw each churn change, read back from the endpoint it carries. */
export function noteEndpoints(endpoints: readonly string[] | undefined, device: number, now: number, arrivals: Map<number, Map<number, number>>): void {
  for (const endpoint of endpoints ?? []) {
    if (!endpoint.startsWith('198.51.100.1:')) continue;
    const seq = Number(endpoint.slice('198.51.100.1:'.length)) - 10_000;
    let byDevice = arrivals.get(seq);
    if (byDevice === undefined) arrivals.set(seq, (byDevice = new Map()));
    if (!byDevice.has(device)) byDevice.set(device, now);
  }
}

export interface BenchServer {
  child: ChildProcess; url: string; pid: number; apiKey?: string;
  /** The server's stdout after its first line (the soak's heap reports). */
  lines: AsyncIterator<string>;
}

/** Starts network-server.js; `extraArgs` go to it, its stderr lines to `onStderr` (else inherited). */
export async function spawnServer(policy: EnginePolicy, nodes: number, seed: number, dir: string, extraArgs: readonly string[] = [], onStderr?: (line: string) => void): Promise<BenchServer> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'network-server.js');
  // HEADWAY_BENCH_SERVER_FLAGS passes extra Node.js flags to the server (e.g. --cpu-prof).
  const flags = (process.env['HEADWAY_BENCH_SERVER_FLAGS'] ?? '').split(' ').filter((f) => f !== '');
  const child = spawn(process.execPath, [...flags, '--enable-source-maps', script, '--policy', policy, '--nodes', String(nodes), '--seed', String(seed), '--dir', dir, ...extraArgs], { stdio: ['ignore', 'pipe', onStderr === undefined ? 'inherit' : 'pipe'] });
  if (onStderr !== undefined) createInterface({ input: child.stderr! }).on('line', onStderr);
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench server exited with code ${code} before it was ready`)));
  });
  const info = JSON.parse(first) as { url: string; pid: number; apiKey?: string };
  return { child, url: info.url, pid: info.pid, lines: lines[Symbol.asyncIterator](), ...(info.apiKey !== undefined ? { apiKey: info.apiKey } : {}) };
}


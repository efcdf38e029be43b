// The high-availability benchmark (docs/ha.md): the benchmark tailnet in a fresh PostgreSQL
// database, K Headway processes with ha.enabled on it, and N clients of our real protocol client
// spread round robin over the instances (what a TCP load balancer does). It measures the
// reconnect storm (every client dials, upgrades and holds its complete netmap) and the latency
// of endpoint changes: a change is sent to the instance holding the device's session and timed
// until the last peer that must hear it, on any instance, has the frame. Run it with K = 1 and
// K = 3 on the same machine to compare.
//   npm run bench -- ha --policy segmented --nodes 10000 --instances 3
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ControlClient, fetchServerKey, SharedDecodeCache } from '../client/index.js';
import { configFromObject } from '../config/index.js';
import { compilePolicyText, PolicyIndex } from '../policy/index.js';
import { openStore } from '../store/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { drainStream, noteEndpoints, type Device } from './network.js';
import { benchDevice, benchDiscoKey, benchHostinfo, benchMachineKey, benchNodeKey } from './network-server.js';
import { storeWorkload } from './seed.js';
import { engineWorkload, seededRandom, type EnginePolicy } from './workload.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { lastArrival, quantile, round } from './figures.js';

export interface HaBenchOptions {
  policy: EnginePolicy;
  nodes: number;
  instances: number;
  seed?: number;
  churnPerSecond?: number;
  durationS?: number;
  progress?: (line: string) => void;
}

export interface HaBenchResult {
  readonly scenario: 'ha';
  readonly policy: EnginePolicy;
  readonly nodes: number;
  readonly instances: number;
  readonly storm_s: number;
  readonly latency_p50_ms: number;
  readonly latency_p99_ms: number;
  readonly changes: number;
  readonly undelivered: number;
}

const SECRET = 'headway-bench-ha-secret-0123456789';

export async function runHaBench(options: HaBenchOptions): Promise<HaBenchResult> {
  const log = options.progress ?? (() => {});
  const seed = options.seed ?? 42;
  const capVersion = 130;
  const churn = options.churnPerSecond ?? 10;
  const durationS = options.durationS ?? 20;
  const workload = engineWorkload(options.policy, options.nodes, seed);
  const n = workload.nodes.length;
  const index = new PolicyIndex(compilePolicyText(workload.policyText), { users: workload.users, nodes: workload.nodes });

  const maintenanceUrl = process.env['HEADWAY_BENCH_POSTGRES_URL'] || 'postgres://postgres@127.0.0.1:5432/test';
  const dbName = `headway_bench_ha_${process.pid}`;
  const maintenance = new pg.Client({ connectionString: maintenanceUrl });
  await maintenance.connect();
  await maintenance.query(`CREATE DATABASE "${dbName}"`);
  const dbUrl = new URL(maintenanceUrl);
  dbUrl.pathname = `/${dbName}`;
  const dir = await mkdtemp(join(tmpdir(), 'headway-habench-'));
  const servers: Array<{ child: ChildProcess; url: string }> = [];
  const devices: Device[] = workload.nodes.map((_, i) => ({ index: i, control: null, stream: null }));
  try {
    await load(workload, seed, dbUrl.toString(), dir);
    for (let i = 0; i < options.instances; i++) servers.push(await spawnInstance(i + 1, dbUrl.toString(), join(dir, `hw-${i + 1}`)));
    log(`${options.instances} instance(s) on ${dbName} with ${n} nodes: ${servers.map((s) => s.url).join(' ')}`);
    const serverKey = await fetchServerKey(servers[0]!.url, { protocolVersion: capVersion });
    const arrivals = new Map<number, Map<number, number>>();
    const decodeCache = new SharedDecodeCache(512);

    // --- storm ---
    const stormStart = performance.now();
    let next = 0;
    const dialOne = async (device: Device): Promise<void> => {
      const url = servers[device.index % servers.length]!.url;
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          device.control = await ControlClient.connect({ serverUrl: url, serverKey, machineKey: benchMachineKey(seed, device.index), protocolVersion: capVersion, dialTimeoutMs: 60_000 });
          // A map request whose response never starts is retried, not waited on forever (a
          // 10,000-client run once stalled with every process idle); the stream itself is not bounded.
          const opening = new AbortController();
          const openTimer = setTimeout(() => opening.abort(), 120_000);
          device.stream = await device.control.openMapStream({
            Version: capVersion, Compress: 'zstd', KeepAlive: true, Stream: true,
            NodeKey: benchNodeKey(seed, device.index), DiscoKey: benchDiscoKey(seed, device.index), Hostinfo: benchHostinfo(workload.nodes[device.index]!.name),
          } satisfies tailcfg.MapRequest, {
            shouldDecode: (i) => i > 0,
            decodeCache,
            highWaterMark: 1_000_000,
            signal: opening.signal,
            onMessage: (message, at) => {
              for (const patch of message.PeersChangedPatch ?? []) noteEndpoints(patch.Endpoints, device.index, at, arrivals);
              for (const peer of message.PeersChanged ?? []) noteEndpoints(peer.Endpoints, device.index, at, arrivals);
            },
          }).finally(() => clearTimeout(openTimer));
          return;
        } catch {
          await device.control?.close().catch(() => undefined);
          device.control = null;
          await sleep(200 * (attempt + 1));
        }
      }
      throw new Error(`device ${device.index} could not connect`);
    };
    await Promise.all(Array.from({ length: Math.min(256, n) }, async () => {
      while (next < devices.length) await dialOne(devices[next++]!);
    }));
    while (devices.some((d) => (d.stream?.stats.messages ?? 0) < 1)) await sleep(20);
    const stormS = (performance.now() - stormStart) / 1000;
    log(`storm: ${n} clients with their netmaps in ${stormS.toFixed(2)} s`);

    // --- churn: endpoint changes, timed to the last peer that must hear them ---
    for (const device of devices) void drainStream(device.stream!);
    // Presence of the storm settles across instances first.
    await sleep(3_000);
    const random = seededRandom(seed ^ 0xc4a2);
    const sent: Array<{ seq: number; at: number; device: number }> = [];
    const churnStart = performance.now();
    const total = Math.max(1, Math.round(churn * durationS));
    for (let seq = 0; seq < total; seq++) {
      const wait = churnStart + (seq * 1000) / churn - performance.now();
      if (wait > 0) await sleep(wait);
      const device = devices[Math.floor(random() * n)]!;
      sent.push({ seq, at: performance.now(), device: device.index });
      void device.control!.postJson('/machine/map', {
        Version: capVersion, Compress: 'zstd', KeepAlive: true, Stream: false, OmitPeers: true,
        NodeKey: benchNodeKey(seed, device.index), Endpoints: [`198.51.100.1:${10_000 + seq}`], EndpointTypes: [1],
      });
    }
    // Live fields cross instances with the batched write (1 s with HA): wait for the stragglers.
    await sleep(4_000);
    const latencies: number[] = [];
    let undelivered = 0;
    for (const change of sent) {
      const expected = index.peersOf(workload.nodes[change.device]!.id);
      const last = lastArrival(arrivals.get(change.seq), expected);
      if (last === null) undelivered++;
      else if (expected.length > 0) latencies.push(last - change.at);
    }
    latencies.sort((a, b) => a - b);
    return {
      scenario: 'ha',
      policy: options.policy,
      nodes: n,
      instances: options.instances,
      storm_s: round(stormS),
      latency_p50_ms: round(quantile(latencies, 0.5)),
      latency_p99_ms: round(quantile(latencies, 0.99)),
      changes: sent.length,
      undelivered,
    };
  } finally {
    await Promise.all(devices.map((d) => d.control?.close().catch(() => undefined)));
    for (const server of servers) {
      server.child.kill('SIGTERM');
      await new Promise((r) => { server.child.once('exit', r); setTimeout(r, 10_000); });
    }
    await maintenance.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
    await maintenance.end();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The benchmark tailnet into the database, as network-server.ts loads it into SQLite. */
async function load(workload: ReturnType<typeof engineWorkload>, seed: number, dbUrl: string, dir: string): Promise<void> {
  const config = configFromObject({
    data_dir: dir,
    database: { type: 'postgres', postgres: { url: dbUrl } },
  }, { source: 'ha bench', baseDir: dir });
  const store = await openStore(config);
  try {
    await storeWorkload(store, workload, benchDevice(seed), { policy: true });
  } finally {
    await store.close();
  }
}

async function spawnInstance(number: number, dbUrl: string, dir: string): Promise<{ child: ChildProcess; url: string }> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'ha-server.js');
  const child = spawn(process.execPath, ['--enable-source-maps', script, '--db', dbUrl, '--dir', dir, '--instance', `hw-${number}`, '--secret', SECRET], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`ha bench instance ${number} exited with code ${code} before it was ready`)));
  });
  return { child, url: (JSON.parse(first) as { url: string }).url };
}


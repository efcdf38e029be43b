// The server side of the network benchmark, run as its own process so that its CPU and memory
// can be read from /proc: loads the benchmark tailnet into a fresh SQLite store (machine keys
// derived from the seed, so the client process can log the same devices in), starts Headway on
// a loopback port, and prints one JSON line {url, pid, apiKey?}. It stops on SIGTERM.
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createApiHandler } from '../api/index.js';
import { configFromObject } from '../config/index.js';
import { Curve25519PrivateKey, type DiscoPublicKey, type NodePublicKey } from '../key/index.js';
import { createLogger, silentLogger } from '../log/index.js';
import { startServer } from '../server/index.js';
import { loopbackServerConfig } from '../server/testing.js';
import { openStore } from '../store/index.js';
import { storeWorkload, type SeededDevice } from './seed.js';
import { engineWorkload, type EnginePolicy } from './workload.js';

/** The machine key of benchmark device `index` (both processes derive the same one). */
export function benchMachineKey(seed: number, index: number): Curve25519PrivateKey {
  return Curve25519PrivateKey.fromBytes(createHash('sha256').update(`headway-bench:${seed}:${index}:machine`).digest());
}

/** The disco key of benchmark device `index`, as the server already knows it from before the restart. */
export function benchDiscoKey(seed: number, index: number): DiscoPublicKey {
  return `discokey:${createHash('sha256').update(`headway-bench:${seed}:${index}:disco`).digest('hex')}` as DiscoPublicKey;
}

/** What benchmark device `index` reports as its Hostinfo. */
export function benchHostinfo(name: string): { Hostname: string; OS: string } {
  return { Hostname: name, OS: 'linux' };
}

/** The node key of benchmark device `index`: only its public half is ever used. */
export function benchNodeKey(seed: number, index: number): NodePublicKey {
  return `nodekey:${createHash('sha256').update(`headway-bench:${seed}:${index}:node`).digest('hex')}` as NodePublicKey;
}

/** Benchmark device `index` as stored: keys derived from the seed, no routes or endpoints. */
export function benchDevice(seed: number): (index: number, node: { name: string }) => SeededDevice {
  return (index, node) => ({
    machineKey: benchMachineKey(seed, index).publicKey('machine'),
    nodeKey: benchNodeKey(seed, index),
    discoKey: benchDiscoKey(seed, index),
    advertisedRoutes: [], endpoints: [],
    hostinfo: benchHostinfo(node.name),
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { policy: { type: 'string' }, nodes: { type: 'string' }, seed: { type: 'string' }, dir: { type: 'string' }, coalesce: { type: 'string', default: '50ms' }, 'log-level': { type: 'string' }, 'api-key': { type: 'boolean', default: false } } });
  const policy = values.policy as EnginePolicy;
  const nodes = Number(values.nodes);
  const seed = Number(values.seed);
  const dir = values.dir!;
  const workload = engineWorkload(policy, nodes, seed);
  const config = configFromObject({
    ...loopbackServerConfig(dir),
    // Thousands of simulated devices join from one address with one key.
    limits: { registrations_per_minute_per_address: 0, registrations_per_minute_per_key: 0 },
    map: { coalesce_window: values.coalesce },
  }, { source: 'network bench', baseDir: dir });

  const store = await openStore(config);
  // A reconnect storm after a server restart: the server already knows each device's disco key
  // and hostinfo, so reconnecting changes nothing but presence.
  await storeWorkload(store, workload, benchDevice(seed), { policy: true });
  await store.close();

  // --log-level: JSON log lines on stderr (the soak counts the errors among them).
  const logLevel = values['log-level'];
  const logger = logLevel === undefined ? silentLogger() : createLogger({ level: logLevel as typeof config.log.level, format: 'json' }, process.stderr);
  const server = await startServer(config, { logger, ...(values['api-key'] ? { api: (deps) => createApiHandler(deps) } : {}) });
  // --api-key: an admin API key for the client process (the soak edits the policy over the API).
  const apiKey = values['api-key'] ? (await server.state.createApiKey(null, { name: 'bench' })).secret : undefined;
  process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid, ...(apiKey !== undefined ? { apiKey } : {}) })}\n`);
  // SIGUSR2: a full garbage collection, then one line {heap_mb} (the soak's memory sample:
  // RSS alone also counts garbage not yet collected).
  setFlagsFromString('--expose-gc');
  const collect = runInNewContext('gc') as () => void;
  process.on('SIGUSR2', () => {
    collect();
    process.stdout.write(`${JSON.stringify({ heap_mb: Math.round((process.memoryUsage().heapUsed / 1048576) * 10) / 10 })}\n`);
  });
  const stop = () => { void server.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1]?.endsWith('network-server.js')) {
  main().catch((err: unknown) => {
    process.stderr.write(`network-server: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

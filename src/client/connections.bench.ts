// Benchmark of the protocol client's own cost, for the load benchmark's planning. Workload:
// many tailscaled-like clients in one process, each with one Noise + HTTP/2 connection that
// made one request and then sits idle. The server (testing.ts's small TS2021 server) runs in a
// child process, so the memory numbers are the clients' own.
// Run: `node --expose-gc dist/src/client/connections.bench.js [connections]`.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Curve25519PrivateKey, type MachinePublicKey } from '../key/index.js';
import { ControlClient } from './index.js';
import { startFakeControlServer } from './testing.js';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function settle(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  return new Promise((resolve) => setTimeout(resolve, 500));
}

async function serve(): Promise<void> {
  const server = await startFakeControlServer({ handler: (_req, res) => res.end('{}') });
  process.send?.({ url: server.url, serverKey: server.serverKey.publicKey('machine') });
  await once(process, 'disconnect');
  process.exit(0);
}

async function measure(count: number): Promise<Record<string, number>> {
  const child = fork(fileURLToPath(import.meta.url), ['serve']);
  const [info] = (await once(child, 'message')) as [{ url: string; serverKey: MachinePublicKey }];
  const machineKey = Curve25519PrivateKey.generate();
  await settle();
  const before = process.memoryUsage();
  const clients: ControlClient[] = [];
  const connectMs: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const client = await ControlClient.connect({ serverUrl: info.url, serverKey: info.serverKey, machineKey });
    await client.request('/bench', '{}');
    connectMs.push(performance.now() - t0);
    clients.push(client);
  }
  await settle();
  const after = process.memoryUsage();
  await Promise.all(clients.map((c) => c.close()));
  child.disconnect();
  await once(child, 'exit');
  return {
    connections: count,
    connect_and_first_request_median_ms: median(connectMs),
    client_rss_per_connection_kib: (after.rss - before.rss) / count / 1024,
    client_heap_per_connection_kib: (after.heapUsed - before.heapUsed) / count / 1024,
  };
}

async function main(): Promise<void> {
  const [mode] = process.argv.slice(2);
  if (mode === 'serve') {
    await serve();
    return;
  }
  const count = Number(mode ?? 1000);
  const name = `client: ${count} idle ControlClients in one process`;
  const result = await measure(count);
  console.log(`${name}: ${Object.entries(result).map(([k, v]) => `${k}=${v.toFixed(2)}`).join(' ')}`);
  console.log(JSON.stringify({ [name]: result }));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}

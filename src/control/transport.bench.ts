// Benchmarks of the control transport, server side. Workloads: tailscaled instances connecting
// (TCP + /ts2021 upgrade + Noise + early payload + HTTP/2 SETTINGS + one request) and then
// sitting idle on their map poll connection. The dialing side runs in a child process, so the
// memory numbers are the server's own. Run: `node --expose-gc dist/src/control/transport.bench.js
// [connections]` (human lines, then one JSON line).
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect as http2Connect } from 'node:http2';
import { Curve25519PrivateKey } from '../key/index.js';
import { noiseAfterEarlyPayload, rawNoiseDial, startTestControlServer } from './testing.js';

interface ChildReport {
  handshakeMs: number[];
  rssDeltaBytes: number;
  heapDeltaBytes: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  return new Promise((resolve) => setTimeout(resolve, 500));
}

/** Child: dial `count` connections one after another (timing each), keep them open, report. */
async function runDialer(port: number, controlPublicHex: string, count: number): Promise<void> {
  const controlPublic = Buffer.from(controlPublicHex, 'hex');
  const machineKey = Curve25519PrivateKey.generate();
  await settle();
  const before = process.memoryUsage();
  const handshakeMs: number[] = [];
  const keep: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const dial = await rawNoiseDial(port, controlPublic, 145, machineKey);
    const noise = await noiseAfterEarlyPayload(dial);
    const session = http2Connect('https://bench', { createConnection: () => noise });
    session.on('error', () => {});
    const req = session.request({ ':method': 'POST', ':path': '/bench' });
    req.end('{}');
    req.resume();
    await once(req, 'end');
    handshakeMs.push(performance.now() - t0);
    keep.push(session);
  }
  await settle();
  const after = process.memoryUsage();
  const report: ChildReport = { handshakeMs, rssDeltaBytes: after.rss - before.rss, heapDeltaBytes: after.heapUsed - before.heapUsed };
  process.send?.(report);
  await once(process, 'disconnect');
  // The connections are still open on purpose; just leave.
  process.exit(0);
}

async function runServer(count: number): Promise<Record<string, number>> {
  const server = await startTestControlServer({
    handler: (_req, res) => {
      res.end('{}');
    },
  });
  await settle();
  const before = process.memoryUsage();
  const child = fork(fileURLToPath(import.meta.url), ['dial', String(server.port), server.serverKey.publicBytes.toString('hex'), String(count)], {
    execArgv: ['--expose-gc'],
  });
  const [report] = (await once(child, 'message')) as [ChildReport];
  await settle();
  const after = process.memoryUsage();
  const stats = server.transport.stats();
  child.disconnect();
  await once(child, 'exit');
  await server.close();
  return {
    connections: stats.connectionsOpen,
    handshake_median_ms: median(report.handshakeMs),
    handshake_p90_ms: percentile(report.handshakeMs, 0.9),
    server_rss_per_connection_kib: (after.rss - before.rss) / count / 1024,
    server_heap_per_connection_kib: (after.heapUsed - before.heapUsed) / count / 1024,
    raw_dialer_rss_per_connection_kib: report.rssDeltaBytes / count / 1024,
  };
}

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'dial') {
    await runDialer(Number(args[0]), String(args[1]), Number(args[2]));
    return;
  }
  const count = Number(mode ?? 1000);
  const name = `control/transport: ${count} sequential connects, then idle`;
  const result = await runServer(count);
  console.log(`${name}: ${Object.entries(result).map(([k, v]) => `${k}=${v.toFixed(2)}`).join(' ')}`);
  console.log(JSON.stringify({ [name]: result }));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}

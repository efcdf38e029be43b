// The server's CPU cost of one map frame, A/B: the same frames to the same long-lived streams,
// written through node:http2 (res.write) and through the DATA splice (h2-data-splice.ts).
// C connections of our real protocol client, in a child process so that only the server's
// CPU is counted, each hold one streaming response; the server then writes R rounds of one
// frame per stream (as the session hub flushes: every recipient in one turn of the event
// loop) and waits until the clients have read every byte.
// Run: `node dist/src/control/map-frame.bench.js [connections] [rounds] [frameBytes]`.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Http2ServerResponse } from 'node:http2';
import { ControlClient } from '../client/index.js';
import type { FrameSink } from './session/map-session.js';
import { pathOf, type NoiseRequestHandler } from './index.js';
import { startTestControlServer } from './testing.js';

type Path = 'http2' | 'splice';

interface Held {
  readonly sink: FrameSink;
  readonly res: Http2ServerResponse;
}

async function runClients(url: string, serverKey: string, count: number, path: Path, expectBytes: number): Promise<void> {
  const clients: ControlClient[] = [];
  let received = 0;
  for (let i = 0; i < count; i++) {
    const client = await ControlClient.connect({ serverUrl: url, serverKey: serverKey as ControlClient['serverKey'] });
    clients.push(client);
    const stream = client.session.request({ ':method': 'POST', ':path': `/bench/${path}` });
    stream.end();
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received === expectBytes) process.send!({ done: true });
    });
  }
  process.send!({ ready: true });
  process.on('message', (message: { exit?: boolean }) => {
    if (message.exit === true) void Promise.all(clients.map((c) => c.close())).then(() => process.exit(0));
  });
}

async function measure(path: Path, connections: number, rounds: number, frameBytes: number): Promise<number> {
  const held: Held[] = [];
  const handler: NoiseRequestHandler = (req, res, ctx) => {
    res.once('close', () => undefined);
    if (pathOf(req) === '/bench/splice' && ctx.splice !== null) {
      const stream = ctx.splice.open(res.stream.id!);
      res.once('close', () => stream.release());
      res.writeHead(200);
      held.push({ res, sink: { write: (f) => stream.write(f), onceDrain: (l) => stream.onceDrain(l), end: () => stream.end(() => res.end()) } });
    } else {
      res.writeHead(200);
      held.push({ res, sink: { write: (f) => res.write(f), onceDrain: (l) => res.once('drain', l), end: () => res.end() } });
    }
  };
  const server = await startTestControlServer({ handler, limits: { spliceMapFrames: true } });
  const child = fork(fileURLToPath(import.meta.url), ['clients', server.url, server.transport.publicKey, String(connections), path, String(connections * rounds * frameBytes)]);
  const ready = new Promise<void>((resolve) => child.on('message', (m: { ready?: boolean }) => m.ready === true && resolve()));
  const done = new Promise<void>((resolve) => child.on('message', (m: { done?: boolean }) => m.done === true && resolve()));
  await ready;
  while (held.length < connections) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 300));
  const frame = Buffer.alloc(frameBytes, 0x5a);
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let round = 0; round < rounds; round++) {
    for (const { sink } of held) {
      // Back-pressure as MapSession does: a full stream waits for its drain.
      if (!sink.write(frame)) await new Promise<void>((resolve) => sink.onceDrain(resolve));
    }
    await new Promise((r) => setImmediate(r));
  }
  await done;
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;
  const perFrameUs = (cpu.user + cpu.system) / (connections * rounds);
  console.log(
    `${path}: ${connections} streams x ${rounds} rounds of ${frameBytes}-byte frames in ${wallMs.toFixed(0)} ms; server ${perFrameUs.toFixed(1)} µs of CPU per frame (user ${(cpu.user / (connections * rounds)).toFixed(1)}, system ${(cpu.system / (connections * rounds)).toFixed(1)})`,
  );
  child.send({ exit: true });
  await once(child, 'exit');
  for (const { sink } of held) sink.end();
  await server.close();
  return perFrameUs;
}

const [, , first, ...rest] = process.argv;
if (first === 'clients') {
  const [url, key, count, path, expectBytes] = rest as [string, string, string, Path, string];
  void runClients(url, key, Number(count), path, Number(expectBytes));
} else {
  const connections = Number(first ?? 200);
  const rounds = Number(rest[0] ?? 50);
  const frameBytes = Number(rest[1] ?? 200);
  const results: Record<string, number> = {};
  // HEADWAY_BENCH_FRAME_PATH=splice (or http2) measures one path only, e.g. under --cpu-prof.
  const only = process.env['HEADWAY_BENCH_FRAME_PATH'];
  const paths: Path[] = only === 'splice' || only === 'http2' ? [only] : ['http2', 'splice', 'http2', 'splice'];
  for (const path of paths) {
    const us = await measure(path, connections, rounds, frameBytes);
    results[path] = Math.min(results[path] ?? Infinity, us);
  }
  console.log(JSON.stringify({ bench: 'control/map-frame', connections, rounds, frameBytes, http2_us_per_frame: results['http2'], splice_us_per_frame: results['splice'] }));
}

// The server's CPU cost of one map frame: frames to long-lived streams written as the map
// session writes them (res.write on our HTTP/2 connection, src/control/h2). Compare with an
// older build for A/B (before 2026-12-06 it measured node:http2 and the DATA splice).
// C connections of our real protocol client, in a child process so that only the server's
// CPU is counted, each hold one streaming response; the server then writes R rounds of one
// frame per stream (as the session hub flushes: every recipient in one turn of the event
// loop) and waits until the clients have read every byte.
// Run: `node dist/src/control/map-frame.bench.js [connections] [rounds] [frameBytes]`.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../client/index.js';
import type { FrameSink } from './session/map-session.js';
import type { NoiseRequestHandler, NoiseResponse } from './index.js';
import { startTestControlServer } from './testing.js';
import { responseSink } from './map-handler.js';

interface Held {
  readonly sink: FrameSink;
  readonly res: NoiseResponse;
}

async function runClients(url: string, serverKey: string, count: number, expectBytes: number): Promise<void> {
  const clients: ControlClient[] = [];
  let received = 0;
  for (let i = 0; i < count; i++) {
    const client = await ControlClient.connect({ serverUrl: url, serverKey: serverKey as ControlClient['serverKey'] });
    clients.push(client);
    const stream = client.session.request({ ':method': 'POST', ':path': '/bench/stream' });
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

async function measure(connections: number, rounds: number, frameBytes: number): Promise<number> {
  const held: Held[] = [];
  const handler: NoiseRequestHandler = (_req, res) => {
    res.writeHead(200);
    held.push({ res, sink: responseSink(res) });
  };
  const server = await startTestControlServer({ handler });
  const child = fork(fileURLToPath(import.meta.url), ['clients', server.url, server.transport.publicKey, String(connections), String(connections * rounds * frameBytes)]);
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
    `${connections} streams x ${rounds} rounds of ${frameBytes}-byte frames in ${wallMs.toFixed(0)} ms; server ${perFrameUs.toFixed(1)} µs of CPU per frame (user ${(cpu.user / (connections * rounds)).toFixed(1)}, system ${(cpu.system / (connections * rounds)).toFixed(1)})`,
  );
  child.send({ exit: true });
  await once(child, 'exit');
  for (const { sink } of held) sink.end();
  await server.close();
  return perFrameUs;
}

const [, , first, ...rest] = process.argv;
if (first === 'clients') {
  const [url, key, count, expectBytes] = rest as [string, string, string, string];
  void runClients(url, key, Number(count), Number(expectBytes));
} else {
  const connections = Number(first ?? 200);
  const rounds = Number(rest[0] ?? 50);
  const frameBytes = Number(rest[1] ?? 200);
  let best = Infinity;
  for (let run = 0; run < 2; run++) best = Math.min(best, await measure(connections, rounds, frameBytes));
  console.log(JSON.stringify({ bench: 'control/map-frame', connections, rounds, frameBytes, us_per_frame: best }));
}

/**
 * @module derp/relay.bench
 * Relay throughput between two DERP clients on loopback: the relay runs on its own worker
 * thread (as it would in a server process), both clients on the main thread. Models a pair of
 * nodes that found no direct path and push bulk traffic through the embedded relay.
 *
 * Run: `node --enable-source-maps dist/src/derp/relay.bench.js [--json]`.
 * Benchmarks never assert; they print medians.
 */
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { DerpClient } from '../client/derp/index.js';
import { Curve25519PrivateKey } from '../key/index.js';
import { attachDerp } from './http.js';
import { DerpServer } from './relay.js';

export interface RelayBenchCase {
  readonly name: string;
  readonly packetBytes: number;
  readonly packets: number;
  /** Both clients send to each other at once. */
  readonly bidirectional: boolean;
  /**
   * Packets a sender may have in flight (sent, not yet received). DERP has no end-to-end flow
   * control; the TCP or QUIC inside the tunnel provides it, so a window models real traffic.
   * Absent: flood (the sender is limited only by its TCP connection to the relay).
   */
  readonly window?: number;
}

export interface RelayBenchResult {
  readonly name: string;
  readonly packetsDelivered: number;
  readonly packetsSent: number;
  readonly seconds: number;
  readonly packetsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly droppedByRelay: number;
  readonly relayBusy: number;
}

export const relayBenchCases: readonly RelayBenchCase[] = [
  { name: 'derp/relay: 1280-byte packets one way, window 256', packetBytes: 1280, packets: 200_000, bidirectional: false, window: 256 },
  { name: 'derp/relay: 1280-byte packets both ways, window 256', packetBytes: 1280, packets: 100_000, bidirectional: true, window: 256 },
  { name: 'derp/relay: 64 KiB packets one way, window 16', packetBytes: 64 << 10, packets: 5_000, bidirectional: false, window: 16 },
];

interface ServerReady {
  readonly port: number;
}
interface ServerStats {
  readonly dropped: number;
  /** Share of wall time the relay thread was busy (event-loop utilisation), 0..1. */
  readonly busy: number;
}

function serveInWorker(): void {
  const relay = new DerpServer({ privateKey: Curve25519PrivateKey.generate() });
  const server = createServer();
  const derpHttp = attachDerp(server, { relay });
  server.on('request', (req, res) => {
    if (!derpHttp.handleRequest(req, res)) res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1', () => {
    parentPort!.postMessage({ port: (server.address() as AddressInfo).port } satisfies ServerReady);
  });
  let startElu = performance.eventLoopUtilization();
  parentPort!.on('message', (message: string) => {
    if (message === 'start') {
      startElu = performance.eventLoopUtilization();
    } else if (message === 'stats') {
      const d = relay.stats.dropped;
      const busy = performance.eventLoopUtilization(startElu).utilization;
      parentPort!.postMessage({ dropped: d.queue_head + d.unknown_dest + d.gone_disconnected, busy } satisfies ServerStats);
    } else if (message === 'stop') {
      relay.close();
      server.closeAllConnections();
      server.close();
      parentPort!.close();
    }
  });
}

/** One direction of traffic: sends `count` packets, keeping at most `window` in flight. */
class Flow {
  sent = 0;
  received = 0;
  #wake: (() => void) | null = null;

  constructor(
    readonly sender: DerpClient,
    readonly receiver: DerpClient,
    readonly window: number,
  ) {}

  onReceived(): void {
    this.received++;
    const wake = this.#wake;
    if (wake !== null && this.sent - this.received < this.window) {
      this.#wake = null;
      wake();
    }
  }

  async pump(packet: Buffer, count: number): Promise<void> {
    while (this.sent < count) {
      this.sender.sendPacket(this.receiver.publicKey, packet);
      this.sent++;
      if (this.sender.needsDrain) await this.sender.waitForDrain();
      if (this.sent - this.received >= this.window) {
        // Resume when a packet arrives, or after a while if packets were lost.
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          setTimeout(() => {
            if (this.#wake === resolve) {
              this.#wake = null;
              this.received = this.sent - this.window + 1;
              resolve();
            }
          }, 200);
        });
      }
    }
  }
}

export async function runRelayBench(benchCase: RelayBenchCase): Promise<RelayBenchResult> {
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { role: 'relay-server' } });
  const ready = await new Promise<ServerReady>((resolve) => worker.once('message', resolve));
  const url = `http://127.0.0.1:${ready.port}`;
  const a = await DerpClient.connect({ url, privateKey: Curve25519PrivateKey.generate() });
  const b = await DerpClient.connect({ url, privateKey: Curve25519PrivateKey.generate() });
  const packet = Buffer.alloc(benchCase.packetBytes, 0x5a);
  const expected = benchCase.bidirectional ? benchCase.packets * 2 : benchCase.packets;
  const window = benchCase.window ?? Number.POSITIVE_INFINITY;
  const flows = [new Flow(a, b, window)];
  if (benchCase.bidirectional) flows.push(new Flow(b, a, window));
  let delivered = 0;
  let lastAt = 0;
  let quietTimer: NodeJS.Timeout | undefined;
  const finished = new Promise<void>((resolve) => {
    const onPacket = (flow: Flow) => (): void => {
      delivered++;
      lastAt = performance.now();
      flow.onReceived();
      if (delivered === expected) resolve();
      // Drops are possible under overload; stop when nothing arrived for a while.
      clearTimeout(quietTimer);
      quietTimer = setTimeout(resolve, 1_000);
    };
    b.onPacket(onPacket(flows[0]!));
    if (flows[1] !== undefined) a.onPacket(onPacket(flows[1]));
  });
  worker.postMessage('start');
  const startedAt = performance.now();
  await Promise.all(flows.map((flow) => flow.pump(packet, benchCase.packets)));
  await finished;
  clearTimeout(quietTimer);
  worker.postMessage('stats');
  const serverStats = await new Promise<ServerStats>((resolve) => worker.once('message', resolve));
  worker.postMessage('stop');
  a.close();
  b.close();
  await worker.terminate();
  const seconds = (lastAt - startedAt) / 1000;
  return {
    name: benchCase.name,
    packetsDelivered: delivered,
    packetsSent: expected,
    seconds,
    packetsPerSecond: delivered / seconds,
    megabytesPerSecond: (delivered * benchCase.packetBytes) / seconds / 1e6,
    droppedByRelay: serverStats.dropped,
    relayBusy: serverStats.busy,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const runs = 5;
  const summary: Array<{ name: string; packetsPerSecond: number; megabytesPerSecond: number; droppedByRelay: number; relayBusy: number }> = [];
  for (const benchCase of relayBenchCases) {
    const results: RelayBenchResult[] = [];
    for (let i = 0; i < runs; i++) results.push(await runRelayBench(benchCase));
    const pps = median(results.map((r) => r.packetsPerSecond));
    const mbps = median(results.map((r) => r.megabytesPerSecond));
    const dropped = median(results.map((r) => r.droppedByRelay));
    const busy = median(results.map((r) => r.relayBusy));
    summary.push({ name: benchCase.name, packetsPerSecond: Math.round(pps), megabytesPerSecond: Math.round(mbps * 10) / 10, droppedByRelay: dropped, relayBusy: Math.round(busy * 100) / 100 });
    console.log(`${benchCase.name}: ${Math.round(pps).toLocaleString('en-US')} packets/s, ${mbps.toFixed(1)} MB/s (median of ${runs}; relay drops ${dropped}; relay thread busy ${Math.round(busy * 100)}%)`);
  }
  if (json) console.log(JSON.stringify(summary));
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'relay-server') {
  serveInWorker();
} else if (isMainThread && process.argv[1] === fileURLToPath(import.meta.url)) {
  await main();
}

// Benchmarks of the TS2021 record layer and handshake. Workloads: a map stream or register burst
// pushing full 4077-byte records (seal/open in memory, and through NoiseConnection over loopback
// TCP), and a fresh client connecting (handshake crypto, both sides and server side alone).
// Run: `node dist/src/noise/record-layer.bench.js` (human lines, then one JSON line).
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Curve25519PrivateKey } from '../key/index.js';
import { CipherState, MAX_PLAINTEXT_BYTES, NoiseConnection, RecordDecoder, acceptClientHandshake, beginClientHandshake, encodeRecords } from './index.js';

export interface BenchCase {
  readonly name: string;
  /** What real workload the case models. */
  readonly workload: string;
  run(): Promise<Record<string, number>>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export const benchmarks: BenchCase[] = [
  {
    name: 'noise/record-layer: seal 4077-byte records',
    workload: 'server pushing a large netmap: full records, one cipher',
    async run() {
      const cipher = new CipherState(randomBytes(32), 'big-endian');
      const plaintext = randomBytes(MAX_PLAINTEXT_BYTES * 64);
      const rounds = 64;
      const runs: number[] = [];
      for (let r = 0; r < 5; r++) {
        const start = nowMs();
        for (let i = 0; i < rounds; i++) encodeRecords(cipher, [plaintext]);
        runs.push((plaintext.length * rounds) / 1e6 / ((nowMs() - start) / 1000));
      }
      return { mb_per_s: median(runs) };
    },
  },
  {
    name: 'noise/record-layer: open 4077-byte records',
    workload: 'client or server receiving a large body: full records, one cipher',
    async run() {
      const key = randomBytes(32);
      const sender = new CipherState(key, 'big-endian');
      const plaintext = randomBytes(MAX_PLAINTEXT_BYTES * 64);
      const rounds = 64;
      const wires = Array.from({ length: rounds * 5 }, () => encodeRecords(sender, [plaintext]));
      const decoder = new RecordDecoder(new CipherState(key, 'big-endian'), () => 'bench');
      const runs: number[] = [];
      for (let r = 0; r < 5; r++) {
        const start = nowMs();
        for (let i = 0; i < rounds; i++) decoder.decode(wires[r * rounds + i] ?? Buffer.alloc(0));
        runs.push((plaintext.length * rounds) / 1e6 / ((nowMs() - start) / 1000));
      }
      return { mb_per_s: median(runs) };
    },
  },
  {
    name: 'noise/record-layer: NoiseConnection over loopback TCP, 64 MiB one way',
    workload: 'one Noise connection saturated in one direction (both ends in this process)',
    async run() {
      const controlKey = Curve25519PrivateKey.generate();
      const init = beginClientHandshake({ machineKey: Curve25519PrivateKey.generate(), controlPublic: controlKey.publicBytes, protocolVersion: 145 });
      const accepted = acceptClientHandshake({ controlKey, initiation: init.message });
      const clientSession = init.finish(accepted.response);
      const server = createServer();
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const serverSide = once(server, 'connection') as Promise<[Socket]>;
      const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
      await once(socket, 'connect');
      const [serverSocket] = await serverSide;
      const sender = new NoiseConnection(socket, clientSession);
      const receiver = new NoiseConnection(serverSocket, accepted.session);
      const total = 64 << 20;
      const chunk = randomBytes(256 << 10);
      let received = 0;
      const done = new Promise<void>((resolve) => {
        receiver.on('data', (data: Buffer) => {
          received += data.length;
          if (received >= total) resolve();
        });
      });
      const start = nowMs();
      for (let sent = 0; sent < total; sent += chunk.length) {
        if (!sender.write(chunk)) await once(sender, 'drain');
      }
      await done;
      const seconds = (nowMs() - start) / 1000;
      sender.destroy();
      receiver.destroy();
      server.close();
      return { mb_per_s: total / 1e6 / seconds };
    },
  },
  {
    name: 'noise/handshake: TS2021 handshake, client + server crypto',
    workload: 'a client connecting: initiation, response, split (no network)',
    async run() {
      const controlKey = Curve25519PrivateKey.generate();
      const machineKey = Curve25519PrivateKey.generate();
      const both: number[] = [];
      const serverOnly: number[] = [];
      for (let i = 0; i < 500; i++) {
        const t0 = nowMs();
        const init = beginClientHandshake({ machineKey, controlPublic: controlKey.publicBytes, protocolVersion: 145 });
        const t1 = nowMs();
        const accepted = acceptClientHandshake({ controlKey, initiation: init.message });
        const t2 = nowMs();
        init.finish(accepted.response);
        both.push(nowMs() - t0);
        serverOnly.push(t2 - t1);
      }
      return { median_ms_both_sides: median(both), median_ms_server_side: median(serverOnly) };
    },
  },
];

async function main(): Promise<void> {
  const results: Record<string, Record<string, number>> = {};
  for (const bench of benchmarks) {
    const result = await bench.run();
    results[bench.name] = result;
    const text = Object.entries(result)
      .map(([k, v]) => `${k}=${v.toFixed(3)}`)
      .join(' ');
    console.log(`${bench.name}: ${text}`);
  }
  console.log(JSON.stringify(results));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}

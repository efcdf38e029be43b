// The hostile-network benchmark (issue 17): the network benchmark's N connected clients and
// endpoint churn, run twice against a fresh server each time: once quiet, once while strangers
// hold S connections stalled mid-upgrade (a partial /ts2021 request, re-opened whenever the
// server closes one) and H connections that complete the Noise handshake and then say nothing
// (re-dialled whenever the server drops them). It reports both change-latency p99s, their
// ratio (the issue asks for at most 2x) and the server's memory under attack.
import { connect, type Socket } from 'node:net';
import { dialNoise, fetchServerKey, type NoiseDial } from '../client/index.js';
import { runNetwork, type BackgroundLoad, type NetworkOptions, type NetworkResult } from './network.js';

export interface HostileOptions extends Omit<NetworkOptions, 'background'> {
  /** Connections stalled mid-upgrade at any moment. */
  stalled: number;
  /** Connections that complete the handshake and then idle, at any moment. */
  handshakes: number;
}

export interface HostileResult {
  readonly scenario: 'hostile';
  readonly quiet: NetworkResult;
  readonly hostile: NetworkResult;
  /** hostile p99 / quiet p99. */
  readonly p99_ratio: number;
}

/** Source addresses for the stalled connections: 127.0.9.1, 127.0.9.2, ... (loopback on Linux). */
function strangerAddress(i: number, spread: number): string {
  return `127.0.9.${(i % spread) + 1}`;
}

export function strangers(stalled: number, handshakes: number): (serverUrl: string) => Promise<BackgroundLoad> {
  return async (serverUrl) => {
    const url = new URL(serverUrl);
    const port = Number(url.port);
    const serverKey = await fetchServerKey(serverUrl);
    let running = true;
    let connected = 0;
    const counters = { stalled_opened: 0, stalled_closed_by_server: 0, handshakes_completed: 0, handshakes_closed_by_server: 0, handshake_failures: 0 };
    const sockets = new Set<Socket>();
    const dials = new Set<NoiseDial>();
    // Spread over enough addresses that the per-address cap (256 by default) admits them all:
    // the point is the server's cost when they are admitted.
    const spread = Math.max(1, Math.ceil(stalled / 200));
    const openStalled = (i: number): void => {
      if (!running) return;
      const socket = connect({ host: url.hostname, port, localAddress: strangerAddress(i, spread) });
      sockets.add(socket);
      counters.stalled_opened++;
      socket.on('error', () => {});
      socket.on('connect', () => {
        connected++;
        socket.write(`POST /ts2021 HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: tailscale-control-protocol\r\n`);
      });
      socket.on('close', () => {
        sockets.delete(socket);
        if (!running) return;
        counters.stalled_closed_by_server++;
        setTimeout(() => openStalled(i), 100);
      });
    };
    const holdHandshake = async (): Promise<void> => {
      while (running) {
        try {
          const dial = await dialNoise({ serverUrl, serverKey, dialTimeoutMs: 30_000 });
          counters.handshakes_completed++;
          dials.add(dial);
          await new Promise<void>((resolve) => {
            dial.noise.once('close', () => resolve());
            dial.noise.on('error', () => {});
            // Read (and drop) what the server sends, so its close is seen.
            dial.noise.resume();
          });
          dials.delete(dial);
          if (running) counters.handshakes_closed_by_server++;
        } catch {
          counters.handshake_failures++;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    };
    for (let i = 0; i < stalled; i++) openStalled(i);
    const holders = Array.from({ length: handshakes }, () => holdHandshake());
    // The churn is measured with the strangers in place, not while they arrive.
    const deadline = performance.now() + 60_000;
    while ((connected < stalled || counters.handshakes_completed < handshakes) && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return {
      async stop() {
        running = false;
        for (const socket of sockets) socket.destroy();
        for (const dial of dials) dial.noise.destroy();
        await Promise.all(holders);
        return counters;
      },
    };
  };
}

export async function runHostile(options: HostileOptions): Promise<HostileResult> {
  const log = options.progress ?? (() => {});
  log(`quiet run: ${options.nodes} clients`);
  const quiet = await runNetwork(options);
  log(`hostile run: ${options.nodes} clients, ${options.stalled} stalled upgrades, ${options.handshakes} idle handshakes`);
  const hostile = await runNetwork({ ...options, background: strangers(options.stalled, options.handshakes) });
  return {
    scenario: 'hostile',
    quiet,
    hostile,
    p99_ratio: quiet.latency_p99_ms > 0 ? Math.round((hostile.latency_p99_ms / quiet.latency_p99_ms) * 100) / 100 : 0,
  };
}

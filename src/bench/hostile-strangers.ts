// The strangers of the hostile-network benchmark (hostile.ts), in a process of their own so their
// CPU is not charged to the measuring clients: S connections stalled mid-upgrade (a partial
// /ts2021 request, re-opened whenever the server closes one) and H connections that complete the
// Noise handshake and then say nothing (re-dialled whenever the server drops them).
// argv: serverUrl stalled handshakes. IPC: says {kind:'ready'} once all are in place; on 'stop'
// closes everything and says {kind:'stopped', counters}.
import { connect, type Socket } from 'node:net';
import { dialNoise, fetchServerKey, type NoiseDial } from '../client/index.js';

/** Source addresses for the stalled connections: 127.0.9.1, 127.0.9.2, ... (loopback on Linux). */
function strangerAddress(i: number, spread: number): string {
  return `127.0.9.${(i % spread) + 1}`;
}

async function main(serverUrl: string, stalled: number, handshakes: number): Promise<void> {
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
  process.send?.({ kind: 'ready' });
  process.once('message', () => {
    running = false;
    for (const socket of sockets) socket.destroy();
    for (const dial of dials) dial.noise.destroy();
    void Promise.all(holders).then(() => {
      process.send?.({ kind: 'stopped', counters }, () => process.exit(0));
    });
  });
}

const [serverUrl, stalledText, handshakesText] = process.argv.slice(2);
if (serverUrl === undefined || process.send === undefined) {
  process.stderr.write('hostile-strangers: run by the hostile benchmark (argv: serverUrl stalled handshakes, with an IPC channel)\n');
  process.exit(2);
}
main(serverUrl, Number(stalledText), Number(handshakesText)).catch((err: unknown) => {
  process.stderr.write(`hostile-strangers: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});


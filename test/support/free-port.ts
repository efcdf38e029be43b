// A loopback TCP port free at the time of asking, for a server whose URL must be known before it
// starts (a server_url every instance shares, a provider's registered callback).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The lowest port the kernel hands out as an outgoing connection's local port. Ports below it
 * are never taken by another process's connect() between our asking and the server's binding;
 * ports from listen(0) come from the ephemeral range and can be.
 */
function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const port = Number(low);
    return Number.isInteger(port) && port > 11_000 ? port : 32_768;
  } catch {
    return 32_768;
  }
}

const RANGE_END = ephemeralRangeStart();
const RANGE_START = Math.max(10_000, RANGE_END - 12_000);

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = RANGE_START + Math.floor(Math.random() * (RANGE_END - RANGE_START));
    if (await canListen(port)) return port;
  }
  throw new Error(`freePort: no free loopback port in ${RANGE_START}-${RANGE_END - 1} after 200 tries`);
}

/**
 * Runs `start` with `count` distinct ports that were free when asked for, and again with new
 * ones when a port was taken before the server bound it (another test picking the same port).
 */
export async function withFreePorts<T>(count: number, start: (ports: readonly number[]) => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports = new Set<number>();
    while (ports.size < count) ports.add(await freePort());
    try {
      return await start([...ports]);
    } catch (err) {
      if (attempt >= attempts || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
}

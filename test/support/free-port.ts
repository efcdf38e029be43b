// A loopback TCP port free at the time of asking, for a server whose URL must be known before it
// starts (a server_url every instance shares, a provider's registered callback).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Runs `start` with `count` distinct ports that were free when asked for, and again with new
 * ones when a port was taken before the server bound it: between asking and binding, any
 * process's outgoing connection may be given that port as its ephemeral local port.
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

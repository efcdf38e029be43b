// Test helpers for the derp part (Tailscale's fortest.go idea): a relay on a real HTTP server on
// port 0, and a condition waiter. Production code never imports this file.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { Curve25519PrivateKey } from '../key/index.js';
import { attachDerp, type DerpHttpHandler } from './http.js';
import { DerpServer, type DerpServerOptions } from './relay.js';

export interface TestDerp {
  readonly relay: DerpServer;
  readonly server: Server;
  readonly http: DerpHttpHandler;
  readonly registry: Registry;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

export async function startTestDerp(
  options: Partial<DerpServerOptions> & { readonly bootstrapDnsNames?: () => readonly string[] } = {},
): Promise<TestDerp> {
  const registry = new Registry();
  const { bootstrapDnsNames, ...relayOptions } = options;
  const relay = new DerpServer({ privateKey: Curve25519PrivateKey.generate(), metrics: registry, ...relayOptions });
  const server = createServer();
  const http = attachDerp(server, { relay, ...(bootstrapDnsNames === undefined ? {} : { bootstrapDnsNames }) });
  server.on('request', (req, res) => {
    if (!http.handleRequest(req, res)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    relay,
    server,
    http,
    registry,
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      relay.close();
      http.detach();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Waits until `condition()` holds; fails with `what` after `timeoutMs` (a hang guard, not a timing assertion). */
export async function waitUntil(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

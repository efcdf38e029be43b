import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DerpClient } from '../client/derp/index.js';
import { Curve25519PrivateKey, publicKeyHex } from '../key/index.js';
import { attachDerp } from './http.js';
import { DerpServer } from './relay.js';
import { startTestDerp, waitUntil, type TestDerp } from './testing.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function fetchRaw(derp: TestDerp, method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: derp.port, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw request bytes and collects everything until the server closes or `until` matches. */
async function rawExchange(derp: TestDerp, text: string, until?: RegExp): Promise<string> {
  const socket = connect(derp.port, '127.0.0.1');
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (received += chunk));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(text);
  if (until === undefined) await closed;
  else await waitUntil(`response matches ${until}`, () => until.test(received));
  socket.destroy();
  return received;
}

describe('DERP HTTP endpoints', () => {
  let derp: TestDerp;
  before(async () => {
    derp = await startTestDerp({ bootstrapDnsNames: () => ['localhost'] });
  });
  after(async () => {
    await derp.close();
  });

  for (const path of ['/derp/probe', '/derp/latency-check']) {
    it(`${path} answers GET and HEAD with 200 and CORS, other methods with 405`, async () => {
      for (const method of ['GET', 'HEAD']) {
        const answer = await fetchRaw(derp, method, path);
        assert.equal(answer.status, 200);
        assert.equal(answer.headers['access-control-allow-origin'], '*');
        assert.equal(answer.body, '');
      }
      assert.equal((await fetchRaw(derp, 'POST', path)).status, 405);
    });
  }

  it('/generate_204 echoes a valid captive-portal challenge', async () => {
    const answer = await fetchRaw(derp, 'GET', '/generate_204', { 'X-Tailscale-Challenge': 'ts_derp.example.com:443' });
    assert.equal(answer.status, 204);
    assert.equal(answer.headers['x-tailscale-response'], 'response ts_derp.example.com:443');
    assert.equal(answer.headers['cache-control'], 'no-cache, no-store, must-revalidate, no-transform, max-age=0');
  });

  it('/generate_204 leaves out the response for a challenge with bad characters or over 64 characters', async () => {
    for (const challenge of ['ts_bad challenge!', `ts_${'a'.repeat(62)}`]) {
      const answer = await fetchRaw(derp, 'GET', '/generate_204', { 'X-Tailscale-Challenge': challenge });
      assert.equal(answer.status, 204);
      assert.equal(answer.headers['x-tailscale-response'], undefined, challenge);
    }
    const noChallenge = await fetchRaw(derp, 'GET', '/generate_204');
    assert.equal(noChallenge.status, 204);
    assert.equal(noChallenge.headers['x-tailscale-response'], undefined);
  });

  it('answers /derp without an upgrade with 426', async () => {
    const answer = await fetchRaw(derp, 'GET', '/derp');
    assert.equal(answer.status, 426);
    assert.equal(answer.body, 'DERP requires connection upgrade');
  });

  it('answers a /derp upgrade to another protocol with 426', async () => {
    const text = await rawExchange(derp, 'GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
    assert.match(text, /DERP requires connection upgrade$/);
  });

  it('writes the 101 with our public key and speaks DERP for "Upgrade: websocket" without the derp subprotocol', async () => {
    const text = await rawExchange(derp, 'GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', /DERP/);
    assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\nDerp-Version: 2\r\n/);
    assert.ok(text.includes(`Derp-Public-Key: ${publicKeyHex(derp.relay.publicKey)}\r\n`));
  });

  it('leaves other paths to the caller, for requests and upgrades', async () => {
    assert.equal((await fetchRaw(derp, 'GET', '/key')).status, 404);
    const other = (req: { url?: string }, socket: { end(text: string): void }): void => {
      if (req.url === '/ts2021') socket.end('HTTP/1.1 418 Not DERP\r\nContent-Length: 0\r\n\r\n');
    };
    derp.server.on('upgrade', other);
    try {
      const text = await rawExchange(derp, 'GET /ts2021 HTTP/1.1\r\nHost: x\r\nUpgrade: tailscale-control-protocol\r\nConnection: Upgrade\r\n\r\n');
      assert.match(text, /^HTTP\/1\.1 418 Not DERP/);
    } finally {
      derp.server.off('upgrade', other);
    }
  });

  it('/bootstrap-dns answers the configured names with their addresses', async () => {
    const answer = await fetchRaw(derp, 'GET', '/bootstrap-dns?q=localhost');
    assert.equal(answer.status, 200);
    const parsed = JSON.parse(answer.body) as Record<string, string[]>;
    assert.ok(Array.isArray(parsed['localhost']) && parsed['localhost'].length > 0, answer.body);
  });
});

describe('attachDerp on a server with short HTTP timeouts', () => {
  it("keeps upgraded connections past the server's request, header and keep-alive timeouts", async () => {
    const relay = new DerpServer({ privateKey: Curve25519PrivateKey.generate() });
    const server = createServer({ requestTimeout: 100, headersTimeout: 50, keepAliveTimeout: 50, connectionsCheckingInterval: 20 });
    const handler = attachDerp(server, { relay });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const c = await DerpClient.connect({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, privateKey: Curve25519PrivateKey.generate() });
      // Several sweeps of the server's connection checker pass while the client is idle.
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal(c.isClosed, false);
      assert.equal((await c.ping()).length, 8);
      c.close();
    } finally {
      relay.close();
      handler.detach();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

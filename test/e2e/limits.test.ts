// Resource bounds (issue 17, item 2) against a real `headway serve` process over real sockets:
// connections that never finish their request head are capped per source address and in total
// and closed after limits.pending_timeout (also when they trickle bytes, slow-loris); request
// heads and Noise bodies have a size limit; registrations per address and per key and admin API
// requests per key are rate-limited with 429.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request as httpRequest } from 'node:http';
import { ControlClient, NodeClient } from '../../src/client/index.js';
import { Curve25519PrivateKey } from '../../src/key/index.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';

/** A TCP connection from `localAddress` (any 127.x.y.z works on Linux loopback). */
async function openFrom(port: number, localAddress: string): Promise<{ socket: Socket; closed: Promise<number> }> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  const opened = Date.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - opened)));
  socket.on('error', () => {});
  await new Promise<void>((resolve) => { socket.once('connect', () => resolve()); socket.once('close', () => resolve()); });
  return { socket, closed };
}

/** Whether the socket is closed within `ms`. */
async function closedWithin(closed: Promise<number>, ms: number): Promise<boolean> {
  return Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
}

function getHealth(url: string, localAddress: string): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest(`${url}/health`, { localAddress, agent: false, timeout: 3_000 }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', () => resolve(0));
    req.on('timeout', () => { req.destroy(); resolve(0); });
    req.end();
  });
}

describe('connections that have not sent a request head', () => {
  let server: ServerProcess;
  let port: number;
  before(async () => {
    server = await startServerProcess({
      extraConfig: ['limits: { max_pending_connections_per_address: 5, max_pending_connections: 12, pending_timeout: 1s }'],
    });
    port = Number(new URL(server.url).port);
  });
  after(async () => { await server.stop(); });

  it('are capped per source address; other addresses are still served', async () => {
    const conns = await Promise.all(Array.from({ length: 8 }, () => openFrom(port, '127.0.0.2')));
    const early = await Promise.all(conns.map((c) => closedWithin(c.closed, 300)));
    assert.equal(early.filter((closed) => closed).length, 3, 'the three beyond the 5 allowed are closed at once');
    assert.equal(await getHealth(server.url, '127.0.0.3'), 200, 'another address is served meanwhile');
    // The five admitted ones are closed by pending_timeout (1 s), not left open.
    const later = await Promise.all(conns.map((c) => closedWithin(c.closed, 3_000)));
    assert.ok(later.every(Boolean), 'every stalled connection is closed after pending_timeout');
    assert.equal(await getHealth(server.url, '127.0.0.2'), 200, 'the address is served again once its stalled connections are gone');
  });

  it('are capped in total', async () => {
    const stalled = [];
    for (let i = 0; i < 12; i++) stalled.push(await openFrom(port, `127.0.1.${i + 1}`));
    const over = await openFrom(port, '127.0.1.100');
    assert.ok(await closedWithin(over.closed, 500), 'the 13th pending connection is refused');
    assert.ok(!(await closedWithin(stalled[0]!.closed, 100)), 'the admitted ones are still open');
    for (const s of stalled) s.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await getHealth(server.url, '127.0.1.100'), 200);
  });

  it('are closed after pending_timeout even while they trickle bytes (slow-loris)', async () => {
    const { socket, closed } = await openFrom(port, '127.0.0.4');
    const head = 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ';
    let sent = 0;
    const trickle = setInterval(() => { if (!socket.destroyed) socket.write(head[sent++ % head.length]!); }, 100);
    try {
      assert.ok(await closedWithin(closed, 3_000), 'closed within the 1 s pending timeout (plus slack)');
      assert.ok(sent >= 5, 'it was sending all along');
    } finally {
      clearInterval(trickle);
    }
    assert.ok(server.alive());
  });

  it('refuses a request head larger than limits.max_header_bytes with 431', async () => {
    const res = await fetch(`${server.url}/health`, { headers: { 'x-big': 'a'.repeat(20_000) } });
    assert.equal(res.status, 431);
    assert.equal(await getHealth(server.url, '127.0.0.5'), 200);
  });
});

describe('request rates and bodies', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess({
      extraConfig: ['limits: { max_request_body_bytes: 4096, registrations_per_minute_per_address: 6, registrations_per_minute_per_key: 2, api_requests_per_minute_per_key: 5 }'],
    });
    await server.cli(['users', 'create', 'alice']);
  });
  after(async () => { await server.stop(); });

  it('refuses a Noise request body over limits.max_request_body_bytes with 413', async () => {
    const client = await ControlClient.connect({ serverUrl: server.url });
    try {
      const body = JSON.stringify({ Version: 130, NodeKey: Curve25519PrivateKey.generate().publicKey('node'), Hostinfo: { Hostname: 'x'.repeat(8000) } });
      const res = await client.request('/machine/register', body);
      assert.equal(res.status, 413);
    } finally {
      await client.close();
    }
  });

  it('limits registrations per pre-auth key and per address with 429', async () => {
    const keyA = JSON.parse(await server.cli(['preauthkeys', 'create', '--user', 'alice', '--reusable', '--output', 'json'])) as { key: string };
    const keyB = JSON.parse(await server.cli(['preauthkeys', 'create', '--user', 'alice', '--reusable', '--output', 'json'])) as { key: string };
    const keyC = JSON.parse(await server.cli(['preauthkeys', 'create', '--user', 'alice', '--reusable', '--output', 'json'])) as { key: string };
    const register = async (authKey: string): Promise<number> => {
      const client = await ControlClient.connect({ serverUrl: server.url });
      try {
        const body = JSON.stringify({ Version: 130, NodeKey: Curve25519PrivateKey.generate().publicKey('node'), Auth: { AuthKey: authKey }, Hostinfo: { Hostname: 'n' } });
        return (await client.request('/machine/register', body)).status;
      } finally {
        await client.close();
      }
    };
    // One registration already happened from this address (the 413 case above); refused ones
    // count against the address too.
    assert.deepEqual([await register(keyA.key), await register(keyA.key), await register(keyA.key)], [200, 200, 429], 'two per key');
    assert.deepEqual([await register(keyB.key), await register(keyB.key)], [200, 200], 'another key has its own two');
    assert.equal(await register(keyC.key), 429, 'a fresh key, but the address has used its 6');
    // A real client gets the error it can show, not a hang.
    const device = new NodeClient({ serverUrl: server.url, hostname: 'late' });
    try {
      await assert.rejects(device.loginWithAuthKey(keyC.key), /429|too many registrations/);
    } finally {
      await device.close();
    }
  });

  it('limits admin API requests per key with 429 and Retry-After; the unix socket is not limited', async () => {
    const apiKey = (await server.cli(['apikeys', 'create'])).trim();
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`${server.url}/api/v1/users`, { headers: { authorization: `Bearer ${apiKey}` } });
      await res.text();
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after');
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert.ok(retryAfter !== null && Number(retryAfter) >= 1, `Retry-After: ${retryAfter}`);
    // Guessing keys is limited too: an unknown key of the same prefix shares the bucket.
    const guess = await fetch(`${server.url}/api/v1/users`, { headers: { authorization: `Bearer ${apiKey.slice(0, 16)}${'x'.repeat(40)}` } });
    assert.equal(guess.status, 429);
    assert.match(await server.cli(['users', 'list']), /alice/);
  });
});

// The embedded DERP relay as clients that depend on it use it (issue 10): connections that
// outlive the silent-connection deadline over plain HTTP, Headway's own TLS and a
// TLS-terminating proxy. A real server on port 0, our DERP and protocol clients.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlClient } from '../../src/client/index.js';
import { DerpClient } from '../../src/client/derp/index.js';
import { Curve25519PrivateKey } from '../../src/key/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';

/** The shortened silent-connection deadline of these tests, and how long a connection is held. */
const SILENT_MS = 400;
const HOLD_MS = 2 * SILENT_MS + 600;
const DERP_KEEPALIVE_MS = 150;

interface TestCa {
  readonly dir: string;
  readonly caPem: Buffer;
  readonly certPath: string;
  readonly keyPath: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl). */
async function makeTestCa(): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'headway-ca-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Headway test CA');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
  return { dir, caPem: await readFile(join(dir, 'ca.pem')), certPath: join(dir, 'server.pem'), keyPath: join(dir, 'server.key') };
}

function opensslMissing(): string | false {
  try {
    execFileSync('openssl', ['version'], { stdio: 'pipe' });
    return false;
  } catch {
    return 'openssl is not installed: the test CA for the TLS cases is made with it';
  }
}

/** A TLS-terminating proxy: TLS in, plain TCP to `port` out (as nginx or a cloud balancer). */
async function startTlsProxy(ca: TestCa, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: TlsServer = createTlsServer({ cert: await readFile(ca.certPath), key: await readFile(ca.keyPath) }, (front) => {
    const back = netConnect({ host: '127.0.0.1', port });
    for (const s of [front, back]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { front.destroy(); back.destroy(); });
    }
    front.pipe(back);
    back.pipe(front);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Holds two DERP connections for HOLD_MS, then relays a packet each way: the connections must
 * have seen no close and some keep-alives.
 */
async function holdAndRelay(url: string, tls?: { ca: Buffer }): Promise<void> {
  const keyA = Curve25519PrivateKey.generate();
  const keyB = Curve25519PrivateKey.generate();
  const options = tls !== undefined ? { tls: { ca: tls.ca } } : {};
  const a = await DerpClient.connect({ url, privateKey: keyA, ...options });
  const b = await DerpClient.connect({ url, privateKey: keyB, ...options });
  const closes: string[] = [];
  a.onClose((err) => closes.push(`a: ${err?.message ?? 'closed'}`));
  b.onClose((err) => closes.push(`b: ${err?.message ?? 'closed'}`));
  try {
    await sleep(HOLD_MS);
    assert.deepEqual(closes, [], `no DERP connection may be closed within ${HOLD_MS} ms (deadline ${SILENT_MS} ms)`);
    assert.ok(a.counters.keepAlives >= 2 && b.counters.keepAlives >= 2, `keep-alives arrived (a ${a.counters.keepAlives}, b ${b.counters.keepAlives})`);
    const toB = new Promise<Buffer>((resolve) => b.onPacket((_src, packet) => resolve(packet)));
    const payload = randomBytes(1000);
    assert.ok(a.sendPacket(b.publicKey, payload));
    assert.deepEqual(await toB, payload);
    const toA = new Promise<Buffer>((resolve) => a.onPacket((_src, packet) => resolve(packet)));
    assert.ok(b.sendPacket(a.publicKey, Buffer.from('back')));
    assert.equal((await toA).toString(), 'back');
  } finally {
    a.close();
    b.close();
  }
}

/** Resolves with how long `socket` took to be closed by the server (or rejects after `limitMs`). */
function closedWithin(socket: Socket, limitMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server kept a silent connection past ${limitMs} ms`)), limitMs);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

const shortTimers = { controlLimits: { handshakeTimeoutMs: SILENT_MS }, derpKeepAliveMs: DERP_KEEPALIVE_MS };

describe('DERP connections outlive the silent-connection deadline', () => {
  describe('plain HTTP, and behind a TLS-terminating proxy', () => {
    let ts: TestServer;
    before(async () => {
      // Any key may use the relay here: these tests are about connection lifetime, not admission.
      ts = await startTestServer({ config: { derp: { server: { verify_clients: false } } }, start: shortTimers });
    });
    after(async () => { await ts.cleanup(); });

    it('keeps a plain DERP upgrade open for more than twice the deadline', async () => {
      await holdAndRelay(`${ts.server.url}/derp`);
    });

    it('still drops a connection that never sends a request', async () => {
      const port = Number(new URL(ts.server.url).port);
      const silent = netConnect({ host: '127.0.0.1', port });
      const took = await closedWithin(silent, SILENT_MS * 10);
      assert.ok(took >= SILENT_MS - 50, `dropped after ${took} ms, not before the deadline`);
    });

    it('keeps a kept-alive HTTP connection after its first request', async () => {
      const port = Number(new URL(ts.server.url).port);
      const socket = netConnect({ host: '127.0.0.1', port });
      let closed = false;
      socket.on('error', () => {});
      socket.once('close', () => { closed = true; });
      const answer = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
      socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      assert.match(await answer, /^HTTP\/1\.1 200/);
      await sleep(HOLD_MS);
      assert.equal(closed, false, 'a connection that sent a request is not a silent one');
      socket.destroy();
    });

    it('keeps a DERP connection through a TLS-terminating proxy', { skip: opensslMissing() }, async () => {
      const ca = await makeTestCa();
      const proxy = await startTlsProxy(ca, Number(new URL(ts.server.url).port));
      try {
        await holdAndRelay(`${proxy.url}/derp`, { ca: ca.caPem });
      } finally {
        await proxy.close();
        await rm(ca.dir, { recursive: true, force: true });
      }
    });
  });

  describe("Headway's own TLS", { skip: opensslMissing() }, () => {
    let ts: TestServer;
    let ca: TestCa;
    before(async () => {
      ca = await makeTestCa();
      ts = await startTestServer({
        config: { tls_cert_path: ca.certPath, tls_key_path: ca.keyPath, derp: { server: { verify_clients: false } } },
        start: shortTimers,
      });
    });
    after(async () => {
      await ts.cleanup();
      await rm(ca.dir, { recursive: true, force: true });
    });

    it('serves https', () => {
      assert.match(ts.server.url, /^https:\/\//);
    });

    it('keeps a DERP upgrade over TLS open for more than twice the deadline', async () => {
      await holdAndRelay(`${ts.server.url}/derp`, { ca: ca.caPem });
    });

    it('keeps a control (Noise) connection over TLS open and usable', async () => {
      const control = await ControlClient.connect({ serverUrl: ts.server.url, rejectUnauthorized: false });
      let closed = false;
      void control.closed.then(() => { closed = true; });
      try {
        await sleep(HOLD_MS);
        assert.equal(closed, false, 'the Noise connection must not be cut');
        const answer = await control.request('/machine/no-such-endpoint', '{}');
        assert.equal(answer.status, 404, 'the same connection still answers');
      } finally {
        await control.close();
      }
    });

    it('still drops a TLS connection that never sends a request', async () => {
      const port = Number(new URL(ts.server.url).port);
      const silent = tlsConnect({ host: '127.0.0.1', port, ca: ca.caPem, servername: 'localhost' });
      const took = await closedWithin(silent, SILENT_MS * 10);
      assert.ok(took >= SILENT_MS - 50, `dropped after ${took} ms, not before the deadline`);
    });
  });
});

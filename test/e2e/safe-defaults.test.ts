// Safe defaults (issue 17, item 5), checked against a real server over real sockets: /metrics
// only on its own loopback listener, security headers on pages a browser opens, TLS 1.2 at
// least, an admin socket no other user can open, and key secrets never stored in clear.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { connect as tlsConnect, type SecureVersion } from 'node:tls';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { NodeClient } from '../../src/client/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';

const admin = { name: 'test' };

async function get(url: string): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('metrics listener', () => {
  let ts: TestServer;
  before(async () => { ts = await startTestServer(); });
  after(async () => { await ts.cleanup(); });

  it('serves /metrics on its own loopback listener and never on the main one', async () => {
    const metricsUrl = ts.server.metricsUrl;
    assert.ok(metricsUrl !== null);
    assert.match(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.notEqual(new URL(metricsUrl).port, new URL(ts.server.url).port);
    const metrics = await get(metricsUrl);
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^headway_map_sessions /m);
    const onMain = await get(`${ts.server.url}/metrics`);
    assert.equal(onMain.status, 404);
    assert.doesNotMatch(onMain.text, /headway_/);
    // The metrics listener serves nothing else.
    assert.equal((await get(metricsUrl.replace('/metrics', '/health'))).status, 404);
  });

  it('defaults to 127.0.0.1:9090 and turns off with ""', async () => {
    const { configFromObject } = await import('../../src/config/index.js');
    assert.deepEqual(configFromObject({}, { source: 'test', baseDir: '/tmp' }).metricsListenAddr, { host: '127.0.0.1', port: 9090 });
    const off = await startTestServer({ config: { metrics_listen_addr: '' } });
    try {
      assert.equal(off.server.metricsUrl, null);
      assert.equal((await get(`${off.server.url}/metrics`)).status, 404);
    } finally {
      await off.cleanup();
    }
  });
});

describe('pages a browser opens', () => {
  let ts: TestServer;
  before(async () => { ts = await startTestServer(); });
  after(async () => { await ts.cleanup(); });

  function assertSecurityHeaders(headers: Headers, what: string): void {
    const csp = headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/, what);
    assert.match(csp, /frame-ancestors 'none'/, what);
    assert.doesNotMatch(csp, /script-src/, `${what}: no scripts allowed`);
    assert.equal(headers.get('x-content-type-options'), 'nosniff', what);
    assert.equal(headers.get('x-frame-options'), 'DENY', what);
    assert.equal(headers.get('referrer-policy'), 'no-referrer', what);
    assert.equal(headers.get('cache-control'), 'no-store', what);
  }

  it('sends security headers with the login page, the root and 404s', async () => {
    // A device waiting for interactive approval: its AuthURL opens the login page.
    const device = new NodeClient({ serverUrl: ts.server.url, hostname: 'laptop<script>' });
    try {
      const response = await device.register();
      assert.ok(response.AuthURL, 'an interactive login gets an AuthURL');
      const page = await get(response.AuthURL);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(page.text, /laptop&#60;script&#62;/, 'the hostname is escaped');
      assertSecurityHeaders(page.headers, 'login page');
      assertSecurityHeaders((await get(`${ts.server.url}/register/AAAAAAAAAAAAAAAA`)).headers, 'unknown login page');
      assertSecurityHeaders((await get(`${ts.server.url}/`)).headers, 'root');
      assertSecurityHeaders((await get(`${ts.server.url}/no/such/page`)).headers, '404');
    } finally {
      await device.close();
    }
  });
});

describe('TLS', () => {
  let ts: TestServer;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'headway-tls-'));
    const certPath = join(dir, 'cert.pem');
    const keyPath = join(dir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-keyout', keyPath, '-out', certPath,
    ], { stdio: 'ignore' });
    ts = await startTestServer({ config: { tls_cert_path: certPath, tls_key_path: keyPath } });
  });
  after(async () => {
    await ts.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  /** The negotiated protocol, or the error text when the handshake fails. */
  function handshake(minVersion: SecureVersion, maxVersion: SecureVersion): Promise<{ ok: true; protocol: string } | { ok: false; error: string }> {
    const url = new URL(ts.server.url);
    return new Promise((resolve) => {
      const socket = tlsConnect({
        host: url.hostname, port: Number(url.port), rejectUnauthorized: false, minVersion, maxVersion,
        // Let the client offer old versions at all; the server must be the one refusing.
        ciphers: 'DEFAULT:@SECLEVEL=0',
      });
      socket.once('secureConnect', () => { resolve({ ok: true, protocol: socket.getProtocol() ?? '' }); socket.destroy(); });
      socket.once('error', (err) => resolve({ ok: false, error: err.message }));
    });
  }

  it('accepts TLS 1.2 and 1.3 and refuses older versions', async () => {
    assert.match(ts.server.url, /^https:/);
    assert.deepEqual(await handshake('TLSv1.3', 'TLSv1.3'), { ok: true, protocol: 'TLSv1.3' });
    assert.deepEqual(await handshake('TLSv1.2', 'TLSv1.2'), { ok: true, protocol: 'TLSv1.2' });
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const result = await handshake(version, version);
      assert.equal(result.ok, false, `${version} must be refused`);
    }
  });
});

describe('admin socket and stored secrets', () => {
  it('creates the admin socket with the configured group-restricted mode', async () => {
    const ts = await startTestServer({ api: (await import('../../src/api/index.js')).createApiHandler });
    try {
      const info = await stat(ts.server.socketPath);
      assert.ok(info.isSocket());
      assert.equal(info.mode & 0o777, 0o770);
    } finally {
      await ts.cleanup();
    }
    const ownerOnly = await startTestServer({ api: (await import('../../src/api/index.js')).createApiHandler, config: { unix_socket_permission: '0700' } });
    try {
      assert.equal((await stat(ownerOnly.server.socketPath)).mode & 0o777, 0o700);
    } finally {
      await ownerOnly.cleanup();
    }
  });

  it('stores API keys and pre-auth keys only as hashes', async () => {
    const ts = await startTestServer({ dialect: 'sqlite' });
    try {
      const database = ts.config.database;
      assert.equal(database.type, 'sqlite');
      const apiKey = await ts.server.state.createApiKey(null, admin);
      const user = await ts.createUser('alice');
      const authKey = await ts.authKey(user);
      assert.match(apiKey.secret, /^hwk_/);
      assert.match(authKey, /^hwkey-auth-/);
      await ts.server.close();
      // Every file the server wrote: the database with its WAL, the data directory.
      const seen: string[] = [];
      const dirs = [ts.dataDir, dirname(database.sqlite.path)];
      const files = (await Promise.all(dirs.map(async (d) => (await readdir(d)).map((name) => join(d, name))))).flat();
      let bytes = 0;
      for (const path of files) {
        const name = basename(path);
        if (!(await stat(path)).isFile()) continue;
        const content = await readFile(path);
        bytes += content.length;
        seen.push(name);
        for (const secret of [apiKey.secret, authKey]) {
          const secretPart = secret.slice(-40);
          assert.equal(content.includes(secretPart), false, `${name} holds a key secret in clear`);
        }
      }
      assert.ok(seen.some((name) => name.endsWith('.sqlite')), `the database file was read (saw ${seen.join(', ')})`);
      assert.ok(bytes > 0);
    } finally {
      await ts.cleanup();
    }
  });
});

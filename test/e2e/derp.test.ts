// The embedded DERP relay as clients that depend on it use it (issue 10): connections that
// outlive the silent-connection deadline over plain HTTP, Headway's own TLS and a
// TLS-terminating proxy; home regions reaching peers of every capability version; the embedded
// node of an http:// server. A real server on port 0, our DERP and protocol clients.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlClient, NodeClient } from '../../src/client/index.js';
import { DerpClient } from '../../src/client/derp/index.js';
import { Curve25519PrivateKey } from '../../src/key/index.js';
import type * as tailcfg from '../../src/tailcfg/index.js';
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
async function holdAndRelay(url: string, tls?: { ca: Buffer } | { rejectUnauthorized: false }): Promise<void> {
  const keyA = Curve25519PrivateKey.generate();
  const keyB = Curve25519PrivateKey.generate();
  const options = tls !== undefined ? { tls } : {};
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

    it('keeps a DERP connection over TLS on the plain port (the InsecureForTests node) open', async () => {
      await holdAndRelay(`${ts.server.url.replace(/^http:/, 'https:')}/derp`, { rejectUnauthorized: false });
    });

    it('still drops a connection that never sends a request', async () => {
      // This http:// server also answers TLS on its port: the listener that waits for the first
      // byte to tell them apart must keep the same deadline.
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

    it('serves https, and its embedded DERP node is a normal (verified) one', () => {
      assert.match(ts.server.url, /^https:\/\//);
      const node = ts.server.derpMap.current().Regions[String(ts.config.derp.server.regionId)]?.Nodes[0];
      assert.ok(node !== undefined);
      assert.equal(node.InsecureForTests, undefined);
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

/**
 * The home region of `peer` as a client of `capVersion` reads it: HomeDERP from 111 on (with the
 * legacy field as fallback, as tailscaled does), only the legacy `DERP` magic address below.
 */
function regionAsRead(peer: tailcfg.Node | undefined, capVersion: number): number {
  if (peer === undefined) return 0;
  const legacy = /^127\.3\.3\.40:(\d+)$/.exec(peer.DERP ?? '');
  const fromLegacy = legacy === null ? 0 : Number(legacy[1]);
  if (capVersion >= 111) return peer.HomeDERP !== undefined && peer.HomeDERP !== 0 ? peer.HomeDERP : fromLegacy;
  return fromLegacy;
}

describe('home DERP regions across client generations', () => {
  let ts: TestServer;
  let authKey: string;
  let region: number;
  const clients: NodeClient[] = [];
  before(async () => {
    ts = await startTestServer();
    authKey = await ts.authKey(await ts.createUser('nat'));
    region = ts.server.config.derp.server.regionId;
  });
  after(async () => {
    for (const c of clients) await c.close();
    await ts.cleanup();
  });

  /** A device that logs in and holds a map poll; `relayOnly` 1.34s have no endpoints: every request is ReadOnly. */
  async function device(hostname: string, capVersion: number, options: { relayOnly?: boolean } = {}): Promise<NodeClient> {
    const client = new NodeClient({ serverUrl: ts.server.url, hostname, capVersion });
    clients.push(client);
    await client.loginWithAuthKey(authKey);
    await client.startMap(options.relayOnly === true ? { readOnly: true } : {});
    await client.waitFor('a netmap', (nm) => nm.self !== null);
    return client;
  }

  /** Reports `home` as the client of its version does (protocol.md 9.1). */
  async function reportHome(client: NodeClient, home: number, options: { relayOnly?: boolean } = {}): Promise<void> {
    const hostinfo = { NetInfo: { PreferredDERP: home } };
    // 1.34 without endpoints sends ReadOnly lite updates; 1.78 and newer plain lite updates.
    const status = await client.liteUpdate(options.relayOnly === true ? { hostinfo, readOnly: true } : { hostinfo });
    assert.equal(status, 200);
  }

  async function expectRegion(viewer: NodeClient, peer: NodeClient, want: number): Promise<void> {
    const label = peer.hostinfo.Hostname!;
    await viewer.waitFor(`${label}'s home region ${want} as capver ${viewer.capVersion} reads it`, (nm) => regionAsRead(nm.peerByName(label), viewer.capVersion) === want);
  }

  /** The peer as a viewer that joins now gets it in its first netmap: the full node's own fields. */
  async function expectWireForm(peer: NodeClient, capVersion: number, want: number): Promise<void> {
    const late = await device(`late-${capVersion}-${peer.hostinfo.Hostname!}`, capVersion);
    const label = peer.hostinfo.Hostname!;
    await late.waitFor(`${label} in the first netmap`, (nm) => nm.peerByName(label) !== undefined);
    const node = late.netmap.peerByName(label)!;
    if (capVersion >= 111) {
      assert.equal(node.HomeDERP, want, `capver ${capVersion} reads HomeDERP`);
      assert.equal(node.DERP, undefined, `capver ${capVersion} needs no legacy DERP`);
    } else {
      assert.equal(node.DERP, `127.3.3.40:${want}`, `capver ${capVersion} reads only the legacy DERP field`);
      assert.equal(node.HomeDERP, undefined);
    }
    await late.close();
  }

  it('a relay-only 1.34 (capver 51) reporter reaches 51, 109, 130 and 145 viewers', async () => {
    const viewers = [await device('v51', 51), await device('v109', 109), await device('v130', 130), await device('v145', 145)];
    const reporter = await device('r51', 51, { relayOnly: true });
    await reportHome(reporter, region, { relayOnly: true });
    for (const viewer of viewers) await expectRegion(viewer, reporter, region);
    for (const capVersion of [51, 109, 130, 145]) await expectWireForm(reporter, capVersion, region);
  });

  it('109 and 130 reporters reach a 1.34 (capver 51) viewer, and a changed home follows', async () => {
    const viewer = await device('w51', 51);
    const r109 = await device('r109', 109);
    const r130 = await device('r130', 130);
    await reportHome(r109, region);
    await reportHome(r130, region);
    await expectRegion(viewer, r109, region);
    await expectRegion(viewer, r130, region);
    await expectWireForm(r109, 51, region);
    await expectWireForm(r130, 51, region);
    // Losing the home region (0) must clear it for the old viewer too.
    await reportHome(r130, 0);
    await expectRegion(viewer, r130, 0);
  });

  it('keeps the home region when a later request carries Hostinfo without NetInfo', async () => {
    const viewer = await device('x109', 109);
    const reporter = await device('x51', 51, { relayOnly: true });
    await reportHome(reporter, region, { relayOnly: true });
    await expectRegion(viewer, reporter, region);
    // 1.34 re-opens its poll (ReadOnly, no endpoints) with a Hostinfo that lacks NetInfo.
    reporter.hostinfo = { ...reporter.hostinfo, NetInfo: null };
    await reporter.stopMap();
    await reporter.startMap({ readOnly: true });
    await reporter.waitFor('a netmap again', (nm) => nm.self !== null);
    await expectWireForm(reporter, 109, region);
  });
});

describe('the embedded DERP node of an http:// server', () => {
  let ts: TestServer;
  const logLines: string[] = [];
  before(async () => {
    const logger = pino({ level: 'warn' }, new Writable({ write(chunk: Buffer, _enc, done) { logLines.push(chunk.toString()); done(); } }));
    ts = await startTestServer({ logger });
  });
  after(async () => { await ts.cleanup(); });

  it('is marked InsecureForTests, with a warning that this is for tests and local setups', async () => {
    assert.match(ts.server.serverUrl, /^http:\/\//);
    const client = new NodeClient({ serverUrl: ts.server.url, hostname: 'insecure-view' });
    try {
      await client.loginWithAuthKey(await ts.authKey(await ts.createUser('ivy')));
      await client.startMap();
      await client.waitFor('the DERP map', (nm) => nm.derpMap !== null);
      const node = client.netmap.derpMap!.Regions[String(ts.config.derp.server.regionId)]!.Nodes[0]!;
      assert.equal(node.InsecureForTests, true);
    } finally {
      await client.close();
    }
    const warning = logLines.find((line) => line.includes('InsecureForTests'));
    assert.ok(warning !== undefined, 'a warning names the insecure node');
    assert.match(warning, /tests and local setups/);
    assert.match(warning, /"level":40/);
  });

  it('answers TLS on its plain port, so a client that speaks TLS to every DERP node can relay', async () => {
    // What tailscaled does with an InsecureForTests node: TLS to HostName:DERPPort, no certificate check.
    const region = ts.server.derpMap.current().Regions[String(ts.config.derp.server.regionId)]!;
    const node = region.Nodes[0]!;
    const user = await ts.createUser('tess');
    const key = await ts.authKey(user);
    const devices = [new NodeClient({ serverUrl: ts.server.url, hostname: 'tls-a' }), new NodeClient({ serverUrl: ts.server.url, hostname: 'tls-b' })];
    for (const d of devices) await d.loginWithAuthKey(key);
    const url = `https://${node.HostName}:${node.DERPPort}/derp`;
    const [a, b] = await Promise.all(devices.map((d) => DerpClient.connect({ url, privateKey: d.nodeKey, tls: { rejectUnauthorized: false } })));
    try {
      const got = new Promise<Buffer>((resolve) => b!.onPacket((_src, packet) => resolve(packet)));
      const payload = randomBytes(1300);
      a!.sendPacket(b!.publicKey, payload);
      assert.deepEqual(await got, payload);
      // Plain HTTP on the same port still serves control and DERP.
      const plain = await DerpClient.connect({ url: `${ts.server.url}/derp`, privateKey: devices[0]!.nodeKey });
      plain.close();
    } finally {
      a!.close();
      b!.close();
      for (const d of devices) await d.close();
    }
  });
});

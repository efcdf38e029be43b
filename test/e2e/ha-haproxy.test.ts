// High availability as it is deployed: three Headway processes (`headway serve`) on one
// PostgreSQL behind HAProxy (TCP, round robin), 200 of our protocol clients connected through
// HAProxy. Shows convergence, a policy change crossing instances, SIGKILL of an instance (its
// clients reconnect elsewhere, keep their addresses, an HA subnet router fails over, no
// acknowledged write is lost), a database outage in the middle, and the DERP mesh.
//
// The database restart is a real one: the suite runs on a PostgreSQL cluster of its own (initdb
// on a free port, test/support/private-postgres.ts), which the test stops and starts while the
// instances serve; the PostgreSQL that other suites on this machine share keeps running. Where
// no private cluster can be made (no initdb) the suite runs on the shared server and the restart
// case is skipped, saying why.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeClient } from '../../src/client/index.js';
import { DerpClient } from '../../src/client/derp/index.js';
import { TEST_HA_SECRET } from '../../src/ha/testing.js';
import { createTestDatabase, type TestDatabase } from '../../src/store/testing.js';
import { freePort } from '../support/free-port.js';
import { createPrivatePostgres, privatePostgresUnavailable, type PrivatePostgres } from '../support/private-postgres.js';

const CLIENTS = 200;
const INSTANCES = 3;
const ROUTE = '10.99.0.0/24';
const here = fileURLToPath(new URL('.', import.meta.url));
const MAIN = resolve(here, '..', '..', 'src', 'cli', 'main.js');
const HAPROXY = spawnSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' }).stdout.trim();
const NO_PRIVATE_POSTGRES = await privatePostgresUnavailable();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const index = next++;
      out[index] = await fn(items[index]!, index);
    }
  }));
  return out;
}

/** The admin API over an instance's unix socket (no API key: the socket's permissions guard it). */
function admin(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolvePromise, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath, method, path: `/api/v1${path}`, headers: payload === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, json: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

interface Instance {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  /** The loopback metrics listener (not on the main listener). */
  readonly metricsUrl: string;
  readonly socketPath: string;
  readonly dir: string;
  process: ChildProcess;
  log: string;
}

describe('high availability behind HAProxy (three processes, one PostgreSQL, 200 clients)', { skip: HAPROXY === '' ? 'haproxy is not installed (.ci/run installs it; apt-get install -y haproxy)' : false }, () => {
  // The private cluster (restartable) or, without initdb, a database on the shared server.
  let postgres: PrivatePostgres | null = null;
  let database: TestDatabase | null = null;
  let haproxy: ChildProcess | null = null;
  let haproxyUrl = '';
  let workDir = '';
  const instances: Instance[] = [];
  const clients: NodeClient[] = [];
  const routers: NodeClient[] = [];
  let watcher: NodeClient;

  const startInstance = async (instance: Instance): Promise<void> => {
    const child = spawn(process.execPath, ['--enable-source-maps', MAIN, 'serve', '--config', join(instance.dir, 'config.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    instance.process = child;
    const keep = (chunk: Buffer) => { instance.log = (instance.log + chunk.toString('utf8')).slice(-200_000); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    await waitUntil(`${instance.id} to serve`, async () => {
      const ok = await fetch(`${instance.url}/health`).then((r) => r.ok, () => false);
      if (!ok && child.exitCode !== null) assert.fail(`${instance.id} exited: ${instance.log}`);
      return ok;
    }, 30_000);
  };

  /** Our client with the reconnect loop a real client has: retry through HAProxy until mapped. */
  const reconnect = async (client: NodeClient): Promise<void> => {
    for (;;) {
      try {
        await client.stopMap().catch(() => undefined);
        const before = client.received.length;
        await client.startMap();
        await client.waitFor('a new map', () => client.received.length > before && client.received.slice(before).some((m) => m.Node !== undefined), 5_000);
        return;
      } catch {
        await sleep(200);
      }
    }
  };

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'headway-haproxy-'));
    if (NO_PRIVATE_POSTGRES === null) {
      postgres = await createPrivatePostgres();
    } else {
      database = await createTestDatabase('postgres');
    }
    const dbUrl = new URL(postgres?.url ?? (database?.database.type === 'postgres' ? database.database.postgres.url! : ''));
    const frontPort = await freePort();
    haproxyUrl = `http://127.0.0.1:${frontPort}`;
    for (let i = 1; i <= INSTANCES; i++) {
      const port = await freePort();
      const metricsPort = await freePort();
      const dir = join(workDir, `hw-${i}`);
      const instance: Instance = { id: `hw-${i}`, port, url: `http://127.0.0.1:${port}`, metricsUrl: `http://127.0.0.1:${metricsPort}`, socketPath: join(dir, 'headway.sock'), dir, process: null as unknown as ChildProcess, log: '' };
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'config.yaml'), [
        `server_url: ${haproxyUrl}`,
        `listen_addr: 127.0.0.1:${port}`,
        `metrics_listen_addr: 127.0.0.1:${metricsPort}`,
        `data_dir: ${dir}`,
        'log: { level: warn, format: json }',
        'map: { coalesce_window: 20ms }',
        'derp: { server: { stun_listen_addr: "127.0.0.1:0" } }',
        `database: { type: postgres, postgres: { url: "${dbUrl.toString()}", max_open_conns: 8 } }`,
        `ha: { enabled: true, instance_id: hw-${i}, secret: "${TEST_HA_SECRET}", lease_duration: 4s, heartbeat_interval: 1s }`,
        '',
      ].join('\n'));
      instances.push(instance);
    }
    // One after the other: the first creates the schema and the shared keys.
    for (const instance of instances) await startInstance(instance);

    const haproxyConfig = join(workDir, 'haproxy.cfg');
    await writeFile(haproxyConfig, [
      'global',
      '  maxconn 2000',
      'defaults',
      '  mode tcp',
      '  timeout connect 1s',
      '  timeout client 10m',
      '  timeout server 10m',
      '  retries 3',
      '  option redispatch',
      'frontend headway',
      `  bind 127.0.0.1:${frontPort}`,
      '  default_backend instances',
      'backend instances',
      '  balance roundrobin',
      ...instances.map((i) => `  server ${i.id} 127.0.0.1:${i.port} check inter 300ms fall 2 rise 2`),
      '',
    ].join('\n'));
    haproxy = spawn(HAPROXY, ['-db', '-f', haproxyConfig], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitUntil('HAProxy to forward', () => fetch(`${haproxyUrl}/health`).then((r) => r.ok, () => false), 10_000);
  });

  after(async () => {
    await Promise.all([...clients, ...routers, watcher].filter((c) => c !== undefined).map((c) => c.close().catch(() => undefined)));
    for (const instance of instances) {
      if (instance.process.exitCode === null && instance.process.signalCode === null) {
        instance.process.kill('SIGTERM');
        await new Promise((r) => { instance.process.once('exit', r); setTimeout(r, 5_000); });
      }
    }
    haproxy?.kill('SIGTERM');
    await postgres?.cleanup();
    await database?.cleanup();
    if (workDir !== '') await rm(workDir, { recursive: true, force: true });
  });

  const [one, two, three] = [0, 1, 2];
  let authKey = '';

  it('registers 200 clients spread over the instances; every netmap converges', async () => {
    assert.equal((await admin(instances[one]!.socketPath, 'POST', '/users', { name: 'alice' })).status, 201);
    const policy = { acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }], autoApprovers: { routes: { [ROUTE]: ['alice@'] } } };
    assert.equal((await admin(instances[two]!.socketPath, 'PUT', '/policy', { policy: JSON.stringify(policy) })).status, 200);
    const key = await admin(instances[three]!.socketPath, 'POST', '/preauthkeys', { user: 'alice', reusable: true, expiration: '2h' });
    assert.equal(key.status, 201);
    authKey = String(key.json.key);

    const names = Array.from({ length: CLIENTS }, (_, i) => `c${i}`);
    clients.push(...await pool(names, 16, async (name) => {
      const client = new NodeClient({ serverUrl: haproxyUrl, hostname: name, capVersion: 109 });
      await client.loginWithAuthKey(authKey);
      await client.startMap();
      await client.waitFor('the first netmap', (nm) => nm.self !== null, 20_000);
      return client;
    }));
    // Round robin spread the clients: every instance holds a share of the map sessions.
    const sessions = await Promise.all(instances.map(async (i) => {
      const metrics = await fetch(`${i.metricsUrl}/metrics`).then((r) => r.text());
      return Number(/^headway_map_sessions (\d+)$/m.exec(metrics)?.[1] ?? 'NaN');
    }));
    assert.equal(sessions.reduce((a, b) => a + b, 0), CLIENTS, `sessions per instance: ${sessions.join(', ')}`);
    for (const count of sessions) assert.ok(count >= CLIENTS / INSTANCES / 2, `sessions per instance: ${sessions.join(', ')}`);
    await pool(clients, 50, (client) => client.waitFor('every peer online', (nm) => {
      if (nm.peers.size < CLIENTS - 1) return false;
      for (const peer of nm.peers.values()) if (peer.Online !== true) return false;
      return true;
    }, 60_000));
  });

  it('carries a policy change made through instance 1 to the clients of instances 2 and 3', async () => {
    const policy = { acls: [{ action: 'accept', src: ['*'], dst: ['*:443'] }], autoApprovers: { routes: { [ROUTE]: ['alice@'] } } };
    assert.equal((await admin(instances[one]!.socketPath, 'PUT', '/policy', { policy: JSON.stringify(policy) })).status, 200);
    await pool(clients, 50, (client) => client.waitFor('the port-443 filter', (nm) => JSON.stringify(nm.packetFilter).includes('"First":443'), 30_000));
  });

  it('survives SIGKILL of instance 2: clients reconnect within 15 s with their addresses, the subnet router fails over, no acknowledged write is lost', async () => {
    // Routers placed directly: router-a on instance 2 (registered first: primary), router-b on instance 1.
    const router = async (name: string, url: string) => {
      const client = new NodeClient({ serverUrl: url, hostname: name, capVersion: 109, hostinfo: { RoutableIPs: [ROUTE] } });
      await client.loginWithAuthKey(authKey);
      await client.startMap();
      await client.waitFor('the first netmap', (nm) => nm.self !== null, 10_000);
      routers.push(client);
      return client;
    };
    await router('router-a', instances[two]!.url);
    await router('router-b', instances[one]!.url);
    watcher = new NodeClient({ serverUrl: instances[three]!.url, hostname: 'watcher', capVersion: 109 });
    await watcher.loginWithAuthKey(authKey);
    await watcher.startMap();
    const primaryOf = (name: string) => watcher.netmap.peerByName(name)?.PrimaryRoutes?.includes(ROUTE) === true;
    await watcher.waitFor('router-a primary', () => primaryOf('router-a') && watcher.netmap.peerByName('router-b') !== undefined, 15_000);

    // Which clients hold their session on instance 2: their streams end when it dies.
    const addresses = new Map(clients.map((c) => [c, c.netmap.self!.Addresses]));

    // Writes acknowledged by instance 2 right up to its death.
    const acknowledged: string[] = [];
    let killed = false;
    const writer = (async () => {
      for (let i = 0; !killed; i++) {
        const name = `acked-${i}`;
        const result = await admin(instances[two]!.socketPath, 'POST', '/users', { name }).catch(() => null);
        if (result?.status === 201) acknowledged.push(name);
        else break;
      }
    })();
    await waitUntil('some acknowledged writes', () => acknowledged.length >= 5, 10_000);
    instances[two]!.process.kill('SIGKILL');
    killed = true;
    const killedAt = Date.now();
    await writer;

    await sleep(500);
    const moved = clients.filter((c) => c.streamEnded);
    assert.ok(moved.length > 0, 'some clients had their session on instance 2');
    const times = await pool(moved, 25, async (client) => {
      await reconnect(client);
      return Date.now() - killedAt;
    });
    assert.ok(Math.max(...times) <= 15_000, `slowest reconnect took ${Math.max(...times)} ms`);
    for (const client of moved) assert.deepEqual(client.netmap.self!.Addresses, addresses.get(client));

    // Peers (on the surviving instances) see the moved clients online again.
    const observer = clients.find((c) => !moved.includes(c))!;
    await observer.waitFor('every moved client online', (nm) => moved.every((c) => nm.peerByName(c.hostinfo.Hostname!)?.Online === true), 15_000);

    // router-a's session died with instance 2 and it does not come back: router-b takes over
    // once instance 2's lease expires.
    await watcher.waitFor('router-b primary', () => primaryOf('router-b') && !primaryOf('router-a'), 15_000);

    // Every write instance 2 acknowledged is in the database and in the survivors' memory.
    const listed = await admin(instances[three]!.socketPath, 'GET', '/users');
    const names = new Set((listed.json.users as Array<{ name: string }>).map((u) => u.name));
    for (const name of acknowledged) assert.ok(names.has(name), `acknowledged user ${name} survived`);
  });

  it('rides out a real PostgreSQL restart: instances reconnect, apply what they missed, no client is disconnected', { skip: NO_PRIVATE_POSTGRES ?? false }, async () => {
    const streams = clients.map((c) => c.received.length);
    // pg_ctl stop -m fast: every session is told "terminating connection due to administrator
    // command" and the server goes away; it is down until started again.
    const outageStart = Date.now();
    await postgres!.stop();
    await sleep(3_000);
    await postgres!.start();
    const outageMs = Date.now() - outageStart;
    // A write right after the outage, through instance 1, reaches clients on instance 3.
    await waitUntil('instance 1 writes again', async () => (await admin(instances[one]!.socketPath, 'POST', '/users', { name: 'after-outage' }).catch(() => null))?.status === 201, 20_000);
    const policy = { acls: [{ action: 'accept', src: ['*'], dst: ['*:8443'] }], autoApprovers: { routes: { [ROUTE]: ['alice@'] } } };
    await waitUntil('the policy write', async () => (await admin(instances[one]!.socketPath, 'PUT', '/policy', { policy: JSON.stringify(policy) }).catch(() => null))?.status === 200, 20_000);
    await pool(clients, 50, (client) => client.waitFor('the port-8443 filter', (nm) => JSON.stringify(nm.packetFilter).includes('"First":8443'), 30_000)).catch((err: unknown) => {
      for (const instance of instances) console.error(`--- ${instance.id}\n${instance.log.slice(-4000)}`);
      const missing = clients.filter((c) => !JSON.stringify(c.netmap.packetFilter).includes('"First":8443'));
      console.error(`missing ${missing.length}: ${missing.slice(0, 5).map((c) => `${c.hostinfo.Hostname} ended=${c.streamEnded} ${String(c.streamError)} filter=${JSON.stringify(c.netmap.packetFilter)}`).join('\n')}`);
      throw err;
    });
    await waitUntil('instance 3 applied the user', async () => {
      const listed = await admin(instances[three]!.socketPath, 'GET', '/users');
      return (listed.json.users as Array<{ name: string }>).some((u) => u.name === 'after-outage');
    }, 20_000);
    // No instance died, no map stream ended, and every client stayed online for its peers.
    for (const instance of [instances[one]!, instances[three]!]) assert.equal(instance.process.exitCode, null, `${instance.id} is alive: ${instance.log.slice(-2000)}`);
    // Not even for the outage's ${outageMs} ms: no map stream ended at all.
    for (const client of clients) assert.equal(client.streamEnded, false, `${client.hostinfo.Hostname}'s stream survived the ${outageMs} ms outage`);
    // Each live instance lost its LISTEN connection with the restart and made a new one (the
    // write above reached instance 3 after it).
    for (const index of [one, three]) {
      assert.match(instances[index]!.log, /change log LISTEN connection lost; reconnecting/, `${instances[index]!.id} saw the restart`);
    }
    assert.ok(clients.every((c, i) => c.received.length > streams[i]!));
    const observer = clients[0]!;
    await observer.waitFor('everyone online', (nm) => clients.slice(1).every((c) => nm.peerByName(c.hostinfo.Hostname!)?.Online === true), 15_000);
  });

  it('relays packets between two clients connected to different instances through the meshed DERP', async () => {
    const [a, b] = [clients[0]!, clients[1]!];
    const left = await DerpClient.connect({ url: `${instances[one]!.url}/derp`, privateKey: a.nodeKey });
    const right = await DerpClient.connect({ url: `${instances[three]!.url}/derp`, privateKey: b.nodeKey });
    try {
      const got: string[] = [];
      right.onPacket((src, packet) => { if (src === a.nodePublicKey) got.push(packet.toString('utf8')); });
      await waitUntil('a packet across the mesh', () => {
        left.sendPacket(b.nodePublicKey, Buffer.from('mesh'));
        return got.length > 0;
      }, 15_000);
      assert.equal(got[0], 'mesh');
    } finally {
      left.close();
      right.close();
    }
  });
});

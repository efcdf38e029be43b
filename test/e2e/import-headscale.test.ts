// `headway import headscale` end to end: headscale databases built from headscale's schema at
// 0.23, 0.26 and 0.29 on SQLite and PostgreSQL are imported into a Headway holding headscale's
// Noise key; our protocol client then reconnects with its old machine and node keys and gets its
// old addresses and peers without registering. Also: dry-run, a second run, --merge, conflicts
// and bad input.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeClient } from '../../src/client/index.js';
import { configFromObject, type Config } from '../../src/config/index.js';
import { importHeadscale, type HeadscaleImportResult } from '../../src/import/index.js';
import { createHeadscaleFixture, type FixtureData, type FixtureRelease } from '../../src/import/headscale/testing.js';
import { Curve25519PrivateKey } from '../../src/key/index.js';
import { startTestServer } from '../../src/server/testing.js';
import { openStore, type Dialect } from '../../src/store/index.js';
import { createTestDatabase, selectedDialects, type TestDatabase } from '../../src/store/testing.js';
import { HeadwayError } from '../../src/util/headway-error.js';

const POLICY = `{
  // headscale's policy, carried as written
  "tagOwners": { "tag:server": ["alice@"] },
  "acls": [{ "action": "accept", "src": ["*"], "dst": ["*:*"] }],
}`;

interface Device { machine: Curve25519PrivateKey; node: Curve25519PrivateKey }

function device(): Device {
  return { machine: Curve25519PrivateKey.generate(), node: Curve25519PrivateKey.generate() };
}

const LEGACY_KEY = randomBytes(24).toString('hex');

function fixture(laptop: Device, server: Device, release: FixtureRelease): FixtureData {
  return {
    users: [{ id: 1, name: 'alice', email: 'alice@example.com' }, { id: 2, name: 'bob' }],
    keys: [
      { id: 1, userId: 1, key: LEGACY_KEY, reusable: true },
      { id: 2, userId: 2, key: randomBytes(24).toString('hex'), reusable: false, used: true },
      ...(release === '0.29' ? [{ id: 3, userId: null, prefix: 'abcdef123456', reusable: true, tags: ['tag:server'] }] : []),
    ],
    nodes: [
      { id: 1, machineKey: laptop.machine.publicKey('machine'), nodeKey: laptop.node.publicKey('node'), ipv4: '100.64.0.1', ipv6: 'fd7a:115c:a1e0::1', hostname: 'laptop', givenName: 'alice-laptop', userId: 1, authKeyId: 1 },
      { id: 2, machineKey: server.machine.publicKey('machine'), nodeKey: server.node.publicKey('node'), ipv4: '100.64.0.2', ipv6: 'fd7a:115c:a1e0::2', hostname: 'srv', givenName: 'server', userId: 2, tags: ['tag:server'], routes: ['10.20.0.0/24'] },
    ],
    apiKeys: 1,
    policy: POLICY,
  };
}

interface Source { location: string; cleanup(): Promise<void> }

async function headscaleSource(dialect: Dialect, release: FixtureRelease, data: FixtureData): Promise<Source> {
  const db: TestDatabase = await createTestDatabase(dialect);
  const location = db.database.type === 'sqlite' ? join(db.dataDir, 'headscale.sqlite') : db.database.postgres.url!;
  await createHeadscaleFixture(dialect, location, release, data);
  return { location, cleanup: () => db.cleanup() };
}

async function noiseKeyFile(dir: string): Promise<{ path: string; key: Curve25519PrivateKey }> {
  const key = Curve25519PrivateKey.generate();
  const path = join(dir, 'noise_private.key');
  await writeFile(path, key.toFileText(), { mode: 0o600 });
  return { path, key };
}

async function reconnect(serverUrl: string, who: Device, hostname: string, routes?: string[]): Promise<NodeClient> {
  // A real client sends its Hostinfo (and so its advertised routes) again on every connection.
  const client = new NodeClient({ serverUrl, hostname, capVersion: 130, machineKey: who.machine, nodeKey: who.node, ...(routes ? { hostinfo: { RoutableIPs: routes } } : {}) });
  const response = await client.register({});
  assert.equal(response.MachineAuthorized, true, `${hostname}: known without registering`);
  assert.equal(response.AuthURL ?? '', '', `${hostname}: no login URL`);
  await client.startMap();
  await client.waitFor(`${hostname} netmap`, (nm) => nm.self !== null && nm.peers.size > 0);
  return client;
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'headway-import-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

for (const dialect of selectedDialects()) {
  for (const release of ['0.23', '0.26', '0.29'] as const) {
    describe(`import from headscale ${release} on ${dialect}`, () => {
      it('brings clients back with their old addresses and peers, without a login', async () => {
        const laptop = device();
        const server = device();
        const source = await headscaleSource(dialect, release, fixture(laptop, server, release));
        cleanups.push(source.cleanup);
        const noise = await noiseKeyFile(await scratch());
        let result: HeadscaleImportResult | undefined;
        const ts = await startTestServer({
          dialect,
          config: { policy: { mode: 'database' } },
          beforeStart: async (config) => {
            result = await importHeadscale({ config, database: source.location, noiseKey: noise.path, tailnet: 'default', dryRun: false, merge: false });
          },
        });
        cleanups.push(() => ts.cleanup());
        assert.ok(result);
        assert.equal(result.headscaleRelease, release);
        assert.deepEqual(result.users.created, ['alice', 'bob']);
        assert.deepEqual(result.nodes.created, ['alice-laptop', 'server']);
        assert.equal(result.preAuthKeys.carried, 1, 'the reusable key in the clear is carried');
        assert.equal(result.policy, 'stored');
        assert.equal(result.noiseKey, 'taken over');
        assert.ok(result.notCarried.some((n) => n.what === '1 API key'), 'API keys are listed as not carried');
        assert.ok(result.notCarried.some((n) => n.what.startsWith('pre-auth key 2') && /used/.test(n.reason)));
        if (release === '0.29') assert.ok(result.notCarried.some((n) => n.what.includes('abcdef123456') && /bcrypt/.test(n.reason)));
        assert.equal(await readFile(ts.config.noise.privateKeyPath, 'utf8'), `${noise.key.toFileText()}\n`);
        assert.equal((await stat(ts.config.noise.privateKeyPath)).mode & 0o777, 0o600);

        const a = await reconnect(ts.server.url, laptop, 'laptop');
        const b = await reconnect(ts.server.url, server, 'srv', ['10.20.0.0/24']);
        try {
          assert.deepEqual(a.netmap.self?.Addresses, ['100.64.0.1/32', 'fd7a:115c:a1e0::1/128']);
          assert.deepEqual(b.netmap.self?.Addresses, ['100.64.0.2/32', 'fd7a:115c:a1e0::2/128']);
          const peer = a.netmap.peerByName('server');
          assert.ok(peer, 'the laptop sees the server as a peer');
          assert.deepEqual(peer.Addresses, ['100.64.0.2/32', 'fd7a:115c:a1e0::2/128']);
          // The route was approved in headscale; no autoApprovers in the policy, so only the import can have approved it.
          await a.waitFor('the route', (nm) => nm.peerByName('server')?.AllowedIPs?.includes('10.20.0.0/24') === true);
          assert.deepEqual(peer.Tags, ['tag:server']);
          assert.ok(b.netmap.peerByName('alice-laptop'));
        } finally {
          await a.close();
          await b.close();
        }

        // A device holding headscale's reusable key can still join.
        const newcomer = new NodeClient({ serverUrl: ts.server.url, hostname: 'newcomer', capVersion: 130 });
        try {
          const joined = await newcomer.loginWithAuthKey(LEGACY_KEY);
          assert.equal(joined.MachineAuthorized, true);
        } finally {
          await newcomer.close();
        }
      });
    });
  }
}

const sqliteOnly = selectedDialects().includes('sqlite');

async function headwayConfig(dir: string, dataDir?: string): Promise<{ config: Config; cleanup(): Promise<void> }> {
  const db = await createTestDatabase('sqlite');
  const parsed = configFromObject({ data_dir: dataDir ?? dir, policy: { mode: 'database' } }, { source: 'test', baseDir: dir });
  return { config: { ...parsed, database: db.database }, cleanup: () => db.cleanup() };
}

describe('import from headscale: dry run, reruns, merge, conflicts, bad input', { skip: sqliteOnly ? false : 'these cases run on SQLite; HEADWAY_TEST_DB=postgres' }, () => {
  async function setup(release: FixtureRelease = '0.26') {
    const dir = await scratch();
    const laptop = device();
    const server = device();
    const data = fixture(laptop, server, release);
    const source = await headscaleSource('sqlite', release, data);
    cleanups.push(source.cleanup);
    const noise = await noiseKeyFile(dir);
    const target = await headwayConfig(dir, join(dir, 'headway'));
    cleanups.push(target.cleanup);
    const run = (extra: { dryRun?: boolean; merge?: boolean; database?: string } = {}) => importHeadscale({
      config: target.config, database: extra.database ?? source.location, noiseKey: noise.path, tailnet: 'default', dryRun: extra.dryRun ?? false, merge: extra.merge ?? false,
    });
    return { dir, data, source, noise, config: target.config, run };
  }

  async function counts(config: Config): Promise<{ users: number; nodes: number; keys: number; audit: number }> {
    const store = await openStore(config);
    try {
      const tailnet = (await store.read.tailnets.getByName('default'))!;
      return {
        users: (await store.read.users.list(tailnet.id)).length,
        nodes: (await store.read.nodes.list(tailnet.id)).length,
        keys: (await store.read.preAuthKeys.list(tailnet.id)).length,
        audit: (await store.read.audit.list({ tailnetId: tailnet.id })).filter((e) => e.action === 'import.headscale').length,
      };
    } finally {
      await store.close();
    }
  }

  it('dry-run reports what would be imported and writes nothing', async () => {
    const { run, config } = await setup();
    const report = await run({ dryRun: true });
    assert.equal(report.dryRun, true);
    assert.deepEqual(report.nodes.created, ['alice-laptop', 'server']);
    assert.equal(report.noiseKey, 'not changed (dry run)');
    assert.deepEqual(await counts(config), { users: 0, nodes: 0, keys: 0, audit: 0 });
    await assert.rejects(stat(config.noise.privateKeyPath), /ENOENT/);
  });

  it('a second run adds nothing', async () => {
    const { run, config } = await setup();
    await run();
    const before = await counts(config);
    assert.deepEqual(before, { users: 2, nodes: 2, keys: 1, audit: 1 });
    const again = await run();
    assert.deepEqual(again.users.created, []);
    assert.deepEqual(again.nodes.created, []);
    assert.deepEqual(again.nodes.alreadyPresent, ['alice-laptop', 'server']);
    assert.equal(again.preAuthKeys.carried, 0);
    assert.equal(again.preAuthKeys.alreadyPresent, 1);
    assert.equal(again.policy, 'unchanged');
    assert.equal(again.noiseKey, 'already in place');
    assert.deepEqual(await counts(config), { ...before, audit: 2 });
  });

  it('refuses a tailnet with other data unless --merge, and renames a clashing node name', async () => {
    const { run, config } = await setup();
    const store = await openStore(config);
    try {
      const tailnet = (await store.read.tailnets.getByName('default'))!;
      await store.transaction(async (tx) => {
        const carol = await tx.users.create({ tailnetId: tailnet.id, name: 'carol' });
        await tx.nodes.create({
          tailnetId: tailnet.id, machineKey: Curve25519PrivateKey.generate().publicKey('machine'), nodeKey: Curve25519PrivateKey.generate().publicKey('node'),
          discoKey: null, ipv4: '100.64.0.9', ipv6: null, hostname: 'server', givenName: 'server', userId: carol.id, tags: [], advertisedRoutes: [], approvedRoutes: [],
          endpoints: [], hostinfo: {}, keyExpiry: null, ephemeral: false, registerMethod: 'cli', preAuthKeyId: null,
        });
      });
    } finally {
      await store.close();
    }
    await assert.rejects(run(), (err: unknown) => err instanceof HeadwayError && err.code === 'HW_IMPORT_TAILNET_NOT_EMPTY' && /carol/.test(err.message));
    assert.deepEqual(await counts(config), { users: 1, nodes: 1, keys: 0, audit: 0 });
    const merged = await run({ merge: true });
    assert.deepEqual(merged.nodes.renamed, [{ from: 'server', to: 'server-hs2' }]);
    assert.deepEqual(await counts(config), { users: 3, nodes: 3, keys: 1, audit: 1 });
  });

  it('fails as a whole on an address held by another node', async () => {
    const { run, config } = await setup();
    const store = await openStore(config);
    try {
      const tailnet = (await store.read.tailnets.getByName('default'))!;
      await store.transaction(async (tx) => {
        await tx.nodes.create({
          tailnetId: tailnet.id, machineKey: Curve25519PrivateKey.generate().publicKey('machine'), nodeKey: Curve25519PrivateKey.generate().publicKey('node'),
          discoKey: null, ipv4: '100.64.0.2', ipv6: null, hostname: 'squatter', givenName: 'squatter', userId: null, tags: ['tag:x'], advertisedRoutes: [], approvedRoutes: [],
          endpoints: [], hostinfo: {}, keyExpiry: null, ephemeral: false, registerMethod: 'cli', preAuthKeyId: null,
        });
      });
    } finally {
      await store.close();
    }
    await assert.rejects(run({ merge: true }), (err: unknown) => err instanceof HeadwayError && err.code === 'HW_IMPORT_CONFLICT' && /100\.64\.0\.2/.test(err.message) && /squatter/.test(err.message));
    assert.deepEqual(await counts(config), { users: 0, nodes: 1, keys: 0, audit: 0 }, 'the users and the first node were rolled back');
  });

  it('refuses an unknown schema version, a file that is not headscale, and a bad noise key', async () => {
    const dir = await scratch();
    const target = await headwayConfig(dir, join(dir, 'headway'));
    cleanups.push(target.cleanup);
    const noise = await noiseKeyFile(dir);
    const newer = join(dir, 'newer.sqlite');
    await createHeadscaleFixture('sqlite', newer, '0.29', { users: [], nodes: [], keys: [], extraMigrations: ['202612011200-something-new'] });
    const base = { config: target.config, noiseKey: noise.path, tailnet: 'default', dryRun: false, merge: false };
    await assert.rejects(importHeadscale({ ...base, database: newer }), (err: unknown) => err instanceof HeadwayError && err.code === 'HW_IMPORT_UNKNOWN_SCHEMA' && /202612011200-something-new/.test(err.message));
    const garbage = join(dir, 'garbage.sqlite');
    await writeFile(garbage, 'not a database at all, just text');
    await assert.rejects(importHeadscale({ ...base, database: garbage }), (err: unknown) => err instanceof HeadwayError && err.code === 'HW_IMPORT_SOURCE_UNREADABLE' && err.message.includes(garbage));
    await assert.rejects(importHeadscale({ ...base, database: join(dir, 'missing.sqlite') }), (err: unknown) => err instanceof HeadwayError && err.code === 'HW_IMPORT_SOURCE_UNREADABLE');
    const badKey = join(dir, 'bad.key');
    await writeFile(badKey, 'privkey:nothex');
    await assert.rejects(importHeadscale({ ...base, database: newer, noiseKey: badKey }), (err: unknown) => err instanceof HeadwayError && err.code === 'HW_IMPORT_SOURCE_UNREADABLE' && /noise key/.test(err.message));
  });

  it('names the row of a malformed node and the place of a bad policy', async () => {
    const { dir, data, config, noise } = await setup();
    const broken = join(dir, 'broken.sqlite');
    await createHeadscaleFixture('sqlite', broken, '0.26', { ...data, nodes: [{ ...data.nodes[0]!, ipv4: '300.1.1.1' }] });
    const base = { config, noiseKey: noise.path, tailnet: 'default', dryRun: false, merge: false };
    await assert.rejects(importHeadscale({ ...base, database: broken }), (err: unknown) => err instanceof HeadwayError && err.code === 'HW_IMPORT_BAD_ROW' && /nodes row 1 ipv4/.test(err.message));
    const badPolicy = join(dir, 'policy.hujson');
    await writeFile(badPolicy, '{ "acls": [ { "action": "maybe" } ] }');
    const fine = join(dir, 'fine.sqlite');
    await createHeadscaleFixture('sqlite', fine, '0.26', data);
    await assert.rejects(importHeadscale({ ...base, database: fine, policyFile: badPolicy }), (err: unknown) => err instanceof HeadwayError && err.code === 'HW_IMPORT_INVALID_POLICY' && err.message.includes(badPolicy));
    assert.deepEqual(await counts(config), { users: 0, nodes: 0, keys: 0, audit: 0 });
  });

  it('refuses to replace a Noise key that Headway nodes already trust', async () => {
    const { run, config } = await setup();
    await mkdir(config.dataDir, { recursive: true });
    await writeFile(config.noise.privateKeyPath, Curve25519PrivateKey.generate().toFileText(), { mode: 0o600 });
    const store = await openStore(config);
    try {
      const tailnet = (await store.read.tailnets.getByName('default'))!;
      await store.transaction(async (tx) => {
        await tx.nodes.create({
          tailnetId: tailnet.id, machineKey: Curve25519PrivateKey.generate().publicKey('machine'), nodeKey: Curve25519PrivateKey.generate().publicKey('node'),
          discoKey: null, ipv4: '100.64.0.50', ipv6: null, hostname: 'h', givenName: 'h', userId: null, tags: ['tag:x'], advertisedRoutes: [], approvedRoutes: [],
          endpoints: [], hostinfo: {}, keyExpiry: null, ephemeral: false, registerMethod: 'cli', preAuthKeyId: null,
        });
      });
    } finally {
      await store.close();
    }
    await assert.rejects(run({ merge: true }), (err: unknown) => err instanceof HeadwayError && err.code === 'HW_IMPORT_NOISE_KEY_CONFLICT');
  });
});

describe('headway import headscale (the CLI)', { skip: sqliteOnly ? false : 'runs on SQLite; HEADWAY_TEST_DB=postgres' }, () => {
  const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

  function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HEADWAY_')) env[k] = v;
    return new Promise((resolve, reject) => {
      execFile(process.execPath, [BIN, ...args], { env: { ...env, NO_COLOR: '1' }, timeout: 30_000 }, (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      });
    });
  }

  it('reads headscale\'s config for the database, key and DNS/DERP settings; dry-run first, then for real', async () => {
    const dir = await scratch();
    const headscaleDir = join(dir, 'headscale');
    await mkdir(headscaleDir);
    const laptop = device();
    const server = device();
    await createHeadscaleFixture('sqlite', join(headscaleDir, 'db.sqlite'), '0.26', fixture(laptop, server, '0.26'));
    await noiseKeyFile(headscaleDir);
    await writeFile(join(headscaleDir, 'config.yaml'), [
      'server_url: https://hs.example.com',
      'noise:', '  private_key_path: ./noise_private.key',
      'prefixes:', '  v4: 100.64.0.0/10', '  v6: fd7a:115c:a1e0::/48',
      'database:', '  type: sqlite', '  sqlite:', '    path: ./db.sqlite',
      'policy:', '  mode: database',
      'dns:', '  magic_dns: true', '  base_domain: tail.example.com', '  nameservers:', '    global: [1.1.1.1]', '    split:', '      corp.example.com: [10.0.0.53]',
      'derp:', '  server:', '    enabled: false', '  urls: []',
    ].join('\n'));
    const headwayConfigPath = join(dir, 'headway.yaml');
    await writeFile(headwayConfigPath, ['server_url: https://hs.example.com', `data_dir: ${join(dir, 'headway')}`, 'policy:', '  mode: database'].join('\n'));

    const dry = await cli(['--config', headwayConfigPath, 'import', 'headscale', '--headscale-config', join(headscaleDir, 'config.yaml'), '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^dry run: nothing was changed\. headscale 0\.26 schema/);
    assert.match(dry.stdout, /nodes: would import 2 \(alice-laptop, server\)/);
    assert.match(dry.stdout, /1 API key: headscale stores only a bcrypt hash/);
    assert.match(dry.stdout, /base_domain: tail\.example\.com/);
    assert.match(dry.stdout, /corp\.example\.com:/);

    const real = await cli(['--config', headwayConfigPath, '--output', 'json', 'import', 'headscale', '--headscale-config', join(headscaleDir, 'config.yaml'), '--config-out', join(dir, 'from-headscale.yaml')]);
    assert.equal(real.code, 0, real.stderr);
    const result = JSON.parse(real.stdout) as HeadscaleImportResult;
    assert.deepEqual(result.nodes.created, ['alice-laptop', 'server']);
    assert.equal(result.noiseKey, 'taken over');
    assert.match(await readFile(join(dir, 'from-headscale.yaml'), 'utf8'), /magic_dns: true/);

    const again = await cli(['--config', headwayConfigPath, 'import', 'headscale', '--headscale-config', join(headscaleDir, 'config.yaml')]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nodes: imported 0, already present 2/);

    const missing = await cli(['--config', headwayConfigPath, 'import', 'headscale', '--noise-key', join(headscaleDir, 'noise_private.key')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: --database is required .*\(HW_IMPORT_SOURCE_UNREADABLE\)\n$/);
  });
});

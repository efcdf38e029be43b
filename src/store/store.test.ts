import { describe, it } from 'node:test';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { publicKeyFromBytes, type NodePublicKey } from '../key/index.js';
import { DEFAULT_TAILNET_NAME, DEFAULT_TAILNET_SETTINGS, type Tailnet, type TailnetId, type UserId } from '../model/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { AddressPool } from './address-pool.js';
import { knownMigrations } from './migrations.js';
import { openStore } from './open-store.js';
import { DEFAULT_TEST_PREFIXES, forEachDialect, type TestStore } from './testing.js';
import type { NewNode, Store } from './types.js';

function nodeKey(): NodePublicKey {
  return publicKeyFromBytes('node', randomBytes(32));
}

function newNode(tailnetId: TailnetId, overrides: Partial<NewNode> = {}): NewNode {
  return {
    tailnetId,
    machineKey: publicKeyFromBytes('machine', randomBytes(32)),
    nodeKey: nodeKey(),
    discoKey: publicKeyFromBytes('disco', randomBytes(32)),
    ipv4: null,
    ipv6: null,
    hostname: 'laptop',
    givenName: `node-${randomBytes(4).toString('hex')}`,
    userId: null,
    tags: [],
    advertisedRoutes: [],
    approvedRoutes: [],
    endpoints: [],
    hostinfo: {},
    keyExpiry: null,
    ephemeral: false,
    registerMethod: 'cli',
    preAuthKeyId: null,
    ...overrides,
  };
}

async function defaultTailnet(store: Store): Promise<Tailnet> {
  const tailnet = await store.read.tailnets.getByName(DEFAULT_TAILNET_NAME);
  assert.ok(tailnet, 'the default tailnet exists');
  return tailnet;
}

/** Asserts that `promise` rejects with a HeadwayError of `code` whose message matches. */
async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp | string, status?: number): Promise<HeadwayError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof HeadwayError, `want HeadwayError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message !== undefined) assert.match(err.message, message);
    if (status !== undefined) assert.equal(err.status, status);
    return err;
  }
  assert.fail(`want ${code}, but it resolved`);
}

/** Rows as the database holds them, read over a separate connection. */
async function rawRows(t: TestStore, table: string): Promise<Array<Record<string, unknown>>> {
  const database = t.config.database;
  if (database.type === 'sqlite') {
    const db = new BetterSqlite3(database.sqlite.path, { readonly: true });
    try {
      return db.prepare(`select * from ${table}`).all() as Array<Record<string, unknown>>;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: database.postgres.url ?? undefined });
  await client.connect();
  try {
    return (await client.query(`select * from ${table}`)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}

async function rawExec(t: TestStore, statement: string): Promise<void> {
  const database = t.config.database;
  if (database.type === 'sqlite') {
    const db = new BetterSqlite3(database.sqlite.path);
    try {
      db.exec(statement);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: database.postgres.url ?? undefined });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

async function registerNode(store: Store, tailnetId: TailnetId, name: string, userId: UserId | null = null) {
  return store.transaction(async (tx) => {
    const addresses = await tx.addresses.allocate(tailnetId);
    const node = await tx.nodes.create(newNode(tailnetId, { ...addresses, givenName: name, userId }));
    await tx.audit.record({ tailnetId, actor: 'system', action: 'node.register', target: `node:${node.id}` });
    return node;
  });
}

/**
 * How to take a closed store's database back from each migration, as raw SQL, so the upgrade
 * tests start from the schema an older release left. Every migration needs an entry here (a
 * test below checks it).
 */
const MIGRATION_UNDO: Record<string, readonly string[]> = {
  '0002_user_roles': ['alter table users drop column role'],
  '0003_identity': [
    'drop table scim_groups',
    'drop index users_tailnet_oidc_key',
    ...['oidc_issuer', 'oidc_subject', 'picture_url', 'oidc_groups', 'scim_groups', 'active', 'scim_external_id'].map((column) => `alter table users drop column ${column}`),
    'alter table nodes drop column approved',
    'alter table pre_auth_keys drop column pre_approved',
    'alter table tailnets drop column device_approval',
  ],
  '0004_console_sessions': ['drop table console_login_links', 'drop table console_sessions'],
  '0005_tailnet_settings': ['alter table tailnets drop column settings'],
  '0008_ha_shared': ['drop table ssh_check_passes', 'drop table ha_pending_logins'],
  '0009_audit_from': ['alter table audit_log drop column from_address'],
  '0010_ha_sign_ins': ['drop table ha_sign_ins'],
  '0007_ha': ['ha_presence', 'ha_keys', 'ha_instances', 'ha_change_log'].map((table) => `drop table ${table}`),
  '0006_api_v2_webhooks': [
    ...['webhook_deliveries', 'webhooks', 'oauth_tokens', 'oauth_clients'].map((table) => `drop table ${table}`),
    'alter table pre_auth_keys drop column description',
  ],
};

const ALL_MIGRATIONS = ['0001_initial', ...Object.keys(MIGRATION_UNDO)].sort();

/** Takes a closed store's database back to the schema as migration `keep` left it. */
async function rollBackTo(t: TestStore, keep: string): Promise<void> {
  for (const name of [...ALL_MIGRATIONS].reverse()) {
    if (name <= keep) break;
    for (const statement of MIGRATION_UNDO[name]!) await rawExec(t, statement);
    await rawExec(t, `delete from headway_migration where name = '${name}'`);
  }
}

forEachDialect('store', (open, dialect) => {
  it('migrates an empty database and creates the default tailnet', async () => {
    const t = await open();
    try {
      const tailnets = await t.store.read.tailnets.list();
      assert.deepEqual(tailnets.map((tailnet) => tailnet.name), [DEFAULT_TAILNET_NAME]);
      assert.equal(t.store.dialect, dialect);
      const migrations = await rawRows(t, 'headway_migration');
      assert.deepEqual(migrations.map((row) => row.name), ALL_MIGRATIONS);
      assert.deepEqual(await knownMigrations(dialect), ALL_MIGRATIONS, 'every migration has an undo in MIGRATION_UNDO');
      // Opening again runs nothing and creates no second default tailnet.
      const store = await t.reopen();
      assert.equal((await store.read.tailnets.list()).length, 1);
      assert.equal((await rawRows(t, 'headway_migration')).length, ALL_MIGRATIONS.length);
    } finally {
      await t.cleanup();
    }
  });

  it('upgrades a database from before user roles: its users become members', async () => {
    const t = await open();
    try {
      const tailnet = await defaultTailnet(t.store);
      await t.store.close();
      // The schema as 0001_initial left it, with a user in it.
      await rollBackTo(t, '0001_initial');
      await rawExec(t, `insert into users (tailnet_id, name, display_name, email, created_at) values (${tailnet.id}, 'old-timer', '', 'old@example.com', 1)`);
      const store = await t.reopen();
      const user = await store.read.users.getByName(tailnet.id, 'old-timer');
      assert.equal(user?.role, 'member');
      assert.deepEqual((await rawRows(t, 'headway_migration')).map((row) => row.name), ALL_MIGRATIONS);
    } finally {
      await t.cleanup();
    }
  });

  it('upgrades a database from before tailnet settings: its tailnets get the defaults', async () => {
    const t = await open();
    try {
      await t.store.transaction((tx) => tx.tailnets.create('lab'));
      await t.store.close();
      // The schema before tailnet settings.
      await rollBackTo(t, '0003_identity');
      const store = await t.reopen();
      const tailnets = await store.read.tailnets.list();
      assert.deepEqual(tailnets.map((tn) => [tn.name, tn.settings]), [[DEFAULT_TAILNET_NAME, DEFAULT_TAILNET_SETTINGS], ['lab', DEFAULT_TAILNET_SETTINGS]]);
      const lab = tailnets[1]!;
      const updated = await store.transaction((tx) => tx.tailnets.updateSettings(lab.id, { autoUpdate: true }));
      assert.deepEqual(updated.settings, { ...DEFAULT_TAILNET_SETTINGS, autoUpdate: true });
      // Stored as one JSON object; another tailnet keeps its own.
      const again = await t.reopen();
      assert.deepEqual((await again.read.tailnets.getByName('lab'))?.settings, { ...DEFAULT_TAILNET_SETTINGS, autoUpdate: true });
      assert.deepEqual((await again.read.tailnets.getByName(DEFAULT_TAILNET_NAME))?.settings, { ...DEFAULT_TAILNET_SETTINGS, autoUpdate: false });
      assert.deepEqual(JSON.parse(String((await rawRows(t, 'tailnets')).find((r) => r['name'] === 'lab')!['settings'])), { ...DEFAULT_TAILNET_SETTINGS, autoUpdate: true });
    } finally {
      await t.cleanup();
    }
  });

  it('upgrades a database from before identity: users active without an identity, nodes approved, approval off', async () => {
    const t = await open();
    try {
      const tailnet = await defaultTailnet(t.store);
      const user = await t.store.transaction((tx) => tx.users.create({ tailnetId: tailnet.id, name: 'old-timer', email: 'old@example.com' }));
      const key = await t.store.transaction((tx) => tx.preAuthKeys.create({ tailnetId: tailnet.id, userId: user.id, reusable: false, ephemeral: false, tags: [], expiresAt: null }));
      const node = await t.store.transaction(async (tx) => tx.nodes.create(newNode(tailnet.id, { userId: user.id, ...(await tx.addresses.allocate(tailnet.id)) })));
      await t.store.close();
      await rollBackTo(t, '0002_user_roles');
      const store = await t.reopen();
      const after = await store.read.users.get(user.id);
      assert.equal(after?.active, true);
      assert.equal(after?.oidc, null);
      assert.deepEqual(after?.oidcGroups, []);
      assert.equal((await store.read.nodes.get(node.id))?.approved, true);
      assert.equal((await store.read.preAuthKeys.get(key.key.id))?.preApproved, false);
      assert.equal((await store.read.tailnets.get(tailnet.id))?.deviceApproval, false);
      // The new unique identity: one user per issuer + subject and tailnet.
      await store.transaction((tx) => tx.users.update(user.id, { oidc: { issuer: 'https://idp.example', subject: 's-1' } }));
      await rejectsWith(store.transaction((tx) => tx.users.create({ tailnetId: tailnet.id, name: 'twin', oidc: { issuer: 'https://idp.example', subject: 's-1' } })), 'HW_STORE_USER_EXISTS', /another user already signs in/, 409);
      assert.equal((await store.read.users.getByOidc(tailnet.id, 'https://idp.example', 's-1'))?.id, user.id);
    } finally {
      await t.cleanup();
    }
  });

  it('keeps SCIM groups per tailnet with unique display names', async () => {
    const t = await open();
    try {
      const tailnet = await defaultTailnet(t.store);
      const user = await t.store.transaction((tx) => tx.users.create({ tailnetId: tailnet.id, name: 'sam' }));
      const group = await t.store.transaction((tx) => tx.scimGroups.create({ tailnetId: tailnet.id, displayName: 'eng', externalId: 'x1', members: [user.id, user.id] }));
      assert.deepEqual(group.members, [user.id]);
      await rejectsWith(t.store.transaction((tx) => tx.scimGroups.create({ tailnetId: tailnet.id, displayName: 'eng', externalId: null, members: [] })), 'HW_STORE_SCIM_GROUP_EXISTS', /already exists/, 409);
      const renamed = await t.store.transaction((tx) => tx.scimGroups.update(tailnet.id, group.id, { displayName: 'engineering', members: [] }));
      assert.equal(renamed.displayName, 'engineering');
      assert.deepEqual(renamed.members, []);
      await t.store.transaction((tx) => tx.scimGroups.delete(tailnet.id, group.id));
      assert.deepEqual(await t.store.read.scimGroups.list(tailnet.id), []);
    } finally {
      await t.cleanup();
    }
  });

  it('claims each due webhook delivery for one taker, until the claim lapses', async () => {
    const t = await open();
    try {
      const tailnet = await defaultTailnet(t.store);
      const hook = await t.store.transaction((tx) => tx.webhooks.create({ tailnetId: tailnet.id, url: 'https://hooks.example.com/', providerType: '', subscriptions: ['nodeCreated'], creator: 'test' }));
      for (let i = 0; i < 10; i++) await t.store.transaction((tx) => tx.webhooks.enqueue(hook.id, `[${i}]`));
      const now = Date.now() + 1_000;
      // Concurrent takers (several instances on PostgreSQL; serialised on SQLite): no row twice.
      const claims = await Promise.all([0, 1, 2].map(() => t.store.transaction((tx) => tx.webhooks.claimDue(now, 4, 60_000))));
      const ids = claims.flat().map((d) => d.id);
      assert.equal(ids.length, 10);
      assert.equal(new Set(ids).size, 10, 'no delivery claimed twice');
      assert.deepEqual(await t.store.transaction((tx) => tx.webhooks.claimDue(now, 4, 60_000)), [], 'claimed rows are not due');
      // A taker that never reported back: its rows are due again when the claim lapses.
      assert.equal((await t.store.transaction((tx) => tx.webhooks.claimDue(now + 60_001, 20, 60_000))).length, 10);
    } finally {
      await t.cleanup();
    }
  });

  it('upgrades a database from before API v2 and webhooks: the new tables work and old data stays', async () => {
    const t = await open();
    try {
      const tailnet = await defaultTailnet(t.store);
      await t.store.close();
      await rollBackTo(t, '0005_tailnet_settings');
      await rawExec(t, `insert into users (tailnet_id, name, display_name, email, role, created_at) values (${tailnet.id}, 'kept', '', '', 'admin', 1)`);
      const store = await t.reopen();
      assert.equal((await store.read.users.getByName(tailnet.id, 'kept'))?.role, 'admin');
      const hook = await store.transaction((tx) => tx.webhooks.create({ tailnetId: tailnet.id, url: 'https://hooks.example.com/', providerType: '', subscriptions: ['nodeCreated'], creator: 'test' }));
      assert.equal(await store.transaction((tx) => tx.webhooks.enqueue(hook.id, '[]', 'once')), true);
      assert.equal(await store.transaction((tx) => tx.webhooks.enqueue(hook.id, '[]', 'once')), false, 'a dedupe key queues once');
      const { client, secret } = await store.transaction((tx) => tx.oauth.createClient({ tailnetId: tailnet.id, scopes: ['all'], tags: [], description: '' }));
      assert.equal((await store.read.oauth.verifyClient(client.clientId, secret))?.clientId, client.clientId);
      assert.equal(await store.read.oauth.verifyClient(client.clientId, `${secret}x`), undefined);
      assert.deepEqual((await rawRows(t, 'headway_migration')).map((row) => row.name), ALL_MIGRATIONS);
    } finally {
      await t.cleanup();
    }
  });

  it('upgrades a database from before console sessions: its data stays and sessions work', async () => {
    const t = await open();
    try {
      const tailnet = await defaultTailnet(t.store);
      const user = await t.store.read.users.create({ tailnetId: tailnet.id, name: 'keeper', role: 'admin' });
      await t.store.close();
      // The schema before console sessions.
      await rollBackTo(t, '0003_identity');
      const store = await t.reopen();
      assert.equal((await store.read.users.getByName(tailnet.id, 'keeper'))?.role, 'admin');
      const at = new Date(1_000);
      const grant = { tailnetId: tailnet.id, userId: user.id, role: 'admin' as const, actor: 'console:keeper', at, expiresAt: new Date(10_000) };
      const link = await store.read.consoleSessions.createLink('a'.repeat(64), grant);
      assert.equal(link.usedAt, null);
      assert.equal((await store.read.consoleSessions.consumeLink('a'.repeat(64), new Date(2_000)))?.id, link.id);
      assert.equal(await store.read.consoleSessions.consumeLink('a'.repeat(64), new Date(3_000)), undefined, 'a link works once');
      const session = await store.read.consoleSessions.createSession('b'.repeat(64), grant);
      assert.equal((await store.read.consoleSessions.findSession('b'.repeat(64)))?.id, session.id);
      // Sessions go with their user.
      await store.read.users.delete(user.id);
      assert.equal(await store.read.consoleSessions.findSession('b'.repeat(64)), undefined);
    } finally {
      await t.cleanup();
    }
  });

  it('upgrades a database from before high availability: nodes stay, the ha tables appear', async () => {
    const t = await open();
    try {
      const tailnet = await defaultTailnet(t.store);
      const node = await registerNode(t.store, tailnet.id, 'survivor');
      await t.store.close();
      await rollBackTo(t, '0006_api_v2_webhooks');
      const store = await t.reopen();
      assert.equal((await store.read.nodes.get(node.id))?.givenName, 'survivor');
      assert.deepEqual((await rawRows(t, 'headway_migration')).map((row) => row.name), ALL_MIGRATIONS);
      for (const table of ['ha_presence', 'ha_keys', 'ha_instances', 'ha_change_log']) assert.deepEqual(await rawRows(t, table), []);
    } finally {
      await t.cleanup();
    }
  });

  it('refuses a database migrated by a newer Headway', async () => {
    const t = await open();
    try {
      await t.store.close();
      await rawExec(t, `insert into headway_migration (name, timestamp) values ('9999_from_the_future', '2099-01-01T00:00:00.000Z')`);
      await rejectsWith(openStore(t.config), 'HW_STORE_SCHEMA_TOO_NEW', /the schema was migrated by a newer Headway \(previously executed migration 9999_from_the_future is missing\)$/, 500);
    } finally {
      await t.cleanup();
    }
  });

  it('creates, finds, lists and deletes tailnets, with clear conflicts', async () => {
    const t = await open();
    try {
      const { store } = t;
      const corp = await store.read.tailnets.create('corp');
      assert.equal(corp.name, 'corp');
      assert.ok(corp.createdAt instanceof Date);
      assert.deepEqual(await store.read.tailnets.get(corp.id), corp);
      assert.deepEqual(await store.read.tailnets.getByName('corp'), corp);
      assert.equal(await store.read.tailnets.getByName('nope'), undefined);
      await rejectsWith(store.read.tailnets.create('corp'), 'HW_STORE_TAILNET_EXISTS', 'tailnet "corp" already exists', 409);
      assert.deepEqual((await store.read.tailnets.list()).map((tailnet) => tailnet.name), ['default', 'corp']);

      const fallback = await defaultTailnet(store);
      await rejectsWith(store.read.tailnets.delete(fallback.id), 'HW_STORE_DEFAULT_TAILNET', `tailnet ${fallback.id} ("default") cannot be deleted`, 409);
      await rejectsWith(store.read.tailnets.delete(9999 as TailnetId), 'HW_STORE_NOT_FOUND', 'tailnet 9999 does not exist', 404);
    } finally {
      await t.cleanup();
    }
  });

  it('deletes a tailnet with everything in it but keeps its audit entries', async () => {
    const t = await open();
    try {
      const { store } = t;
      const corp = await store.read.tailnets.create('corp');
      const user = await store.read.users.create({ tailnetId: corp.id, name: 'alice' });
      const { key } = await store.read.preAuthKeys.create({ tailnetId: corp.id, userId: user.id, reusable: false, ephemeral: false, tags: [], expiresAt: null });
      await registerNode(store, corp.id, 'laptop', user.id);
      await store.transaction(async (tx) => {
        await tx.nodes.create(newNode(corp.id, { userId: user.id, preAuthKeyId: key.id }));
      });
      await store.read.policies.save(corp.id, '{}', 'cli');
      await store.read.tailnets.delete(corp.id);

      assert.equal(await store.read.tailnets.get(corp.id), undefined);
      assert.deepEqual(await store.read.users.list(corp.id), []);
      assert.deepEqual(await store.read.nodes.list(corp.id), []);
      assert.deepEqual(await store.read.preAuthKeys.list(corp.id), []);
      assert.deepEqual(await store.read.policies.list(corp.id), []);
      assert.equal((await store.read.audit.list({ tailnetId: corp.id })).length, 1);
    } finally {
      await t.cleanup();
    }
  });

  it('keeps user names unique per tailnet and refuses to delete a user who owns nodes', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      const other = await store.read.tailnets.create('other');
      const alice = await store.read.users.create({ tailnetId: tailnet.id, name: 'alice', displayName: 'Alice A.', email: 'alice@example.com' });
      assert.deepEqual(
        { name: alice.name, displayName: alice.displayName, email: alice.email, tailnetId: alice.tailnetId },
        { name: 'alice', displayName: 'Alice A.', email: 'alice@example.com', tailnetId: tailnet.id },
      );
      const bob = await store.read.users.create({ tailnetId: tailnet.id, name: 'bob' });
      assert.deepEqual({ displayName: bob.displayName, email: bob.email, role: bob.role }, { displayName: '', email: '', role: 'member' });
      const carol = await store.read.users.create({ tailnetId: tailnet.id, name: 'carol', role: 'network-admin' });
      assert.equal((await store.read.users.get(carol.id))!.role, 'network-admin');
      assert.equal((await store.read.users.update(carol.id, { role: 'admin' })).role, 'admin');
      assert.equal((await store.read.users.get(carol.id))!.role, 'admin', 'the role is stored');
      await store.read.users.delete(carol.id);
      await rejectsWith(store.read.users.create({ tailnetId: tailnet.id, name: 'alice' }), 'HW_STORE_USER_EXISTS', `tailnet ${tailnet.id}: user "alice" already exists`, 409);
      const aliceElsewhere = await store.read.users.create({ tailnetId: other.id, name: 'alice' });
      assert.notEqual(aliceElsewhere.id, alice.id);
      await rejectsWith(store.read.users.create({ tailnetId: 4242 as TailnetId, name: 'x' }), 'HW_STORE_REFERENCE_MISSING', 'tailnet 4242 does not exist', 404);

      assert.deepEqual(await store.read.users.getByName(tailnet.id, 'alice'), alice);
      assert.deepEqual((await store.read.users.list(tailnet.id)).map((user) => user.name), ['alice', 'bob']);

      const renamed = await store.read.users.update(bob.id, { name: 'robert', email: 'bob@example.com' });
      assert.deepEqual({ name: renamed.name, email: renamed.email, displayName: renamed.displayName }, { name: 'robert', email: 'bob@example.com', displayName: '' });
      await rejectsWith(store.read.users.update(bob.id, { name: 'alice' }), 'HW_STORE_USER_EXISTS', `user ${bob.id}: another user of the tailnet is already named "alice"`);
      await rejectsWith(store.read.users.update(999 as UserId, { name: 'x' }), 'HW_STORE_NOT_FOUND', 'user 999 does not exist');

      await registerNode(store, tailnet.id, 'alices-laptop', alice.id);
      await rejectsWith(store.read.users.delete(alice.id), 'HW_STORE_USER_HAS_NODES', `user ${alice.id} still owns nodes; delete them or move them to another user first`, 409);
      assert.ok(await store.read.users.get(alice.id));
      await store.read.users.delete(renamed.id);
      assert.equal(await store.read.users.get(renamed.id), undefined);
      await rejectsWith(store.read.users.delete(renamed.id), 'HW_STORE_NOT_FOUND');
    } finally {
      await t.cleanup();
    }
  });

  it('stores every node field and maps each unique constraint to its own error', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      const other = await store.read.tailnets.create('other');
      const user = await store.read.users.create({ tailnetId: tailnet.id, name: 'alice' });
      const expiry = new Date('2030-01-02T03:04:05.678Z');
      const input = newNode(tailnet.id, {
        ipv4: '100.64.0.7',
        ipv6: 'FD7A:115C:A1E0:0:0:0:0:7',
        hostname: 'Alice-Laptop',
        givenName: 'alice-laptop',
        userId: user.id,
        tags: ['tag:a', 'tag:b'],
        advertisedRoutes: ['10.0.0.0/8'],
        approvedRoutes: ['10.0.0.0/8'],
        endpoints: ['192.0.2.1:41641', '[2001:db8::1]:41641'],
        hostinfo: { OS: 'linux', Hostname: 'Alice-Laptop', IPNVersion: '1.78.3' },
        keyExpiry: expiry,
        ephemeral: true,
        registerMethod: 'authkey',
        approved: false,
      });
      const node = await store.read.nodes.create(input);
      assert.match(node.stableId, /^n[0-9A-Za-z]{14}$/);
      assert.equal(node.ipv6, 'fd7a:115c:a1e0::7', 'addresses are stored in canonical form');
      assert.deepEqual(
        { ...node, id: undefined, stableId: undefined, createdAt: undefined, updatedAt: undefined },
        { ...input, ipv6: 'fd7a:115c:a1e0::7', id: undefined, stableId: undefined, createdAt: undefined, updatedAt: undefined, lastSeen: null },
      );
      assert.deepEqual(await store.read.nodes.get(node.id), node);
      assert.deepEqual(await store.read.nodes.getByNodeKey(node.nodeKey), node);
      assert.deepEqual(await store.read.nodes.getByMachineKey(tailnet.id, node.machineKey), [node]);
      assert.deepEqual(await store.read.nodes.getByMachineKey(other.id, node.machineKey), []);

      await rejectsWith(store.read.nodes.create(newNode(other.id, { nodeKey: node.nodeKey })), 'HW_STORE_NODE_KEY_IN_USE', /^node key \[[A-Za-z0-9+/]{5}\] is already used by another node$/, 409);
      await rejectsWith(store.read.nodes.create(newNode(tailnet.id, { givenName: 'alice-laptop' })), 'HW_STORE_GIVEN_NAME_TAKEN', `tailnet ${tailnet.id}: name "alice-laptop" is already used by another node`, 409);
      await rejectsWith(store.read.nodes.create(newNode(tailnet.id, { ipv4: '100.64.0.7' })), 'HW_STORE_ADDRESS_IN_USE', `tailnet ${tailnet.id}: address 100.64.0.7 is already used by another node`, 409);
      await rejectsWith(store.read.nodes.create(newNode(tailnet.id, { ipv6: 'fd7a:115c:a1e0:0::7' })), 'HW_STORE_ADDRESS_IN_USE', `tailnet ${tailnet.id}: address fd7a:115c:a1e0::7 is already used by another node`);
      await rejectsWith(store.read.nodes.create(newNode(tailnet.id, { ipv4: 'fd7a::1' })), 'HW_STORE_INVALID_VALUE', 'node ipv4: "fd7a::1" is not an IPv4 address', 400);
      await rejectsWith(store.read.nodes.create(newNode(tailnet.id, { userId: 777 as UserId })), 'HW_STORE_REFERENCE_MISSING', `node: tailnet ${tailnet.id}, user 777 does not exist`);
      // The same name and address are free in another tailnet.
      const twin = await store.read.nodes.create(newNode(other.id, { givenName: 'alice-laptop', ipv4: '100.64.0.7' }));
      assert.equal(twin.tailnetId, other.id);

      assert.equal(await store.read.nodes.givenNameTaken(tailnet.id, 'alice-laptop'), true);
      assert.equal(await store.read.nodes.givenNameTaken(tailnet.id, 'alice-laptop', node.id), false);
      assert.equal(await store.read.nodes.givenNameTaken(tailnet.id, 'nobody'), false);
      assert.deepEqual((await store.read.nodes.list(tailnet.id)).map((n) => n.id), [node.id]);
      assert.deepEqual((await store.read.nodes.listAll()).map((n) => n.id), [node.id, twin.id]);
    } finally {
      await t.cleanup();
    }
  });

  it('updates nodes, including the lazily persisted live fields', async () => {
    let clock = Date.parse('2030-05-01T00:00:00Z');
    const t = await open({ now: () => clock });
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      const node = await store.read.nodes.create(newNode(tailnet.id, { givenName: 'a' }));
      const second = await store.read.nodes.create(newNode(tailnet.id, { givenName: 'b' }));
      clock += 60_000;
      const rekeyed = nodeKey();
      const updated = await store.read.nodes.update(node.id, { givenName: 'renamed', tags: ['tag:server'], userId: null, nodeKey: rekeyed, keyExpiry: null, approvedRoutes: ['0.0.0.0/0', '::/0'] });
      assert.deepEqual(
        { givenName: updated.givenName, tags: updated.tags, nodeKey: updated.nodeKey, approvedRoutes: updated.approvedRoutes, hostname: updated.hostname },
        { givenName: 'renamed', tags: ['tag:server'], nodeKey: rekeyed, approvedRoutes: ['0.0.0.0/0', '::/0'], hostname: 'laptop' },
      );
      assert.equal(updated.updatedAt.getTime(), clock);
      assert.equal(updated.createdAt.getTime(), clock - 60_000);
      await rejectsWith(store.read.nodes.update(second.id, { givenName: 'renamed' }), 'HW_STORE_GIVEN_NAME_TAKEN', `node ${second.id}: name "renamed" is already used by another node of its tailnet`);
      await rejectsWith(store.read.nodes.update(12345 as typeof node.id, { hostname: 'x' }), 'HW_STORE_NOT_FOUND', 'node 12345 does not exist');

      const seen = new Date('2030-05-01T00:05:00Z');
      const disco = publicKeyFromBytes('disco', randomBytes(32));
      await store.transaction((tx) => tx.nodes.updateLive([
        { id: node.id, endpoints: ['198.51.100.7:41641'], discoKey: disco, hostinfo: { OS: 'macOS' }, lastSeen: seen },
        { id: second.id, endpoints: [], discoKey: null, hostinfo: {}, lastSeen: null },
        { id: 999_999 as typeof node.id, endpoints: [], discoKey: null, hostinfo: {}, lastSeen: null },
      ]));
      const live = await store.read.nodes.get(node.id);
      assert.deepEqual(
        { endpoints: live?.endpoints, discoKey: live?.discoKey, hostinfo: live?.hostinfo, lastSeen: live?.lastSeen },
        { endpoints: ['198.51.100.7:41641'], discoKey: disco, hostinfo: { OS: 'macOS' }, lastSeen: seen },
      );
      assert.equal((await store.read.nodes.get(second.id))?.discoKey, null);

      await store.read.nodes.delete(node.id);
      assert.equal(await store.read.nodes.get(node.id), undefined);
      await rejectsWith(store.read.nodes.delete(node.id), 'HW_STORE_NOT_FOUND', `node ${node.id} does not exist`);
    } finally {
      await t.cleanup();
    }
  });

  it('stores only a hash of pre-auth keys and finds them by their secret', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      const user = await store.read.users.create({ tailnetId: tailnet.id, name: 'alice' });
      const expiresAt = new Date('2031-01-01T00:00:00Z');
      const { key, secret } = await store.read.preAuthKeys.create({ tailnetId: tailnet.id, userId: user.id, reusable: true, ephemeral: true, tags: ['tag:ci'], expiresAt });
      assert.match(secret, /^hwkey-auth-[0-9A-Za-z]{12}-[0-9A-Za-z]{40}$/);
      assert.ok(!secret.includes('--TL') && !secret.startsWith('tskey-client-'));
      assert.equal(secret.slice('hwkey-auth-'.length, 'hwkey-auth-'.length + 12), key.prefix);
      assert.deepEqual(
        { reusable: key.reusable, ephemeral: key.ephemeral, tags: key.tags, expiresAt: key.expiresAt, usedCount: key.usedCount, revokedAt: key.revokedAt, userId: key.userId },
        { reusable: true, ephemeral: true, tags: ['tag:ci'], expiresAt, usedCount: 0, revokedAt: null, userId: user.id },
      );

      const rows = await rawRows(t, 'pre_auth_keys');
      assert.equal(rows.length, 1);
      const secretPart = secret.slice(secret.lastIndexOf('-') + 1);
      for (const value of Object.values(rows[0]!)) {
        assert.ok(!String(value).includes(secretPart), 'no column holds the secret');
      }

      assert.deepEqual(await store.read.preAuthKeys.findBySecret(secret), key);
      const wrong = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
      assert.equal(await store.read.preAuthKeys.findBySecret(wrong), undefined, 'same prefix, other secret');
      assert.equal(await store.read.preAuthKeys.findBySecret('hwkey-auth-short'), undefined);
      assert.equal(await store.read.preAuthKeys.findBySecret(''), undefined);

      const tagged = await store.read.preAuthKeys.create({ tailnetId: tailnet.id, userId: null, reusable: false, ephemeral: false, tags: ['tag:server'], expiresAt: null });
      assert.deepEqual((await store.read.preAuthKeys.list(tailnet.id)).map((k) => k.id), [key.id, tagged.key.id]);
      assert.deepEqual((await store.read.preAuthKeys.list(tailnet.id, user.id)).map((k) => k.id), [key.id]);

      assert.equal((await store.read.preAuthKeys.markUsed(key.id)).usedCount, 1);
      assert.equal((await store.read.preAuthKeys.markUsed(key.id)).usedCount, 2);
      const revoked = await store.read.preAuthKeys.revoke(key.id);
      assert.ok(revoked.revokedAt instanceof Date);
      const again = await store.read.preAuthKeys.revoke(key.id);
      assert.deepEqual(again.revokedAt, revoked.revokedAt, 'revoking twice keeps the first time');
      await rejectsWith(store.read.preAuthKeys.markUsed(9999 as typeof key.id), 'HW_STORE_NOT_FOUND', 'pre-auth key 9999 does not exist');
      await rejectsWith(
        store.read.preAuthKeys.create({ tailnetId: tailnet.id, userId: 31337 as UserId, reusable: false, ephemeral: false, tags: [], expiresAt: null }),
        'HW_STORE_REFERENCE_MISSING', `pre-auth key: tailnet ${tailnet.id} or user 31337 does not exist`,
      );
    } finally {
      await t.cleanup();
    }
  });

  it('counts concurrent uses of one pre-auth key exactly', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      const { key } = await store.read.preAuthKeys.create({ tailnetId: tailnet.id, userId: null, reusable: false, ephemeral: false, tags: ['tag:x'], expiresAt: null });
      const counts = await Promise.all(Array.from({ length: 8 }, () => store.transaction((tx) => tx.preAuthKeys.markUsed(key.id))));
      assert.deepEqual(counts.map((k) => k.usedCount).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
    } finally {
      await t.cleanup();
    }
  });

  it('stores only a hash of API keys and finds them by secret or prefix', async () => {
    const t = await open();
    try {
      const { store } = t;
      const expiresAt = new Date('2031-06-01T00:00:00Z');
      const { key, secret } = await store.read.apiKeys.create(expiresAt);
      assert.match(secret, /^hwk_[0-9A-Za-z]{12}_[0-9A-Za-z]{40}$/);
      assert.equal(secret.slice(4, 16), key.prefix);
      assert.deepEqual({ expiresAt: key.expiresAt, lastUsedAt: key.lastUsedAt, revokedAt: key.revokedAt }, { expiresAt, lastUsedAt: null, revokedAt: null });
      const rows = await rawRows(t, 'api_keys');
      const secretPart = secret.slice(17);
      for (const value of Object.values(rows[0]!)) assert.ok(!String(value).includes(secretPart), 'no column holds the secret');

      assert.deepEqual(await store.read.apiKeys.findBySecret(secret), key);
      assert.equal(await store.read.apiKeys.findBySecret(`${secret.slice(0, -2)}zz` === secret ? `${secret.slice(0, -2)}yy` : `${secret.slice(0, -2)}zz`), undefined);
      assert.equal(await store.read.apiKeys.findBySecret('Bearer nonsense'), undefined);
      for (const form of [key.prefix, `hwk_${key.prefix}`, `hwk_${key.prefix}_***`, secret]) {
        assert.deepEqual(await store.read.apiKeys.getByPrefix(form), key, form);
      }
      assert.equal(await store.read.apiKeys.getByPrefix('nothing'), undefined);

      const at = new Date('2030-07-01T12:00:00Z');
      await store.read.apiKeys.touch(key.id, at);
      assert.deepEqual((await store.read.apiKeys.get(key.id))?.lastUsedAt, at);
      const never = await store.read.apiKeys.create(null);
      assert.equal(never.key.expiresAt, null);
      assert.deepEqual((await store.read.apiKeys.list()).map((k) => k.id), [key.id, never.key.id]);
      const revoked = await store.read.apiKeys.revoke(key.id);
      assert.ok(revoked.revokedAt instanceof Date);
      await rejectsWith(store.read.apiKeys.revoke(4040 as typeof key.id), 'HW_STORE_NOT_FOUND', 'API key 4040 does not exist');
    } finally {
      await t.cleanup();
    }
  });

  it('keeps every policy version', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      assert.equal(await store.read.policies.latest(tailnet.id), undefined);
      const first = await store.read.policies.save(tailnet.id, '// v1\n{"acls": []}', 'cli');
      const second = await store.read.policies.save(tailnet.id, '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}', 'api:abc');
      assert.deepEqual(await store.read.policies.latest(tailnet.id), second);
      assert.deepEqual(await store.read.policies.list(tailnet.id), [first, second]);
      assert.equal(first.text, '// v1\n{"acls": []}');
      await rejectsWith(store.read.policies.save(5150 as TailnetId, '{}', 'cli'), 'HW_STORE_REFERENCE_MISSING', 'policy: tailnet 5150 does not exist');
    } finally {
      await t.cleanup();
    }
  });

  it('writes audit entries in the transaction and rolls them back with it', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      const entry = await store.transaction(async (tx) => {
        const user = await tx.users.create({ tailnetId: tailnet.id, name: 'carol' });
        return tx.audit.record({ tailnetId: tailnet.id, actor: 'unix-socket', action: 'user.create', target: `user:${user.id}`, details: { name: 'carol' } });
      });
      assert.deepEqual(
        { actor: entry.actor, action: entry.action, details: entry.details, tailnetId: entry.tailnetId },
        { actor: 'unix-socket', action: 'user.create', details: { name: 'carol' }, tailnetId: tailnet.id },
      );
      const boom = new Error('boom');
      await assert.rejects(store.transaction(async (tx) => {
        const user = await tx.users.create({ tailnetId: tailnet.id, name: 'dave' });
        await tx.audit.record({ tailnetId: tailnet.id, actor: 'unix-socket', action: 'user.create', target: `user:${user.id}` });
        throw boom;
      }), (err) => err === boom);
      assert.deepEqual((await store.read.audit.list({ tailnetId: tailnet.id })).map((e) => e.id), [entry.id]);
      await store.read.audit.record({ tailnetId: null, actor: 'system', action: 'apikey.create', target: 'apikey:1' });
      const all = await store.read.audit.list({});
      assert.deepEqual(all.map((e) => e.action), ['apikey.create', 'user.create'], 'newest first');
      assert.equal((await store.read.audit.list({ limit: 1 })).length, 1);
    } finally {
      await t.cleanup();
    }
  });

  it('rolls a failed transaction back completely', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      await assert.rejects(store.transaction(async (tx) => {
        const corp = await tx.tailnets.create('corp');
        const user = await tx.users.create({ tailnetId: corp.id, name: 'erin' });
        const addresses = await tx.addresses.allocate(tailnet.id);
        assert.equal(addresses.ipv4, '100.64.0.1');
        await tx.nodes.create(newNode(tailnet.id, { ...addresses, userId: null, givenName: 'doomed' }));
        await tx.preAuthKeys.create({ tailnetId: corp.id, userId: user.id, reusable: false, ephemeral: false, tags: [], expiresAt: null });
        await tx.policies.save(corp.id, '{}', 'cli');
        // A constraint violation ends it.
        await tx.users.create({ tailnetId: corp.id, name: 'erin' });
      }), { code: 'HW_STORE_USER_EXISTS' });
      assert.equal(await store.read.tailnets.getByName('corp'), undefined);
      assert.deepEqual(await store.read.nodes.listAll(), []);
      assert.equal((await rawRows(t, 'users')).length, 0);
      assert.equal((await rawRows(t, 'pre_auth_keys')).length, 0);
      assert.equal((await rawRows(t, 'policies')).length, 0);
      // The rolled-back allocation is handed out again.
      const node = await registerNode(store, tailnet.id, 'next');
      assert.equal(node.ipv4, '100.64.0.1');
    } finally {
      await t.cleanup();
    }
  });

  it('refuses store.read, nested transactions and allocation outside a transaction', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      await rejectsWith(store.transaction(() => store.read.users.list(tailnet.id)), 'HW_STORE_NESTED_TRANSACTION', 'store.read used inside a transaction callback; use the callback\'s tx');
      await rejectsWith(store.transaction(() => store.transaction(async () => 1)), 'HW_STORE_NESTED_TRANSACTION');
      await rejectsWith(store.read.addresses.allocate(tailnet.id), 'HW_STORE_NEEDS_TRANSACTION', `tailnet ${tailnet.id}: addresses must be allocated inside store.transaction(), with the node insert`);
      // Work a callback left running may use store.read once the callback has returned, even
      // before the commit finished (setImmediate runs during PostgreSQL's COMMIT round trip).
      let later: Promise<unknown> = Promise.resolve();
      await store.transaction(async () => {
        later = new Promise((resolve) => setImmediate(resolve)).then(() => store.read.users.list(tailnet.id));
      });
      assert.deepEqual(await later, []);
      await rejectsWith(store.transaction(async (tx) => tx.addresses.allocate(777 as TailnetId)), 'HW_STORE_NOT_FOUND', 'tailnet 777 does not exist');
    } finally {
      await t.cleanup();
    }
  });

  it('allocates sequential addresses and never the same one to 200 concurrent registrations', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      const first = await registerNode(store, tailnet.id, 'first');
      assert.deepEqual({ ipv4: first.ipv4, ipv6: first.ipv6 }, { ipv4: '100.64.0.1', ipv6: 'fd7a:115c:a1e0::1' });
      // An address taken without the allocator is skipped.
      await store.read.nodes.create(newNode(tailnet.id, { ipv4: '100.64.0.2', ipv6: 'fd7a:115c:a1e0::3', givenName: 'manual' }));
      const third = await registerNode(store, tailnet.id, 'third');
      assert.deepEqual({ ipv4: third.ipv4, ipv6: third.ipv6 }, { ipv4: '100.64.0.3', ipv6: 'fd7a:115c:a1e0::2' });

      const nodes = await Promise.all(Array.from({ length: 200 }, (_, i) => registerNode(store, tailnet.id, `concurrent-${i}`)));
      const all = await store.read.nodes.list(tailnet.id);
      assert.equal(all.length, 203);
      assert.equal(new Set(all.map((node) => node.ipv4)).size, 203);
      assert.equal(new Set(all.map((node) => node.ipv6)).size, 203);
      // Sequential: the 200 took exactly the next 200 addresses.
      const fourthOctets = nodes.map((node) => node.ipv4!).map((ip) => Number(ip.split('.')[2]) * 256 + Number(ip.split('.')[3])).sort((a, b) => a - b);
      assert.deepEqual(fourthOctets, Array.from({ length: 200 }, (_, i) => i + 4));
      assert.equal((await store.read.audit.list({ limit: 1000 })).length, 202);
    } finally {
      await t.cleanup();
    }
  });

  it('reports an exhausted prefix and wraps around to freed addresses', async () => {
    const t = await open({ prefixes: { v4: '100.64.0.0/30', v6: null } });
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      const a = await registerNode(store, tailnet.id, 'a');
      const b = await registerNode(store, tailnet.id, 'b');
      assert.deepEqual([a.ipv4, a.ipv6, b.ipv4], ['100.64.0.1', null, '100.64.0.2']);
      await rejectsWith(
        registerNode(store, tailnet.id, 'c'),
        'HW_STORE_ADDRESSES_EXHAUSTED',
        `tailnet ${tailnet.id}: every address of 100.64.0.0/30 is in use (2 usable); delete unused nodes or widen prefixes.v4`,
        503,
      );
      // Another tailnet has its own addresses.
      const other = await store.read.tailnets.create('other');
      assert.equal((await registerNode(store, other.id, 'a')).ipv4, '100.64.0.1');
      await store.read.nodes.delete(a.id);
      assert.equal((await registerNode(store, tailnet.id, 'c')).ipv4, '100.64.0.1');
    } finally {
      await t.cleanup();
    }
  });

  it('allocates past 65,536 nodes in a tailnet, from the cursor and from a scan', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      // The 65,536 addresses the sequential allocator hands out first (::53 is skipped), written
      // in bulk: registering them one by one would take minutes.
      const v4 = new AddressPool(DEFAULT_TEST_PREFIXES.v4!);
      const v6 = new AddressPool(DEFAULT_TEST_PREFIXES.v6!);
      let a4 = v4.first;
      let a6 = v6.first;
      const statements: string[] = [];
      let values: string[] = [];
      for (let i = 1; i <= 65_536; i++) {
        a4 = v4.nextUsable(a4 + 1n);
        a6 = v6.nextUsable(a6 + 1n);
        const key = i.toString(16).padStart(64, '0');
        values.push(`(${tailnet.id}, 's${i}', 'mkey:${key}', 'nodekey:${key}', '${v4.format(a4)}', '${v6.format(a6)}', 'h', 'n${i}', '[]', '[]', '[]', '[]', '{}', false, 'cli', 0, 0)`);
        if (values.length === 2_000 || i === 65_536) {
          statements.push(`insert into nodes (tailnet_id, stable_id, machine_key, node_key, ipv4, ipv6, hostname, given_name, tags, advertised_routes, approved_routes, endpoints, hostinfo, ephemeral, register_method, created_at, updated_at) values ${values.join(', ')};`);
          values = [];
        }
      }
      assert.deepEqual([v4.format(a4), v6.format(a6)], ['100.65.0.0', 'fd7a:115c:a1e0::1:1'], 'the 65,536th addresses');
      await rawExec(t, `begin; ${statements.join('\n')} commit;`);
      await rawExec(t, `update tailnets set last_ipv4 = '100.65.0.0', last_ipv6 = 'fd7a:115c:a1e0::1:1' where id = ${tailnet.id}`);
      const next = await registerNode(store, tailnet.id, 'node-65537');
      assert.deepEqual([next.ipv4, next.ipv6], ['100.65.0.1', 'fd7a:115c:a1e0::1:2']);
      // Without a cursor the probes from the start find nothing free; the scan of every address
      // in use must still find the first free one past the 16-bit boundary.
      await rawExec(t, `update tailnets set last_ipv4 = null, last_ipv6 = null where id = ${tailnet.id}`);
      const scanned = await registerNode(store, tailnet.id, 'node-65538');
      assert.deepEqual([scanned.ipv4, scanned.ipv6], ['100.65.0.2', 'fd7a:115c:a1e0::1:3']);
      assert.equal((await store.read.nodes.list(tailnet.id)).length, 65_538);
    } finally {
      await t.cleanup();
    }
  });

  it('skips the quad-100 and ChromeOS ranges', async () => {
    const t = await open({ prefixes: { v4: '100.100.100.0/23', v6: 'fd7a:115c:a1e0::/126' } });
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      const node = await registerNode(store, tailnet.id, 'a');
      assert.deepEqual([node.ipv4, node.ipv6], ['100.100.101.0', 'fd7a:115c:a1e0::1']);
    } finally {
      await t.cleanup();
    }
    const chromeOs = await open({ prefixes: { v4: '100.115.92.0/22', v6: null } });
    try {
      const tailnet = await defaultTailnet(chromeOs.store);
      assert.equal((await registerNode(chromeOs.store, tailnet.id, 'a')).ipv4, '100.115.94.0');
    } finally {
      await chromeOs.cleanup();
    }
  });

  it('allocates random addresses until the prefix is full', async () => {
    const t = await open({ prefixes: { v4: '100.64.0.0/28', v6: 'fd7a:115c:a1e0::/48', allocation: 'random' } });
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      const nodes = [];
      for (let i = 0; i < 14; i++) nodes.push(await registerNode(store, tailnet.id, `r${i}`));
      const v4 = nodes.map((node) => node.ipv4!);
      assert.equal(new Set(v4).size, 14);
      assert.ok(!v4.includes('100.64.0.0') && !v4.includes('100.64.0.15'), 'network and broadcast are skipped');
      assert.equal(new Set(nodes.map((node) => node.ipv6)).size, 14);
      await rejectsWith(registerNode(store, tailnet.id, 'full'), 'HW_STORE_ADDRESSES_EXHAUSTED', /every address of 100\.64\.0\.0\/28 is in use \(14 usable\)/);
    } finally {
      await t.cleanup();
    }
  });

  it('keeps all data across a restart and continues the address sequence', async () => {
    const t = await open();
    try {
      let store = t.store;
      const tailnet = await defaultTailnet(store);
      const user = await store.read.users.create({ tailnetId: tailnet.id, name: 'frank' });
      const node = await registerNode(store, tailnet.id, 'franks-pc', user.id);
      const { secret } = await store.read.preAuthKeys.create({ tailnetId: tailnet.id, userId: user.id, reusable: true, ephemeral: false, tags: [], expiresAt: null });
      const api = await store.read.apiKeys.create(null);
      const policy = await store.read.policies.save(tailnet.id, '{}', 'cli');

      store = await t.reopen();
      assert.deepEqual(await store.read.users.get(user.id), user);
      assert.deepEqual(await store.read.nodes.get(node.id), node);
      assert.ok(await store.read.preAuthKeys.findBySecret(secret));
      assert.deepEqual(await store.read.apiKeys.findBySecret(api.secret), api.key);
      assert.deepEqual(await store.read.policies.latest(tailnet.id), policy);
      assert.equal((await store.read.audit.list({})).length, 1);
      assert.equal((await registerNode(store, tailnet.id, 'after-restart')).ipv4, '100.64.0.2');
    } finally {
      await t.cleanup();
    }
  });

  it('lets in-flight transactions finish when closing', async () => {
    const t = await open();
    try {
      const { store } = t;
      const tailnet = await defaultTailnet(store);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      const pending = store.transaction(async (tx) => {
        await tx.users.create({ tailnetId: tailnet.id, name: 'in-flight' });
        await gate;
        return tx.users.create({ tailnetId: tailnet.id, name: 'in-flight-2' });
      });
      await new Promise((resolve) => setTimeout(resolve, 10));
      const closing = store.close();
      await rejectsWith(store.read.users.list(tailnet.id), 'HW_STORE_CLOSED', 'store.read: the store is closed', 503);
      await rejectsWith(store.transaction(async () => 1), 'HW_STORE_CLOSED');
      release();
      await pending;
      await closing;
      await store.close();
      const reopened = await t.reopen();
      assert.deepEqual((await reopened.read.users.list(tailnet.id)).map((user) => user.name), ['in-flight', 'in-flight-2']);
    } finally {
      await t.cleanup();
    }
  });
});

describe('openStore', () => {
  it('creates the SQLite database and its directory private to the owner', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'headway-open-'));
    try {
      const path = join(dir, 'data', 'headway.sqlite');
      const store = await openStore({ database: { type: 'sqlite', sqlite: { path, writeAheadLog: true } }, prefixes: DEFAULT_TEST_PREFIXES });
      try {
        await store.read.users.list((await defaultTailnet(store)).id);
        assert.equal((await stat(join(dir, 'data'))).mode & 0o777, 0o700);
        for (const file of [path, `${path}-wal`, `${path}-shm`]) {
          assert.equal((await stat(file)).mode & 0o777, 0o600, file);
        }
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a database it cannot open, naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'headway-open-'));
    try {
      await writeFile(join(dir, 'file'), 'x');
      const path = join(dir, 'file', 'headway.sqlite');
      await rejectsWith(
        openStore({ database: { type: 'sqlite', sqlite: { path, writeAheadLog: true } }, prefixes: DEFAULT_TEST_PREFIXES }),
        'HW_STORE_UNAVAILABLE', `sqlite ${path}: cannot open: EEXIST: file already exists, mkdir '${join(dir, 'file')}'`, 503,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a PostgreSQL server it cannot reach, without the password', async () => {
    const err = await rejectsWith(
      openStore({
        database: { type: 'postgres', postgres: { url: null, host: '127.0.0.1', port: 1, name: 'headway', user: 'hw', pass: 'hunter2', ssl: 'disable', maxOpenConns: 2 } },
        prefixes: DEFAULT_TEST_PREFIXES,
      }),
      'HW_STORE_UNAVAILABLE', /^postgres 127\.0\.0\.1:1\/headway: cannot connect: connect ECONNREFUSED 127\.0\.0\.1:1$/, 503,
    );
    assert.ok(!err.message.includes('hunter2'));
  });
});

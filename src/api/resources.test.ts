// Every endpoint against a real store on both dialects, over TCP with an API key: what each
// answers, what it changes, and the audit entry each admin change leaves (who, what, when).
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDialect } from '../store/testing.js';
import type { ApiKeyJson, AuditEntryJson, NewApiKeyJson, NewPreAuthKeyJson, NodeJson, NodeRoutesJson, PreAuthKeyJson, TailnetJson, UserJson } from './schemas.js';
import type { PolicyJson } from './policy.js';
import { addTestNode, openTestLogin, startTestApi, type TestApi, type TestRequest } from './testing.js';

forEachDialect('admin API resources', (open) => {
  let api: TestApi;
  let key: string;
  let prefix: string;
  let cleanup: () => Promise<void>;
  const startedAt = Date.now();

  before(async () => {
    const testStore = await open();
    api = await startTestApi(testStore);
    key = await api.createApiKey();
    prefix = key.split('_')[1]!;
    cleanup = async () => {
      await api.close();
      await testStore.cleanup();
    };
  });
  after(() => cleanup());

  async function ok<T>(method: string, path: string, options: TestRequest = {}, status = 200): Promise<T> {
    const res = await api.request(method, path, { apiKey: key, ...options });
    assert.equal(res.status, status, `${method} ${path}: ${res.text}`);
    return res.json as T;
  }

  it('manages tailnets', async () => {
    const created = await ok<TailnetJson>('POST', '/api/v1/tailnets', { body: { name: 'lab' } }, 201);
    assert.equal(created.name, 'lab');
    assert.equal(created.node_count, 0);
    const { tailnets } = await ok<{ tailnets: TailnetJson[] }>('GET', '/api/v1/tailnets');
    assert.deepEqual(tailnets.map((t) => t.name), ['default', 'lab']);
    await ok('POST', '/api/v1/users?tailnet=lab', { body: { name: 'alice' } }, 201);
    const deleted = await ok<TailnetJson>('DELETE', '/api/v1/tailnets/lab');
    assert.equal(deleted.user_count, 1);
    assert.equal(api.state.tailnetByName('lab'), undefined);
  });

  it('manages users', async () => {
    const alice = await ok<UserJson>('POST', '/api/v1/users', { body: { name: 'alice', email: 'alice@example.com', display_name: 'Alice' } }, 201);
    assert.deepEqual(Object.keys(alice).sort(), ['created_at', 'display_name', 'email', 'id', 'name', 'role']);
    assert.equal(alice.email, 'alice@example.com');
    assert.equal(alice.role, 'member');
    const bob = await ok<UserJson>('POST', '/api/v1/users', { body: { name: 'bob', role: 'network-admin' } }, 201);
    assert.equal(bob.role, 'network-admin');
    assert.equal((await ok<UserJson>('PATCH', '/api/v1/users/bob', { body: { role: 'auditor' } })).role, 'auditor');
    assert.equal(api.state.defaultTailnet.userByName('bob')!.role, 'auditor');
    const renamed = await ok<UserJson>('PATCH', '/api/v1/users/bob', { body: { name: 'robert' } });
    assert.equal(renamed.name, 'robert');
    const byId = await ok<UserJson>('PATCH', `/api/v1/users/${alice.id}`, { body: { display_name: 'Alice A.' } });
    assert.equal(byId.display_name, 'Alice A.');
    const { users } = await ok<{ users: UserJson[] }>('GET', '/api/v1/users');
    assert.deepEqual(users.map((u) => u.name), ['alice', 'robert']);
    await ok('DELETE', '/api/v1/users/robert');
    assert.equal(api.state.defaultTailnet.userByName('robert'), undefined);
  });

  it('manages nodes', async () => {
    const tailnet = api.state.defaultTailnet;
    const alice = tailnet.userByName('alice')!;
    const carol = await tailnet.createUser({ name: 'carol' }, { name: 'test-setup' });
    const laptop = await addTestNode(tailnet, { hostname: 'Laptop', userId: alice.id, keyExpiry: new Date(Date.now() + 86_400_000) });
    await addTestNode(tailnet, { hostname: 'router', userId: alice.id, routes: ['10.1.0.0/16', '0.0.0.0/0', '::/0'] });

    const { nodes } = await ok<{ nodes: NodeJson[] }>('GET', '/api/v1/nodes');
    assert.deepEqual(nodes.map((n) => n.name), ['laptop', 'router']);
    const shown = await ok<NodeJson>('GET', `/api/v1/nodes/${laptop.id}`);
    assert.equal(shown.name, 'laptop');
    assert.equal(shown.hostname, 'Laptop');
    assert.equal(shown.user, 'alice');
    assert.equal(shown.ipv4, laptop.ipv4);
    assert.equal(shown.ipv6, laptop.ipv6);
    assert.equal(shown.online, false);
    assert.equal(shown.expired, false);
    assert.equal(shown.machine_key, laptop.machineKey);
    assert.equal(shown.node_key, laptop.nodeKey);
    assert.equal(shown.os, 'linux');
    assert.deepEqual(await ok<NodeJson>('GET', `/api/v1/nodes/laptop`), shown, 'found by name');
    assert.deepEqual(await ok<NodeJson>('GET', `/api/v1/nodes/${laptop.nodeKey}`), shown, 'found by node key');

    assert.equal((await ok<NodeJson>('POST', '/api/v1/nodes/laptop/rename', { body: { name: 'alices-laptop' } })).name, 'alices-laptop');
    const tagged = await ok<NodeJson>('POST', '/api/v1/nodes/alices-laptop/tags', { body: { tags: ['tag:b', 'tag:a', 'tag:b'] } });
    assert.deepEqual(tagged.tags, ['tag:a', 'tag:b']);
    const moved = await ok<NodeJson>('POST', '/api/v1/nodes/alices-laptop/move', { body: { user: 'carol' } });
    assert.equal(moved.user, 'carol');
    assert.equal(moved.user_id, carol.id);
    const expired = await ok<NodeJson>('POST', '/api/v1/nodes/alices-laptop/expire');
    assert.equal(expired.expired, true);
    assert.ok(Date.parse(expired.key_expiry!) <= Date.now());
    const later = await ok<NodeJson>('POST', '/api/v1/nodes/alices-laptop/expire', { body: { expiry: '90d' } });
    assert.ok(Math.abs(Date.parse(later.key_expiry!) - Date.now() - 90 * 86_400_000) < 60_000, 'a duration from now');
    assert.equal(later.expired, false);
    const at = await ok<NodeJson>('POST', '/api/v1/nodes/alices-laptop/expire', { body: { expiry: '2099-01-02T03:04:05Z' } });
    assert.equal(at.key_expiry, '2099-01-02T03:04:05.000Z');
    const never = await ok<NodeJson>('POST', '/api/v1/nodes/alices-laptop/expire', { body: { expiry: null } });
    assert.equal(never.key_expiry, null);
    const byUser = await ok<{ nodes: NodeJson[] }>('GET', '/api/v1/nodes?user=carol');
    assert.deepEqual(byUser.nodes.map((n) => n.name), ['alices-laptop']);

    const { routes } = await ok<{ routes: NodeRoutesJson[] }>('GET', '/api/v1/routes');
    assert.deepEqual(routes, [{ node_id: routes[0]!.node_id, node: 'router', advertised_routes: ['0.0.0.0/0', '10.1.0.0/16', '::/0'], approved_routes: [] }]);
    const approved = await ok<NodeRoutesJson>('POST', '/api/v1/nodes/router/routes/approve', { body: { routes: ['10.1.0.0/16', '0.0.0.0/0'] } });
    assert.deepEqual(approved.approved_routes, ['0.0.0.0/0', '10.1.0.0/16']);
    assert.deepEqual((await ok<NodeRoutesJson>('GET', '/api/v1/nodes/router/routes')).approved_routes, ['0.0.0.0/0', '10.1.0.0/16']);

    const login = await openTestLogin(api.state, 'ci-runner');
    const registered = await ok<NodeJson>('POST', '/api/v1/nodes/register', { body: { key: login.id, tags: ['tag:ci'] } }, 201);
    assert.deepEqual(registered.tags, ['tag:ci']);
    assert.equal(registered.key_expiry, null, 'tagged nodes do not expire');
    assert.equal(registered.register_method, 'interactive');

    const deleted = await ok<NodeJson>('DELETE', '/api/v1/nodes/router');
    assert.equal(deleted.name, 'router');
    assert.equal(tailnet.nodeByGivenName('router'), undefined);
  });

  it('manages pre-auth keys and shows the secret once', async () => {
    const created = await ok<NewPreAuthKeyJson>('POST', '/api/v1/preauthkeys', {
      body: { user: 'alice', reusable: true, ephemeral: true, expiration: '24h', tags: ['tag:web'] },
    }, 201);
    assert.match(created.key, /^hwkey-auth-[0-9A-Za-z]{12}-[0-9A-Za-z]{40}$/);
    assert.equal(created.key.slice('hwkey-auth-'.length, 'hwkey-auth-'.length + 12), created.prefix);
    assert.equal(created.user, 'alice');
    assert.equal(created.reusable, true);
    assert.equal(created.usable, true);
    const lifetime = Date.parse(created.expiration!) - Date.parse(created.created_at);
    assert.ok(Math.abs(lifetime - 86_400_000) < 5_000, `expires in 24h, not ${lifetime} ms`);
    const found = await api.state.findPreAuthKey(created.key);
    assert.equal(found?.id, created.id, 'the returned key works');

    const tagOnly = await ok<NewPreAuthKeyJson>('POST', '/api/v1/preauthkeys', { body: { tags: ['tag:ci'] } }, 201);
    assert.equal(tagOnly.user, null);
    const defaultLifetime = Date.parse(tagOnly.expiration!) - Date.parse(tagOnly.created_at);
    assert.ok(Math.abs(defaultLifetime - 3_600_000) < 5_000, 'default expiration is 1h');

    const list = await api.request('GET', '/api/v1/preauthkeys', { apiKey: key });
    assert.ok(!list.text.includes(created.key.slice(-40)), 'secrets are never listed');
    const { preauthkeys } = list.json as { preauthkeys: PreAuthKeyJson[] };
    assert.equal(preauthkeys.length, 2);
    assert.ok(preauthkeys.every((k) => !('key' in k)));
    assert.equal((await ok<{ preauthkeys: PreAuthKeyJson[] }>('GET', '/api/v1/preauthkeys?user=alice')).preauthkeys.length, 1);

    const expired = await ok<PreAuthKeyJson>('POST', `/api/v1/preauthkeys/${created.prefix}/expire`);
    assert.equal(expired.expired, true);
    assert.equal(expired.usable, false);
    assert.ok(expired.revoked_at !== null);
    const byId = await ok<PreAuthKeyJson>('POST', `/api/v1/preauthkeys/${tagOnly.id}/expire`);
    assert.equal(byId.id, tagOnly.id);
  });

  it('manages API keys and shows the secret once', async () => {
    const created = await ok<NewApiKeyJson>('POST', '/api/v1/apikeys', { body: { expiration: '30d' } }, 201);
    assert.match(created.key, /^hwk_[0-9A-Za-z]{12}_[0-9A-Za-z]{40}$/);
    const defaulted = await ok<NewApiKeyJson>('POST', '/api/v1/apikeys', {}, 201);
    const lifetime = Date.parse(defaulted.expiration!) - Date.parse(defaulted.created_at);
    assert.ok(Math.abs(lifetime - 90 * 86_400_000) < 5_000, 'default expiration is 90d');
    const list = await api.request('GET', '/api/v1/apikeys', { apiKey: key });
    assert.ok(!list.text.includes(created.key.slice(-40)));
    assert.ok((list.json as { apikeys: ApiKeyJson[] }).apikeys.some((k) => k.prefix === created.prefix));
    const expired = await ok<ApiKeyJson>('POST', `/api/v1/apikeys/hwk_${created.prefix}/expire`);
    assert.equal(expired.expired, true);
  });

  it('reads the policy as stored', async () => {
    const empty = await ok<PolicyJson>('GET', '/api/v1/policy');
    assert.deepEqual(empty, { tailnet: 'default', mode: 'database', path: null, policy: null, version: null });
  });

  it('records every admin change in the audit log: who, what, when', async () => {
    const { audit } = await ok<{ audit: AuditEntryJson[] }>('GET', '/api/v1/audit?limit=1000');
    const byUs = audit.filter((e) => e.actor === `api-key:${prefix}`);
    const actions = new Set(byUs.map((e) => e.action));
    for (const action of [
      'tailnet.create', 'tailnet.delete', 'user.create', 'user.update', 'user.delete',
      'node.rename', 'node.tag', 'node.move', 'node.expire', 'node.routes.approve', 'node.register', 'node.delete',
      'preauthkey.create', 'preauthkey.expire', 'apikey.create', 'apikey.expire',
    ]) {
      assert.ok(actions.has(action), `audit has ${action} by api-key:${prefix}`);
    }
    for (const entry of byUs) {
      const at = Date.parse(entry.created_at);
      assert.ok(at >= startedAt - 1_000 && at <= Date.now() + 1_000, `${entry.action} has a plausible time`);
      assert.match(entry.target, /^[a-z]+:\d+$/);
    }
    const rename = byUs.find((e) => e.action === 'node.rename')!;
    assert.equal(rename.tailnet, 'default');
    assert.deepEqual(rename.details, { givenName: 'alices-laptop' });
    const apiKeyCreate = byUs.find((e) => e.action === 'apikey.create')!;
    assert.equal(apiKeyCreate.tailnet_id, null, 'server-wide');
    assert.equal(apiKeyCreate.tailnet, null);
    const tailnetCreate = byUs.find((e) => e.action === 'tailnet.create')!;
    assert.equal(tailnetCreate.tailnet, null, 'the tailnet was deleted since');
    assert.equal(typeof tailnetCreate.tailnet_id, 'number');
    assert.ok(!JSON.stringify(audit).includes('hwkey-auth-') && !/hwk_[0-9A-Za-z]{12}_/.test(JSON.stringify(audit)), 'no secrets in the audit log');
    const scoped = await ok<{ audit: AuditEntryJson[] }>('GET', '/api/v1/audit?tailnet=default&limit=5');
    assert.equal(scoped.audit.length, 5);
    assert.ok(scoped.audit.every((e) => e.tailnet === 'default'));
    assert.ok(scoped.audit[0]!.id > scoped.audit[4]!.id, 'newest first');
  });
});

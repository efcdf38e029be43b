// Tailscale API v2 with the requests tailscale-client-go-v2 (and through it the Terraform
// provider) sends: the API key as Basic auth user name with an empty password, `Accept` on
// requests without a body and `Content-Type` on those with one, If-Match with a quoted ETag, and
// the answers decoded the way the client decodes them (`{"devices": [...]}`, `{"keys": [...]}`,
// `{"message"}` errors with the HTTP status).
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDialect } from '../../store/testing.js';
import { addTestNode, startTestApi, TEST_ADMIN, type TestApi } from '../testing.js';
import type { DeviceJson } from './devices.js';
import type { KeyJson } from './keys.js';

interface Answer { status: number; headers: Headers; text: string; json: unknown }

const POLICY = `// managed by terraform
{
  "tagOwners": { "tag:ci": ["alice@example.com"], "tag:web": ["alice@example.com"] },
  "acls": [{ "action": "accept", "src": ["*"], "dst": ["*:*"] }],
}`;

forEachDialect('Tailscale API v2', (open) => {
  let api: TestApi;
  let key: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    const testStore = await open();
    api = await startTestApi(testStore, { config: { policy: { mode: 'database' }, dns: { base_domain: 'tail.example.com', nameservers: { global: ['1.1.1.1'], split: { 'corp.example.com': ['10.0.0.53'] } }, search_domains: ['corp.example.com'] } } });
    key = await api.createApiKey();
    cleanup = async () => {
      await api.close();
      await testStore.cleanup();
    };
  });
  after(() => cleanup());

  /** As tailscale-client-go-v2's buildRequest: Basic auth with the key as user, Accept or Content-Type. */
  async function ts(method: string, path: string, options: { body?: unknown; contentType?: string; headers?: Record<string, string>; auth?: string | null } = {}): Promise<Answer> {
    const headers: Record<string, string> = { 'User-Agent': 'tailscale-client-go', ...options.headers };
    const contentType = options.contentType ?? 'application/json';
    let body: string | undefined;
    if (options.body === undefined) headers['Accept'] = contentType;
    else {
      headers['Content-Type'] = contentType;
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    }
    if (options.auth !== null) headers['Authorization'] = options.auth ?? `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
    const res = await fetch(`${api.url}/api/v2${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  it('authenticates a key as Basic user name or Bearer token, and answers Tailscale\'s error body otherwise', async () => {
    assert.equal((await ts('GET', '/tailnet/-/devices')).status, 200);
    assert.equal((await ts('GET', '/tailnet/-/devices', { auth: `Bearer ${key}` })).status, 200);
    const missing = await ts('GET', '/tailnet/-/devices', { auth: null });
    assert.equal(missing.status, 401);
    assert.deepEqual(missing.json, { message: 'API token invalid' });
    const wrong = await ts('GET', '/tailnet/-/devices', { auth: `Basic ${Buffer.from('hwk_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB:').toString('base64')}` });
    assert.equal(wrong.status, 401);
    const nowhere = await ts('GET', '/tailnet/nosuch/devices');
    assert.equal(nowhere.status, 404);
    assert.equal(typeof (nowhere.json as { message: string }).message, 'string');
    assert.equal((await ts('GET', '/device/nNOSUCHDEVICE')).status, 404);
  });

  it('lists, gets, renames, tags, routes, expires and deletes devices', async () => {
    const tailnet = api.state.defaultTailnet;
    const alice = await tailnet.createUser({ name: 'alice', email: 'alice@example.com' }, TEST_ADMIN);
    await tailnet.setPolicy(POLICY, TEST_ADMIN, { persist: true });
    const laptop = await addTestNode(tailnet, { hostname: 'laptop', userId: alice.id, keyExpiry: new Date(Date.now() + 86_400_000) });
    const router = await addTestNode(tailnet, { hostname: 'router', tags: ['tag:web'], routes: ['10.1.0.0/24'] });

    const list = await ts('GET', '/tailnet/-/devices');
    assert.equal(list.status, 200);
    const devices = (list.json as { devices: DeviceJson[] }).devices;
    assert.deepEqual(devices.map((d) => d.hostname), ['laptop', 'router']);
    const first = devices[0]!;
    assert.equal(first.nodeId, laptop.stableId);
    assert.equal(first.id, String(laptop.id));
    assert.equal(first.user, 'alice@example.com');
    assert.equal(first.name, 'laptop.tail.example.com');
    assert.deepEqual(first.addresses, [laptop.ipv4, laptop.ipv6]);
    assert.equal(first.authorized, true);
    assert.equal(first.keyExpiryDisabled, false);
    assert.equal(first.clientVersion, '1.78.3');
    assert.equal(first.advertisedRoutes, undefined, 'routes only with fields=all');
    const all = (await ts('GET', '/tailnet/-/devices?fields=all')).json as { devices: DeviceJson[] };
    assert.deepEqual(all.devices[1]!.advertisedRoutes, ['10.1.0.0/24']);
    assert.deepEqual(all.devices[1]!.enabledRoutes, []);

    const got = (await ts('GET', `/device/${router.stableId}?fields=all`)).json as DeviceJson;
    assert.deepEqual(got.tags, ['tag:web']);
    assert.equal(got.user, '');
    assert.equal((await ts('GET', `/device/${router.id}`)).status, 200, 'the numeric id works too');

    assert.equal((await ts('POST', `/device/${router.stableId}/routes`, { body: { routes: ['10.1.0.0/24'] } })).status, 200);
    assert.deepEqual((await ts('GET', `/device/${router.stableId}/routes`)).json, { advertisedRoutes: ['10.1.0.0/24'], enabledRoutes: ['10.1.0.0/24'] });
    assert.deepEqual(tailnet.node(router.id)?.approvedRoutes, ['10.1.0.0/24']);

    assert.equal((await ts('POST', `/device/${router.stableId}/name`, { body: { name: 'edge.tail.example.com' } })).status, 200);
    assert.equal(tailnet.node(router.id)?.givenName, 'edge');

    assert.equal((await ts('POST', `/device/${router.stableId}/tags`, { body: { tags: ['tag:ci'] } })).status, 200);
    assert.deepEqual(tailnet.node(router.id)?.tags, ['tag:ci']);
    const undefinedTag = await ts('POST', `/device/${router.stableId}/tags`, { body: { tags: ['tag:nobody'] } });
    assert.equal(undefinedTag.status, 400);
    assert.match((undefinedTag.json as { message: string }).message, /tag:nobody/);
    const badBody = await ts('POST', `/device/${router.stableId}/tags`, { body: { tags: 'tag:ci' } });
    assert.equal(badBody.status, 400);

    assert.equal((await ts('POST', `/device/${laptop.stableId}/key`, { body: { keyExpiryDisabled: true } })).status, 200);
    assert.equal(tailnet.node(laptop.id)?.keyExpiry, null);
    assert.equal(((await ts('GET', `/device/${laptop.stableId}`)).json as DeviceJson).keyExpiryDisabled, true);

    assert.equal((await ts('POST', `/device/${laptop.stableId}/authorized`, { body: { authorized: true } })).status, 200);
    // De-authorizing withholds the device (device approval's waiting state); authorizing again lets it back.
    assert.equal((await ts('POST', `/device/${laptop.stableId}/authorized`, { body: { authorized: false } })).status, 200);
    assert.equal(tailnet.node(laptop.id)?.approved, false);
    assert.equal(((await ts('GET', `/device/${laptop.stableId}`)).json as DeviceJson).authorized, false);
    assert.equal((await ts('POST', `/device/${laptop.stableId}/authorized`, { body: { authorized: true } })).status, 200);
    assert.equal(tailnet.node(laptop.id)?.approved, true);

    assert.equal((await ts('DELETE', `/device/${router.stableId}`)).status, 200);
    assert.equal(tailnet.node(router.id), undefined);
    assert.equal((await ts('DELETE', `/device/${router.stableId}`)).status, 404);
  });

  it('creates, lists, gets and revokes auth keys as the tailnet_key resource does', async () => {
    const created = await ts('POST', '/tailnet/-/keys', {
      body: { capabilities: { devices: { create: { reusable: true, ephemeral: false, preauthorized: true, tags: ['tag:ci'] } } }, expirySeconds: 3600, description: 'ci runners' },
    });
    assert.equal(created.status, 200, created.text);
    const key = created.json as KeyJson;
    assert.match(key.key ?? '', /^hwkey-auth-/);
    assert.equal(key.description, 'ci runners');
    assert.deepEqual(key.capabilities?.devices.create, { reusable: true, ephemeral: false, preauthorized: true, tags: ['tag:ci'] });
    const expires = Date.parse(key.expires) - Date.parse(key.created);
    assert.ok(expires >= 3_599_000 && expires <= 3_601_000, `expires ${key.expires}`);

    const got = (await ts('GET', `/tailnet/-/keys/${key.id}`)).json as KeyJson;
    assert.equal(got.id, key.id);
    assert.equal(got.key, undefined, 'the secret is never shown again');
    assert.equal(got.invalid, false);
    assert.equal(got.description, 'ci runners', 'the description is kept (the Terraform provider reads it back)');
    assert.ok(((await ts('GET', '/tailnet/-/keys')).json as { keys: KeyJson[] }).keys.some((k) => k.id === key.id));

    const untagged = await ts('POST', '/tailnet/-/keys', { body: { capabilities: { devices: { create: { reusable: false } } } } });
    assert.equal(untagged.status, 400);
    assert.match((untagged.json as { message: string }).message, /tags/);

    assert.equal((await ts('DELETE', `/tailnet/-/keys/${key.id}`)).status, 200);
    const revoked = (await ts('GET', `/tailnet/-/keys/${key.id}`)).json as KeyJson;
    assert.equal(revoked.invalid, true);
    assert.ok(revoked.revoked);
    assert.ok(!((await ts('GET', '/tailnet/-/keys')).json as { keys: KeyJson[] }).keys.some((k) => k.id === key.id), 'revoked keys only with all=true');
    assert.ok(((await ts('GET', '/tailnet/-/keys?all=true')).json as { keys: KeyJson[] }).keys.some((k) => k.id === key.id));
    assert.equal((await ts('GET', '/tailnet/-/keys/nosuchkey')).status, 404);
  });

  it('serves the policy as HuJSON and JSON with an ETag, and honours If-Match and ts-default', async () => {
    const tailnet = await api.state.createTailnet('acl', TEST_ADMIN);
    await tailnet.createUser({ name: 'alice', email: 'alice@example.com' }, TEST_ADMIN);
    // The Terraform provider creates with If-Match "ts-default" so an existing policy is not overwritten.
    const first = await ts('POST', '/tailnet/acl/acl', { body: POLICY, contentType: 'application/hujson', headers: { 'If-Match': '"ts-default"' } });
    assert.equal(first.status, 200, first.text);
    const raw = await ts('GET', '/tailnet/acl/acl', { contentType: 'application/hujson' });
    assert.equal(raw.text, POLICY, 'comments and trailing commas kept');
    assert.match(raw.headers.get('content-type') ?? '', /application\/hujson/);
    const etag = raw.headers.get('etag')!;
    assert.match(etag, /^"[0-9a-f]{64}"$/);
    const asJson = await ts('GET', '/tailnet/acl/acl');
    assert.deepEqual((asJson.json as { tagOwners: unknown }).tagOwners, { 'tag:ci': ['alice@example.com'], 'tag:web': ['alice@example.com'] });
    assert.equal(asJson.headers.get('etag'), etag);

    const again = await ts('POST', '/tailnet/acl/acl', { body: POLICY, contentType: 'application/hujson', headers: { 'If-Match': '"ts-default"' } });
    assert.equal(again.status, 412, 'ts-default fails once a policy is set');
    assert.deepEqual(again.json, { message: 'precondition failed, invalid old hash' });

    const changed = POLICY.replace('tag:web', 'tag:www');
    const stale = await ts('POST', '/tailnet/acl/acl', { body: changed, contentType: 'application/hujson', headers: { 'If-Match': `"${'0'.repeat(64)}"` } });
    assert.equal(stale.status, 412);
    const fresh = await ts('POST', '/tailnet/acl/acl', { body: changed, contentType: 'application/hujson', headers: { 'If-Match': etag } });
    assert.equal(fresh.status, 200, fresh.text);
    assert.equal(tailnet.policyText, changed);
    assert.notEqual(fresh.headers.get('etag'), etag);

    // SetAndGet sends the ACL struct as JSON and reads JSON back.
    const json = await ts('POST', '/tailnet/acl/acl', { body: { acls: [{ action: 'accept', src: ['*'], dst: ['*:22'] }] } });
    assert.equal(json.status, 200);
    assert.deepEqual((json.json as { acls: unknown[] }).acls, [{ action: 'accept', src: ['*'], dst: ['*:22'] }]);

    const invalid = await ts('POST', '/tailnet/acl/acl', { body: '{"acls": [{"action": "maybe"}]}', contentType: 'application/hujson' });
    assert.equal(invalid.status, 400);
    assert.match((invalid.json as { message: string }).message, /action/);

    assert.deepEqual((await ts('POST', '/tailnet/acl/acl/validate', { body: POLICY, contentType: 'application/hujson' })).json, {});
    const verdict = await ts('POST', '/tailnet/acl/acl/validate', { body: '{"acls": [{"action": "accept", "src": ["group:none"], "dst": ["*:*"]}]}', contentType: 'application/hujson' });
    assert.equal(verdict.status, 200);
    assert.match((verdict.json as { message: string }).message, /group:none/);

    const previewPolicy = '{\n  "groups": {"group:eng": ["alice@example.com"]},\n  "acls": [\n    {"action": "accept", "src": ["group:eng"], "dst": ["100.64.0.0/10:22"]},\n    {"action": "accept", "src": ["bob@example.com"], "dst": ["*:443"]}\n  ]\n}';
    const byUser = await ts('POST', '/tailnet/acl/acl/preview?type=user&previewFor=alice@example.com', { body: previewPolicy, contentType: 'application/hujson' });
    assert.equal(byUser.status, 200, byUser.text);
    assert.deepEqual(byUser.json, { matches: [{ users: ['group:eng'], ports: ['100.64.0.0/10:22'], lineNumber: 4 }], type: 'user', previewFor: 'alice@example.com' });
    const byPort = await ts('POST', '/tailnet/acl/acl/preview?type=ipport&previewFor=100.64.0.7:443', { body: previewPolicy, contentType: 'application/hujson' });
    assert.deepEqual((byPort.json as { matches: Array<{ users: string[] }> }).matches.map((m) => m.users), [['bob@example.com']]);
    assert.equal((await ts('POST', '/tailnet/acl/acl/preview?type=user', { body: previewPolicy, contentType: 'application/hujson' })).status, 400);

    // The provider's delete: an empty policy restores the default.
    assert.equal((await ts('POST', '/tailnet/acl/acl', { body: '', contentType: 'application/hujson' })).status, 200);
    assert.equal((await ts('POST', '/tailnet/acl/acl', { body: POLICY, contentType: 'application/hujson', headers: { 'If-Match': '"ts-default"' } })).status, 200);
  });

  it('lists users and reads DNS settings; DNS writes point at the config', async () => {
    const users = ((await ts('GET', '/tailnet/-/users')).json as { users: Array<{ id: string; loginName: string; role: string; deviceCount: number }> }).users;
    const alice = users.find((u) => u.loginName === 'alice@example.com');
    assert.ok(alice);
    assert.equal(alice.deviceCount, 1);
    assert.equal(((await ts('GET', `/users/${alice.id}`)).json as { loginName: string }).loginName, 'alice@example.com');
    assert.equal((await ts('GET', '/users/999999')).status, 404);

    assert.deepEqual((await ts('GET', '/tailnet/-/dns/nameservers')).json, { dns: ['1.1.1.1'], magicDNS: true });
    assert.deepEqual((await ts('GET', '/tailnet/-/dns/searchpaths')).json, { searchPaths: ['corp.example.com'] });
    assert.deepEqual((await ts('GET', '/tailnet/-/dns/split-dns')).json, { 'corp.example.com': ['10.0.0.53'] });
    assert.deepEqual((await ts('GET', '/tailnet/-/dns/preferences')).json, { magicDNS: true });
    const write = await ts('POST', '/tailnet/-/dns/nameservers', { body: { dns: ['8.8.8.8'] } });
    assert.equal(write.status, 501);
    assert.match((write.json as { message: string }).message, /dns\.nameservers\.global/);
    assert.equal(((await ts('GET', '/tailnet/-/settings')).json as { devicesApprovalOn: boolean }).devicesApprovalOn, false);
    // Device approval and auto-update are per tailnet; the rest is server-wide and refused by name.
    assert.equal((await ts('PATCH', '/tailnet/-/settings', { body: { devicesApprovalOn: true, devicesAutoUpdatesOn: true } })).status, 200);
    const settings = (await ts('GET', '/tailnet/-/settings')).json as { devicesApprovalOn: boolean; devicesAutoUpdatesOn: boolean };
    assert.deepEqual([settings.devicesApprovalOn, settings.devicesAutoUpdatesOn], [true, true]);
    const serverWide = await ts('PATCH', '/tailnet/-/settings', { body: { regionalRoutingOn: true } });
    assert.equal(serverWide.status, 501);
    assert.match((serverWide.json as { message: string }).message, /regionalRoutingOn/);
  });

  it('publishes an OpenAPI document of /api/v2 without a key', async () => {
    const doc = (await ts('GET', '/openapi.json', { auth: null })).json as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/tailnet/{tailnet}/devices']?.['get']);
    assert.ok(doc.paths['/tailnet/{tailnet}/acl']?.['post']);
    assert.ok(doc.paths['/device/{deviceId}/routes']?.['post']);
  });
});

forEachDialect('Tailscale API v2: OAuth clients', (open) => {
  let api: TestApi;
  let key: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    const testStore = await open();
    api = await startTestApi(testStore, { config: { policy: { mode: 'database' } } });
    key = await api.createApiKey();
    cleanup = async () => {
      await api.close();
      await testStore.cleanup();
    };
  });
  after(() => cleanup());

  async function call(method: string, path: string, auth: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const res = await fetch(`${api.url}/api/v2${path}`, {
      method,
      headers: { Authorization: auth, ...(body !== undefined ? { 'Content-Type': 'application/json' } : { Accept: 'application/json' }) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
  }

  /** As golang.org/x/oauth2/clientcredentials: form-encoded, credentials as Basic auth (AuthStyleInHeader). */
  async function token(clientId: string, secret: string, scope?: string, style: 'header' | 'params' = 'header'): Promise<{ status: number; json: Record<string, unknown> }> {
    const form = new URLSearchParams({ grant_type: 'client_credentials', ...(scope !== undefined ? { scope } : {}), ...(style === 'params' ? { client_id: clientId, client_secret: secret } : {}) });
    const res = await fetch(`${api.url}/api/v2/oauth/token`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        ...(style === 'header' ? { Authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}` } : {}),
      },
      body: form.toString(),
    });
    return { status: res.status, json: await res.json() as Record<string, unknown> };
  }

  it('creates a client through the keys endpoint, mints scoped tokens, and enforces the scopes', async () => {
    const basic = `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
    const tailnet = api.state.defaultTailnet;
    await addTestNode(tailnet, { hostname: 'box', tags: ['tag:x'] });
    const created = await call('POST', '/tailnet/-/keys', basic, { keyType: 'client', scopes: ['devices:core:read', 'auth_keys'], tags: ['tag:x'], description: 'terraform' });
    assert.equal(created.status, 200, JSON.stringify(created.json));
    const client = created.json as KeyJson;
    assert.equal(client.keyType, 'client');
    assert.deepEqual(client.scopes, ['devices:core:read', 'auth_keys']);
    assert.match(client.key ?? '', /^hwkey-client-/);
    const listed = (await call('GET', '/tailnet/-/keys', basic)).json as { keys: KeyJson[] };
    assert.ok(listed.keys.some((k) => k.id === client.id && k.keyType === 'client' && k.key === undefined));

    const minted = await token(client.id, client.key!);
    assert.equal(minted.status, 200, JSON.stringify(minted.json));
    assert.equal(minted.json['token_type'], 'Bearer');
    assert.equal(minted.json['expires_in'], 3600);
    const bearer = `Bearer ${String(minted.json['access_token'])}`;
    assert.equal((await call('GET', '/tailnet/-/devices', bearer)).status, 200, 'devices:core:read allows reading');
    const device = ((await call('GET', '/tailnet/-/devices', bearer)).json as { devices: DeviceJson[] }).devices[0]!;
    const write = await call('POST', `/device/${device.nodeId}/tags`, bearer, { tags: [] });
    assert.equal(write.status, 403, 'but not writing');
    assert.match((write.json as { message: string }).message, /devices:core/);
    assert.equal((await call('GET', '/tailnet/-/acl', bearer)).status, 403);
    assert.equal((await call('GET', '/tailnet/-/keys', bearer)).status, 200);

    const narrowed = await token(client.id, client.key!, 'auth_keys', 'params');
    assert.equal(narrowed.status, 200);
    assert.equal((await call('GET', '/tailnet/-/devices', `Bearer ${String(narrowed.json['access_token'])}`)).status, 403, 'a token has only the scopes asked for');
    assert.equal((await token(client.id, client.key!, 'policy_file')).status, 400, 'a scope the client lacks is refused');
    const wrong = await token(client.id, 'hwkey-client-wrong');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json['error'], 'invalid_client');

    const other = await api.state.createTailnet('other', TEST_ADMIN);
    assert.ok(other);
    assert.equal((await call('GET', '/tailnet/other/devices', bearer)).status, 403, 'a token is bound to its tailnet');

    assert.equal((await call('DELETE', `/tailnet/-/keys/${client.id}`, basic)).status, 200);
    assert.equal((await call('GET', '/tailnet/-/devices', bearer)).status, 401, 'deleting the client ends its tokens');
    assert.ok((await api.state.listAudit({})).some((e) => e.action === 'oauth_client.create'));
  });
});

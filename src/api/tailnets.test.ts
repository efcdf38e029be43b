// The tailnet endpoints that read and change a tailnet's settings, on both dialects over TCP
// with an API key: what they answer, what they change, what they refuse, and the audit entry.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDialect } from '../store/testing.js';
import { DEFAULT_TAILNET_SETTINGS } from '../model/index.js';
import type { AuditEntryJson, TailnetJson } from './schemas.js';
import type { OwnerTransferJson } from './tailnets.js';
import { startTestApi, type TestApi, type TestRequest } from './testing.js';

forEachDialect('admin API tailnet settings', (open) => {
  let api: TestApi;
  let key: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    const testStore = await open();
    api = await startTestApi(testStore);
    key = await api.createApiKey();
    cleanup = async () => {
      await api.close();
      await testStore.cleanup();
    };
  });
  after(() => cleanup());

  async function call(method: string, path: string, options: TestRequest = {}): Promise<{ status: number; json: unknown; text: string }> {
    return api.request(method, path, { apiKey: key, ...options });
  }

  it('reads a tailnet with its settings, auto-update off by default', async () => {
    const res = await call('GET', '/api/v1/tailnets/default');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual((res.json as TailnetJson).settings, { auto_update: false, device_approval: false });
    const { tailnets } = (await call('GET', '/api/v1/tailnets')).json as { tailnets: TailnetJson[] };
    assert.deepEqual(tailnets[0]!.settings, { auto_update: false, device_approval: false });
  });

  it('changes a setting with PATCH, keeps it across a restart of the state, and audits it', async () => {
    const res = await call('PATCH', '/api/v1/tailnets/default', { body: { settings: { auto_update: true } } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual((res.json as TailnetJson).settings, { auto_update: true, device_approval: false });
    assert.deepEqual(api.state.defaultTailnet.settings, { ...DEFAULT_TAILNET_SETTINGS, autoUpdate: true });
    assert.deepEqual((await api.state.store.read.tailnets.getByName('default'))?.settings, { ...DEFAULT_TAILNET_SETTINGS, autoUpdate: true });
    // An empty settings object changes nothing.
    assert.deepEqual(((await call('PATCH', '/api/v1/tailnets/default', { body: { settings: {} } })).json as TailnetJson).settings, { auto_update: true, device_approval: false });
    const { audit } = (await call('GET', '/api/v1/audit?limit=100')).json as { audit: AuditEntryJson[] };
    const entry = audit.find((e) => e.action === 'tailnet.settings.update');
    assert.ok(entry !== undefined, 'audit entry written');
    assert.match(entry.actor, /^api-key:/);
    assert.deepEqual((entry.details as { after: unknown }).after, { ...DEFAULT_TAILNET_SETTINGS, autoUpdate: true });
    // Device approval is one more key of the same object, changed by the same PATCH.
    const approval = await call('PATCH', '/api/v1/tailnets/default', { body: { settings: { device_approval: true } } });
    assert.equal(approval.status, 200, approval.text);
    assert.deepEqual((approval.json as TailnetJson).settings, { auto_update: true, device_approval: true });
    assert.equal(api.state.defaultTailnet.deviceApproval, true);
  });

  it('refuses an unknown setting, a wrong type and an unknown tailnet, naming what is wrong', async () => {
    const unknown = await call('PATCH', '/api/v1/tailnets/default', { body: { settings: { auto_updates: true } } });
    assert.equal(unknown.status, 400);
    assert.match(unknown.text, /auto_updates/);
    const wrongType = await call('PATCH', '/api/v1/tailnets/default', { body: { settings: { auto_update: 'yes' } } });
    assert.equal(wrongType.status, 400);
    assert.match(wrongType.text, /settings\.auto_update/);
    const missing = await call('PATCH', '/api/v1/tailnets/nope', { body: { settings: { auto_update: true } } });
    assert.equal(missing.status, 404);
    assert.deepEqual(api.state.defaultTailnet.settings, { ...DEFAULT_TAILNET_SETTINGS, autoUpdate: true }, 'nothing changed');
  });
});

forEachDialect('admin API tailnet ownership', (open) => {
  let api: TestApi;
  let key: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    const testStore = await open();
    api = await startTestApi(testStore);
    key = await api.createApiKey();
    cleanup = async () => {
      await api.close();
      await testStore.cleanup();
    };
  });
  after(() => cleanup());

  async function call(method: string, path: string, options: TestRequest = {}): Promise<{ status: number; json: unknown; text: string }> {
    return api.request(method, path, { apiKey: key, ...options });
  }
  const owners = () => [...api.state.defaultTailnet.users()].filter((u) => u.role === 'owner').map((u) => u.name);
  const LOCALPART_EXAMPLE_COM = JSON.stringify({
    tagOwners: { 'tag:server': ['autogroup:owner'] },
    ssh: [{ action: 'accept', src: ['autogroup:member'], dst: ['tag:server'], users: ['localpart:*@example.com'] }],
  });

  it('gives a tailnet without an owner its owner, and transfers it: exactly one owner, the former one an admin', async () => {
    for (const [name, email] of [['alice', 'alice@example.com'], ['bob', 'bob@example.com'], ['olga', 'olga@other.org']]) {
      assert.equal((await call('POST', '/api/v1/users', { body: { name, email } })).status, 201);
    }
    assert.deepEqual(owners(), []);
    const first = await call('PUT', '/api/v1/tailnets/default/owner', { body: { user: 'alice' } });
    assert.equal(first.status, 200, first.text);
    const firstJson = first.json as OwnerTransferJson;
    assert.equal(firstJson.owner.role, 'owner');
    assert.equal(firstJson.previous_owner, null);
    assert.deepEqual(owners(), ['alice']);

    const moved = await call('PUT', '/api/v1/tailnets/default/owner', { body: { user: 'bob' } });
    assert.equal(moved.status, 200, moved.text);
    assert.equal((moved.json as OwnerTransferJson).previous_owner?.name, 'alice');
    assert.deepEqual(owners(), ['bob']);
    assert.equal(api.state.defaultTailnet.userByName('alice')!.role, 'admin');
    assert.equal((await api.state.store.read.users.getByName(api.state.defaultTailnet.id, 'bob'))?.role, 'owner', 'stored');
    const { audit } = (await call('GET', '/api/v1/audit?limit=100')).json as { audit: AuditEntryJson[] };
    const entry = audit.find((e) => e.action === 'tailnet.owner.transfer' && (e.details as { to: { name: string } }).to.name === 'bob');
    assert.deepEqual((entry?.details as { from: { name: string } }).from.name, 'alice');
  });

  it('keeps the owner role out of role changes and keeps the owner from being deleted', async () => {
    const promote = await call('PATCH', '/api/v1/users/alice', { body: { role: 'owner' } });
    assert.equal(promote.status, 400, 'owner is not an assignable role');
    await assert.rejects(api.state.defaultTailnet.updateUser(api.state.defaultTailnet.userByName('alice')!.id, { role: 'owner' }, { name: 'test' }), /HW_STATE_OWNER_BY_TRANSFER|exactly one owner/);
    const demote = await call('PATCH', '/api/v1/users/bob', { body: { role: 'member' } });
    assert.equal(demote.status, 409, demote.text);
    assert.match(demote.text, /HW_STATE_OWNER_BY_TRANSFER/);
    const remove = await call('DELETE', '/api/v1/users/bob');
    assert.equal(remove.status, 409, remove.text);
    await assert.rejects(api.state.defaultTailnet.createUser({ name: 'eve', role: 'owner' }, { name: 'test' }), /exactly one owner/);
    assert.deepEqual(owners(), ['bob']);
  });

  it("checks localpart:*@domain against the owner's domain when a policy is set and when ownership moves", async () => {
    const set = await call('PUT', '/api/v1/policy', { body: { policy: LOCALPART_EXAMPLE_COM } });
    assert.equal(set.status, 200, set.text);
    const otherDomain = await call('PUT', '/api/v1/policy', { body: { policy: LOCALPART_EXAMPLE_COM.replace('example.com', 'other.org') } });
    assert.equal(otherDomain.status, 400, otherDomain.text);
    assert.match(otherDomain.text, /other\.org is not associated with this Tailnet/);

    const refused = await call('PUT', '/api/v1/tailnets/default/owner', { body: { user: 'olga' } });
    assert.equal(refused.status, 409, refused.text);
    assert.match(refused.text, /HW_API_OWNER_DOMAIN/);
    assert.match(refused.text, /example\.com is not associated with this Tailnet/);
    assert.deepEqual(owners(), ['bob'], 'nothing moved');

    // Within the domain it moves; after the policy stops naming the domain, it moves anywhere.
    assert.equal((await call('PUT', '/api/v1/tailnets/default/owner', { body: { user: 'alice' } })).status, 200);
    assert.equal((await call('PUT', '/api/v1/policy', { body: { policy: JSON.stringify({ acls: [{ action: 'accept', src: ['autogroup:owner'], dst: ['*:*'] }] }) } })).status, 200);
    const moved = await call('PUT', '/api/v1/tailnets/default/owner', { body: { user: 'olga' } });
    assert.equal(moved.status, 200, moved.text);
    assert.deepEqual(owners(), ['olga']);
  });

  it('refuses an unknown user or tailnet, naming it', async () => {
    const noUser = await call('PUT', '/api/v1/tailnets/default/owner', { body: { user: 'nobody' } });
    assert.equal(noUser.status, 404);
    assert.match(noUser.text, /nobody/);
    assert.equal((await call('PUT', '/api/v1/tailnets/nope/owner', { body: { user: 'olga' } })).status, 404);
  });

  it('lets only the owner transfer when a user acts for themselves', async () => {
    const tailnet = api.state.defaultTailnet;
    const alice = tailnet.userByName('alice')!;
    const olga = tailnet.userByName('olga')!;
    await assert.rejects(tailnet.transferOwnership(alice.id, { name: `user:${alice.id}` }, { actingUser: alice.id }), /only its owner \(olga\)/);
    const { owner } = await tailnet.transferOwnership(alice.id, { name: `user:${olga.id}` }, { actingUser: olga.id });
    assert.equal(owner.name, 'alice');
  });
});

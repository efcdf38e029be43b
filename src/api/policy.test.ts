// The policy endpoints and the tagOwners rule for tags an admin applies, on a real store.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDialect, openTestStore, type TestStore } from '../store/testing.js';
import type { PolicyCheckJson, PolicyJson } from './policy.js';
import { addTestNode, openTestLogin, startTestApi, TEST_ADMIN, type TestApi } from './testing.js';

interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

const POLICY = `// Headway test policy
{
  "groups": { "group:eng": ["alice@"] },
  "tagOwners": { "tag:web": ["group:eng"], "tag:ci": ["alice@"] },
  "acls": [
    // engineers reach the web servers
    { "action": "accept", "src": ["group:eng"], "dst": ["tag:web:443"] },
  ],
  "tests": [
    { "src": "alice@", "accept": ["tag:web:443"], "deny": ["tag:web:22"] },
  ],
}
`;

const FAILING_TESTS = POLICY.replace('"deny": ["tag:web:22"]', '"deny": ["tag:web:443"]').replace('"accept": ["tag:web:443"], ', '');

forEachDialect('admin API policy', (open) => {
  let api: TestApi;
  let cleanup: () => Promise<void>;

  before(async () => {
    const testStore = await open();
    api = await startTestApi(testStore);
    const tailnet = api.state.defaultTailnet;
    const alice = await tailnet.createUser({ name: 'alice' }, TEST_ADMIN);
    await addTestNode(tailnet, { hostname: 'laptop', userId: alice.id });
    await addTestNode(tailnet, { hostname: 'web', tags: ['tag:web'] });
    cleanup = async () => {
      await api.close();
      await testStore.cleanup();
    };
  });
  after(() => cleanup());

  const call = (method: string, path: string, body?: unknown) => api.request(method, path, { transport: 'unix', body });

  it('stores a valid policy exactly as written, as a new version with its audit entry', async () => {
    const res = await call('PUT', '/api/v1/policy', { policy: POLICY });
    assert.equal(res.status, 200, res.text);
    const stored = res.json as PolicyJson;
    assert.equal(stored.policy, POLICY, 'comments and trailing commas kept');
    assert.equal(stored.mode, 'database');
    assert.equal(stored.version?.author, 'unix-socket');
    assert.equal(api.state.defaultTailnet.policyText, POLICY, 'the tailnet runs it');
    const got = (await call('GET', '/api/v1/policy')).json as PolicyJson;
    assert.deepEqual(got, stored);
    const second = (await call('PUT', '/api/v1/policy', { policy: `${POLICY}\n` })).json as PolicyJson;
    assert.ok(second.version!.id > stored.version!.id, 'every version is kept');
    const audit = await api.state.listAudit({ tailnetId: api.state.defaultTailnet.id });
    assert.equal(audit.filter((e) => e.action === 'policy.set' && e.actor === 'unix-socket').length, 2);
  });

  it('refuses an invalid policy with its line and column, storing nothing', async () => {
    const before = (await call('GET', '/api/v1/policy')).json as PolicyJson;
    const broken = POLICY.replace('"dst": ["tag:web:443"]', '"dst": ["tag:nope:443"]');
    const res = await call('PUT', '/api/v1/policy', { policy: broken });
    assert.equal(res.status, 400);
    const error = (res.json as ErrorBody).error;
    assert.match(error.code, /^HW_POLICY_/);
    assert.match(error.message, /^policy\.hujson:\d+:\d+: /);
    assert.match(error.message, /tag:nope/);
    const syntax = await call('PUT', '/api/v1/policy', { policy: '{ "acls": [ }' });
    assert.equal(syntax.status, 400);
    assert.equal((syntax.json as ErrorBody).error.code, 'HW_POLICY_SYNTAX');
    assert.match((syntax.json as ErrorBody).error.message, /^policy\.hujson:1:\d+: /);
    assert.deepEqual((await call('GET', '/api/v1/policy')).json, before);
  });

  it('refuses a policy whose tests fail against the tailnet', async () => {
    const res = await call('PUT', '/api/v1/policy', { policy: FAILING_TESTS });
    assert.equal(res.status, 400);
    const error = (res.json as ErrorBody).error;
    assert.equal(error.code, 'HW_POLICY_TESTS_FAILED');
    assert.match(error.message, /^policy\.hujson:\d+:\d+: .*expected deny, got accept/);
  });

  it('runs tests about users and tags that have no device yet against stand-ins', async () => {
    const ahead = `{
      "tagOwners": { "tag:web": ["alice@"], "tag:db": ["alice@"] },
      "acls": [{ "action": "accept", "src": ["newcomer@example.com"], "dst": ["tag:db:5432"] }],
      "tests": [{ "src": "newcomer@example.com", "accept": ["tag:db:5432"], "deny": ["tag:web:443"] }],
    }`;
    const res = await call('PUT', '/api/v1/policy', { policy: ahead });
    assert.equal(res.status, 200, res.text);
    const wrong = ahead.replace('"accept": ["tag:db:5432"], "deny": ["tag:web:443"]', '"accept": ["tag:web:443"]');
    const refused = await call('PUT', '/api/v1/policy', { policy: wrong });
    assert.equal(refused.status, 400, 'the stand-ins still catch a failing test');
    assert.equal(api.state.defaultTailnet.nodeCount, 2, 'stand-ins are never real nodes');
    assert.equal((await call('PUT', '/api/v1/policy', { policy: POLICY })).status, 200);
  });

  it('checks a policy without storing it', async () => {
    const before = (await call('GET', '/api/v1/policy')).json as PolicyJson;
    const good = (await call('POST', '/api/v1/policy/check', { policy: POLICY })).json as PolicyCheckJson;
    assert.deepEqual(good, { ok: true, error: null, tests: { total: good.tests!.total, passed: true, failures: [] } });
    assert.ok(good.tests!.total >= 1);
    const failing = (await call('POST', '/api/v1/policy/check', { policy: FAILING_TESTS })).json as PolicyCheckJson;
    assert.equal(failing.ok, false);
    assert.equal(failing.tests?.passed, false);
    assert.match(failing.error!, /expected deny, got accept/);
    const syntax = (await call('POST', '/api/v1/policy/check', { policy: '{' })).json as PolicyCheckJson;
    assert.equal(syntax.ok, false);
    assert.equal(syntax.tests, null);
    assert.deepEqual((await call('GET', '/api/v1/policy')).json, before, 'nothing stored');
  });

  it('accepts only tags defined in tagOwners once the tailnet has a policy', async () => {
    const tailnet = api.state.defaultTailnet;
    const node = await addTestNode(tailnet, { hostname: 'box', userId: tailnet.userByName('alice')!.id });
    const refused = await call('POST', `/api/v1/nodes/${node.id}/tags`, { tags: ['tag:web', 'tag:undefined'] });
    assert.equal(refused.status, 400);
    const error = (refused.json as ErrorBody).error;
    assert.equal(error.code, 'HW_API_TAG_NOT_DEFINED');
    assert.equal(error.field, 'body.tags[1]');
    assert.equal(error.message, `body.tags[1]: "tag:undefined" is not defined in the policy's tagOwners (add it there first)`);
    assert.deepEqual(tailnet.node(node.id)!.tags, [], 'nothing changed');
    assert.equal((await call('POST', `/api/v1/nodes/${node.id}/tags`, { tags: ['tag:web'] })).status, 200);

    const key = await call('POST', '/api/v1/preauthkeys', { tags: ['tag:ci', 'tag:other'] });
    assert.equal(key.status, 400);
    assert.equal((key.json as ErrorBody).error.field, 'body.tags[1]');
    assert.equal((await call('POST', '/api/v1/preauthkeys', { tags: ['tag:ci'] })).status, 201);

    const login = await openTestLogin(api.state, 'tagged-box');
    const register = await call('POST', '/api/v1/nodes/register', { key: login.id, tags: ['tag:nope'] });
    assert.equal(register.status, 400);
    assert.equal((register.json as ErrorBody).error.code, 'HW_API_TAG_NOT_DEFINED');
    assert.equal((await call('POST', '/api/v1/nodes/register', { key: login.id, tags: ['tag:ci'] })).status, 201);
  });
});

describe('admin API policy in file mode', () => {
  let testStore: TestStore;
  let api: TestApi;

  before(async () => {
    testStore = await openTestStore('sqlite');
    api = await startTestApi(testStore, { config: { policy: { mode: 'file', path: '/etc/headway/policy.hujson' } }, policyText: POLICY });
  });
  after(async () => {
    await api.close();
    await testStore.cleanup();
  });

  it('serves the file\'s policy and refuses to replace it', async () => {
    const got = (await api.request('GET', '/api/v1/policy', { transport: 'unix' })).json as PolicyJson;
    assert.deepEqual(got, { tailnet: 'default', mode: 'file', path: '/etc/headway/policy.hujson', policy: POLICY, version: null });
    const res = await api.request('PUT', '/api/v1/policy', { transport: 'unix', body: { policy: POLICY } });
    assert.equal(res.status, 409);
    const error = (res.json as ErrorBody).error;
    assert.equal(error.code, 'HW_API_POLICY_FILE_MODE');
    assert.equal(error.message, 'the policy is managed by the file at /etc/headway/policy.hujson (policy.mode: file); edit that file instead');
  });

  it('still checks a candidate, naming the file in locations', async () => {
    const res = (await api.request('POST', '/api/v1/policy/check', { transport: 'unix', body: { policy: '{ "acls": 1 }' } })).json as PolicyCheckJson;
    assert.equal(res.ok, false);
    assert.match(res.error!, /^\/etc\/headway\/policy\.hujson:1:\d+: /);
  });
});

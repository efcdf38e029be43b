// Console sessions through the real admin API on SQLite and PostgreSQL: sign-in links work
// once and expire, the cookie authenticates, changes need the CSRF token, members see only
// their own devices, idle sessions and signed-out sessions stop working, and every sign-in and
// sign-out is audited. (The browser flow itself is test/e2e/console.test.ts.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addTestNode, startTestApi, type TestApi } from '../api/testing.js';
import { forEachDialect } from '../store/testing.js';
import { SESSION_COOKIE, WebSessions } from './index.js';

interface SessionJson { signed_in: boolean; admin: boolean; user: string | null; csrf_token: string | null; actor: string | null }
interface ErrorJson { error: { code: string; message: string } }

forEachDialect('web console sessions', (open) => {
  let api: TestApi;
  let clock = Date.now();
  let sessions: WebSessions;
  let cleanup: () => Promise<void>;

  const link = async (body: Record<string, unknown> = {}): Promise<string> => {
    const res = await api.request('POST', '/api/v1/console/login-links', { transport: 'unix', body });
    assert.equal(res.status, 201, res.text);
    const url = new URL((res.json as { url: string }).url);
    return url.searchParams.get('token')!;
  };
  const signIn = async (body: Record<string, unknown> = {}): Promise<{ cookie: string; csrf: string }> => {
    const { token } = await sessions.redeemLoginLink(await link(body), '127.0.0.1');
    const cookie = `${SESSION_COOKIE}=${token}`;
    const who = (await api.request('GET', '/api/v1/session', { headers: { cookie } })).json as SessionJson;
    return { cookie, csrf: who.csrf_token! };
  };

  before(async () => {
    const testStore = await open();
    api = await startTestApi(testStore, { now: () => clock });
    sessions = new WebSessions(api.state, { now: () => clock });
    cleanup = async () => {
      await api.close();
      await testStore.cleanup();
    };
    const tailnet = api.state.requireTailnet('default');
    const alice = await tailnet.createUser({ name: 'alice' }, { name: 'test' });
    const bob = await tailnet.createUser({ name: 'bob' }, { name: 'test' });
    await addTestNode(tailnet, { hostname: 'alice-laptop', userId: alice.id });
    await addTestNode(tailnet, { hostname: 'bob-laptop', userId: bob.id });
  });
  after(() => cleanup());

  it('a sign-in link works once', async () => {
    const token = await link();
    const first = await sessions.redeemLoginLink(token, '127.0.0.1');
    assert.ok(first.token.length >= 40);
    await assert.rejects(sessions.redeemLoginLink(token, '127.0.0.1'), { code: 'HW_WEBSESSION_LINK_INVALID', message: /already used/ });
  });

  it('a sign-in link expires', async () => {
    const token = await link({ ttl: '1m' });
    clock += 61_000;
    await assert.rejects(sessions.redeemLoginLink(token, '127.0.0.1'), { code: 'HW_WEBSESSION_LINK_INVALID', message: /expired/ });
  });

  it('the session cookie authenticates reads and reports a CSRF token', async () => {
    const { cookie, csrf } = await signIn();
    const who = (await api.request('GET', '/api/v1/session', { headers: { cookie } })).json as SessionJson;
    assert.deepEqual([who.signed_in, who.admin, who.actor], [true, true, 'console:operator']);
    assert.equal(csrf.length, 43);
    const nodes = await api.request('GET', '/api/v1/nodes', { headers: { cookie } });
    assert.equal(nodes.status, 200);
    assert.equal((nodes.json as { nodes: unknown[] }).nodes.length, 2);
  });

  it('refuses a change without the CSRF token, and accepts it with the token', async () => {
    const { cookie, csrf } = await signIn();
    const refused = await api.request('POST', '/api/v1/users', { headers: { cookie }, body: { name: 'carol' } });
    assert.equal(refused.status, 403);
    assert.equal((refused.json as ErrorJson).error.code, 'HW_WEBSESSION_CSRF');
    const wrong = await api.request('POST', '/api/v1/users', { headers: { cookie, 'x-csrf-token': `${csrf.slice(1)}x` }, body: { name: 'carol' } });
    assert.equal(wrong.status, 403);
    assert.equal([...api.state.requireTailnet('default').users()].some((u) => u.name === 'carol'), false);
    const ok = await api.request('POST', '/api/v1/users', { headers: { cookie, 'x-csrf-token': csrf }, body: { name: 'carol' } });
    assert.equal(ok.status, 201, ok.text);
    const audit = (await api.request('GET', '/api/v1/audit?q=carol', { transport: 'unix' })).json as { audit: Array<{ actor: string; action: string; from: string | null }> };
    assert.equal(audit.audit[0]!.actor, 'console:operator');
    assert.equal(audit.audit[0]!.from, '127.0.0.1', 'a console change records the browser\'s address');
  });

  it('records from where every admin change came: socket, API key, console; searchable', async () => {
    const overSocket = await api.request('POST', '/api/v1/users', { transport: 'unix', body: { name: 'dave-local' } });
    assert.equal(overSocket.status, 201, overSocket.text);
    const key = await api.createApiKey();
    const overTcp = await api.request('POST', '/api/v1/users', { apiKey: key, body: { name: 'erin-remote' } });
    assert.equal(overTcp.status, 201, overTcp.text);
    type Entries = { audit: Array<{ actor: string; action: string; target: string; from: string | null }> };
    const local = (await api.request('GET', '/api/v1/audit?q=local', { transport: 'unix' })).json as Entries;
    const dave = local.audit.find((e) => e.action === 'user.create' && e.actor === 'unix-socket');
    assert.ok(dave !== undefined, 'searching for "local" finds the change made over the admin socket');
    assert.equal(dave.from, 'local');
    assert.ok(!local.audit.some((e) => e.actor.startsWith('api-key:') && e.action === 'user.create'), 'the API key\'s change was not local');
    const remote = (await api.request('GET', `/api/v1/audit?q=${encodeURIComponent('127.0.0.1')}`, { transport: 'unix' })).json as Entries;
    const erin = remote.audit.find((e) => e.action === 'user.create' && e.actor.startsWith('api-key:'));
    assert.equal(erin?.from, '127.0.0.1', 'an API key\'s change records the client address');
  });

  it('a member sees only their own devices and may change nothing', async () => {
    const { cookie, csrf } = await signIn({ user: 'alice' });
    const who = (await api.request('GET', '/api/v1/session', { headers: { cookie } })).json as SessionJson;
    assert.deepEqual([who.admin, who.user], [false, 'alice']);
    const nodes = (await api.request('GET', '/api/v1/nodes', { headers: { cookie } })).json as { nodes: Array<{ hostname: string }> };
    assert.deepEqual(nodes.nodes.map((n) => n.hostname), ['alice-laptop']);
    const bobs = await api.request('GET', '/api/v1/nodes/bob-laptop', { headers: { cookie } });
    assert.equal(bobs.status, 404);
    for (const [method, path] of [['GET', '/api/v1/users'], ['GET', '/api/v1/audit'], ['DELETE', '/api/v1/nodes/bob-laptop']] as const) {
      const res = await api.request(method, path, { headers: { cookie, 'x-csrf-token': csrf } });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal((res.json as ErrorJson).error.code, 'HW_WEBSESSION_FORBIDDEN');
    }
  });

  it('a console session cannot mint sign-in links', async () => {
    const { cookie, csrf } = await signIn();
    const res = await api.request('POST', '/api/v1/console/login-links', { headers: { cookie, 'x-csrf-token': csrf }, body: {} });
    assert.equal(res.status, 403);
  });

  it('an idle session ends', async () => {
    const { cookie } = await signIn();
    clock += sessions.idleTimeoutMs + 1_000;
    const res = await api.request('GET', '/api/v1/nodes', { headers: { cookie } });
    assert.equal(res.status, 401);
    assert.equal((res.json as ErrorJson).error.code, 'HW_WEBSESSION_INVALID');
    assert.match((res.json as ErrorJson).error.message, /idle/);
  });

  it('sign-out ends the session, clears the cookie and is audited', async () => {
    const { cookie, csrf } = await signIn();
    const out = await api.request('DELETE', '/api/v1/session', { headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(out.status, 200);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
    const after = await api.request('GET', '/api/v1/nodes', { headers: { cookie } });
    assert.equal(after.status, 401);
    const audit = (await api.request('GET', '/api/v1/audit', { transport: 'unix' })).json as { audit: Array<{ action: string }> };
    const actions = audit.audit.map((e) => e.action);
    assert.ok(actions.includes('console.sign_out') && actions.includes('console.sign_in') && actions.includes('console.login_link.create'));
  });

  it('stores only hashes of session tokens', async () => {
    const { cookie } = await signIn();
    const token = cookie.split('=')[1]!;
    const rows = await api.state.store.read.consoleSessions.findSession(token);
    assert.equal(rows, undefined, 'the token itself is not a key of the table');
  });

  describe('without a session', () => {
    it('GET /session says nobody is signed in; sign-in options report no OIDC', async () => {
      const who = (await api.request('GET', '/api/v1/session')).json as SessionJson;
      assert.deepEqual([who.signed_in, who.csrf_token], [false, null]);
      const options = (await api.request('GET', '/api/v1/signin-options')).json as { oidc: boolean; login_link: boolean };
      assert.deepEqual([options.oidc, options.login_link], [false, true]);
    });
  });
});

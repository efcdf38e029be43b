// High availability, sign-ins in flight (docs/ha.md): every instance has the same server_url (the
// load balancer's), and the browser's requests to it are routed by the test to the instance it
// picks, as a round robin would. A sign-in started on instance 1 completes when the provider's
// callback reaches instance 2, a link made on one instance opens on another, an SSH check's
// re-authentication completed elsewhere reaches the check waiting on instance 1, and a replayed
// or forged callback is refused on every instance. The database holds no state or nonce in clear,
// and an instance that cannot reach it answers a sign-in with a page that says so.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createApiHandler } from '../../src/api/index.js';
import { NodeClient } from '../../src/client/index.js';
import { startTestCluster, waitUntil, type TestCluster } from '../../src/ha/testing.js';
import { startTestProvider, TestBrowser, type TestProvider } from '../../src/identity/testing.js';
import type { RunningServer } from '../../src/server/index.js';
import { freePort, withFreePorts } from '../support/free-port.js';
import { CHECK_POLICY, CHECK_URL, fetchSshAction } from '../support/ssh-action.js';

const admin = { name: 'test' };

/**
 * The load balancer's choices: requests to server_url that start a sign-in go to `start`, the
 * provider's callback to `callback`. Every callback URL followed is kept in `callbacks`.
 */
function balance(lb: string, route: { start: RunningServer; callback: RunningServer }) {
  const callbacks: URL[] = [];
  const tamper = (url: URL): URL | null => {
    if (url.origin !== new URL(lb).origin) return null;
    const to = url.pathname === '/oidc/callback' ? route.callback : route.start;
    const routed = new URL(`${url.pathname}${url.search}`, to.url);
    if (url.pathname === '/oidc/callback') callbacks.push(routed);
    return routed;
  };
  return { tamper, callbacks };
}

describe('high availability: sign-ins in flight shared by three instances behind one server_url', () => {
  let lb: string;
  let idp: TestProvider;
  let cluster: TestCluster;
  let one: RunningServer;
  let two: RunningServer;
  let three: RunningServer;

  before(async () => {
    // Nothing listens here: the test is the load balancer.
    lb = `http://127.0.0.1:${await freePort()}`;
    idp = await startTestProvider({
      redirectUris: () => [`${lb}/oidc/callback`],
      accounts: { ann: { email: 'ann@example.com' }, bob: { email: 'bob@example.com' }, cat: { email: 'cat@example.com' } },
    });
    cluster = await withFreePorts(3, (ports) => startTestCluster(3, {
      config: {
        server_url: lb,
        oidc: { issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret, scope: ['openid', 'profile', 'email'] },
      },
      // A port of its own (with port 0 an instance takes its bound URL as server_url).
      perInstance: (i) => ({ listen_addr: `127.0.0.1:${ports[i]}` }),
      start: { api: createApiHandler },
    }));
    [one, two, three] = cluster.instances as [RunningServer, RunningServer, RunningServer];
  });
  after(async () => {
    // Either is unset when before() failed; what did start must still stop, or the open
    // provider keeps this test file's process (and the run) from ending.
    await (cluster as TestCluster | undefined)?.cleanup();
    await (idp as TestProvider | undefined)?.stop();
  });

  it('registers a device whose sign-in started on instance 1 when the callback reaches instance 2', async () => {
    const device = new NodeClient({ serverUrl: one.url, hostname: 'ann-laptop', capVersion: 130 });
    // The same machine, its follow-up balanced to instance 3.
    const viaThree = new NodeClient({ serverUrl: three.url, hostname: 'ann-laptop', capVersion: 130, machineKey: device.machineKey, nodeKey: device.nodeKey });
    try {
      const first = await device.register({});
      assert.ok(first.AuthURL.startsWith(`${lb}/register/`), first.AuthURL);
      const followup = viaThree.register({ followup: first.AuthURL });
      const route = balance(lb, { start: one, callback: two });
      const page = await new TestBrowser().signIn(first.AuthURL, 'ann', { tamper: route.tamper });
      assert.equal(page.status, 200, page.body);
      assert.match(page.body, /Signed in as <b>ann@example\.com<\/b>\. The device <b>ann-laptop<\/b> is registered/);
      assert.equal(new URL(page.url).port, new URL(two.url).port, 'the callback was answered by instance 2');
      const done = await followup;
      assert.equal(done.MachineAuthorized, true);
      assert.equal(done.Login.LoginName, 'ann@example.com');
      for (const server of cluster.instances) {
        await waitUntil('the node on every instance', () => [...server.state.defaultTailnet.nodes()].filter((n) => n.hostname === 'ann-laptop').length === 1);
      }
    } finally {
      await device.close();
      await viaThree.close();
    }
  });

  it('signs a browser in to the console through instance 1 with the callback on instance 2; the session works on instance 3', async () => {
    const browser = new TestBrowser();
    const route = balance(lb, { start: one, callback: two });
    const landed = await browser.signIn(`${lb}/oidc/console/login?next=/admin/`, 'bob', { tamper: route.tamper });
    assert.equal(landed.url, `${two.url}/admin/`, 'sent on to the console by instance 2');
    const session = await browser.get(`${three.url}/api/v1/session`);
    assert.equal(session.status, 200, session.body);
    const who = JSON.parse(session.body) as { kind: string; user: string };
    assert.deepEqual([who.kind, who.user], ['session', 'bob']);
  });

  it('opens on instance 3 a console link made on instance 1, and completes it on instance 2', async () => {
    const link = await one.signIn!.browserLink('/admin/');
    assert.ok(link.startsWith(`${lb}/oidc/start/`), link);
    const browser = new TestBrowser();
    const route = balance(lb, { start: three, callback: two });
    const landed = await browser.signIn(link, 'bob', { tamper: route.tamper });
    assert.equal(landed.url, `${two.url}/admin/`);
    assert.equal(JSON.parse((await browser.get(`${one.url}/api/v1/session`)).body).user, 'bob');
    // The link was used up: opening it again, anywhere, is refused.
    for (const server of cluster.instances) {
      const again = await new TestBrowser().get(`${server.url}${new URL(link).pathname}`);
      assert.equal(again.status, 400);
      assert.match(again.body, /this sign-in link is unknown or expired/);
    }
  });

  it('refuses a replayed or forged callback on every instance, and keeps no state or nonce in clear', async () => {
    const browser = new TestBrowser();
    const route = balance(lb, { start: one, callback: two });
    // A sign-in waiting at the provider: the database has its record, sealed and keyed by a hash.
    const atProvider = await browser.get(`${one.url}/oidc/console/login?next=/admin/`);
    assert.equal(atProvider.status, 302);
    const authorization = new URL(atProvider.location!);
    const state = authorization.searchParams.get('state')!;
    const nonce = authorization.searchParams.get('nonce')!;
    const db = new pg.Client({ connectionString: cluster.database.database.type === 'postgres' ? cluster.database.database.postgres.url ?? undefined : undefined });
    await db.connect();
    try {
      const rows = (await db.query<{ kind: string; key: string; body: string }>('select kind, key, body from ha_sign_ins')).rows;
      assert.ok(rows.some((row) => row.kind === 'flight'), JSON.stringify(rows.map((row) => row.kind)));
      for (const row of rows) {
        assert.ok(row.key !== state && !row.body.includes(nonce) && !row.body.includes(state), 'no state or nonce in clear');
        assert.ok(!Buffer.from(row.body, 'base64').toString('latin1').includes(nonce), 'the body is sealed, not only encoded');
      }
    } finally {
      await db.end();
    }

    const landed = await browser.signIn(`${lb}/oidc/console/login?next=/admin/`, 'cat', { tamper: route.tamper });
    assert.equal(landed.url, `${two.url}/admin/`);
    const used = route.callbacks.at(-1)!;
    const cookie = `hw_oidc_${used.searchParams.get('state')!.slice(0, 16)}=${used.searchParams.get('state')!}`;
    for (const server of cluster.instances) {
      const replayed = await fetch(new URL(`${used.pathname}${used.search}`, server.url), { headers: { cookie }, redirect: 'manual' });
      assert.equal(replayed.status, 400, `replay on ${server.url}`);
      assert.match(await replayed.text(), /the sign-in state is unknown, expired or already used/);
      const forged = new URL(`${used.pathname}${used.search}`, server.url);
      forged.searchParams.set('state', 'forged-state-0123456789');
      const refused = await fetch(forged, { headers: { cookie: 'hw_oidc_forged-state-012=forged-state-0123456789' }, redirect: 'manual' });
      assert.equal(refused.status, 400);
      assert.match(await refused.text(), /HW_IDENTITY_STATE_MISMATCH/);
    }
  });

  it('settles on instance 1 an SSH check whose re-authentication link opened on instance 3 and completed on instance 2', async () => {
    const laptop = new NodeClient({ serverUrl: one.url, hostname: 'cat-laptop', capVersion: 130 });
    const sshd = new NodeClient({ serverUrl: one.url, hostname: 'db', capVersion: 130 });
    try {
      await one.state.defaultTailnet.setPolicy(CHECK_POLICY, admin, { persist: true });
      const first = await laptop.register({});
      const followup = laptop.register({ followup: first.AuthURL });
      assert.equal((await new TestBrowser().signIn(first.AuthURL, 'cat', { tamper: balance(lb, { start: two, callback: three }).tamper })).status, 200);
      assert.equal((await followup).MachineAuthorized, true);
      await waitUntil('instance 1 has the laptop', () => one.state.nodeByKey(laptop.nodePublicKey) !== undefined);
      const src = one.state.nodeByKey(laptop.nodePublicKey)!.node.id;
      const key = await one.state.createPreAuthKey(one.state.defaultTailnet, { userId: null, reusable: false, ephemeral: false, tags: ['tag:server'], expiresAt: null }, admin);
      await sshd.loginWithAuthKey(key.secret);
      const dst = one.state.nodeByKey(sshd.nodePublicKey)!.node.id;

      // Signed in again as someone else: refused on instance 2, the refusal reaches instance 1.
      const wrong = await fetchSshAction(sshd, CHECK_URL, src, dst);
      const wrongLink = /visit: (\S+)/.exec(wrong.message ?? '')?.[1];
      assert.ok(wrongLink?.startsWith(`${lb}/oidc/start/`), wrong.message);
      const refusedHeld = fetchSshAction(sshd, wrong.holdAndDelegate!, src, dst);
      const refusedPage = await new TestBrowser().signIn(wrongLink!, 'bob', { tamper: balance(lb, { start: three, callback: two }).tamper });
      assert.equal(refusedPage.status, 403, refusedPage.body);
      const refused = await refusedHeld;
      assert.equal(refused.reject, true);
      assert.match(refused.message ?? '', /HW_IDENTITY_REAUTH_MISMATCH/);

      // The right user: the check held on instance 1 accepts.
      const asked = await fetchSshAction(sshd, CHECK_URL, src, dst);
      const link = /visit: (\S+)/.exec(asked.message ?? '')?.[1];
      const held = fetchSshAction(sshd, asked.holdAndDelegate!, src, dst);
      const page = await new TestBrowser().signIn(link!, 'cat', { tamper: balance(lb, { start: three, callback: two }).tamper });
      assert.equal(page.status, 200, page.body);
      assert.match(page.body, /Signed in again as <b>cat@example\.com<\/b>/);
      const accepted = await held;
      assert.equal(accepted.accept, true, JSON.stringify(accepted));
    } finally {
      await laptop.close();
      await sshd.close();
    }
  });

  // Last: it leaves instance 3 without its database.
  it('answers a sign-in an instance cannot keep (its store is gone) with a page that says so', async () => {
    const browser = new TestBrowser();
    const atProvider = await browser.get(`${one.url}/oidc/console/login?next=/admin/`);
    const state = new URL(atProvider.location!).searchParams.get('state')!;
    await three.state.store.close();
    const started = await browser.get(`${three.url}/oidc/console/login?next=/admin/`);
    assert.equal(started.status, 503, started.body);
    assert.match(started.body, /Sign-in failed.*HW_STORE_CLOSED/s);
    const callback = await fetch(`${three.url}/oidc/callback?code=x&state=${state}`, { headers: { cookie: `hw_oidc_${state.slice(0, 16)}=${state}` } });
    assert.equal(callback.status, 503);
    assert.match(await callback.text(), /HW_STORE_CLOSED/);
    // The other instances still serve sign-ins.
    assert.equal((await new TestBrowser().get(`${two.url}/oidc/console/login?next=/admin/`)).status, 302);
  });
});

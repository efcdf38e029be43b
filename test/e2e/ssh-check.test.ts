// SSH check mode end to end: a `check` rule reaches the SSH server as a hold-and-delegate action;
// the server (our protocol client, asking as tailssh does over its Noise connection) gets a
// message with a sign-in URL, the source user signs in again at the test OpenID provider, and
// the held follow-up answers accept. Someone else signing in is rejected, a second login within
// checkPeriod needs no sign-in, only the destination machine may ask, and without a provider
// the check is rejected with a message that says why.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { startTestProvider, TestBrowser, type TestAccount } from '../../src/identity/testing.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';
import type * as tailcfg from '../../src/tailcfg/index.js';

const admin = { name: 'test' };
const CHECK_URL = 'https://unused/machine/ssh/action/$SRC_NODE_ID/to/$DST_NODE_ID?local_user=$LOCAL_USER';

async function withProvider(accounts: Record<string, TestAccount>) {
  let callback = 'http://127.0.0.1:1/oidc/callback';
  const idp = await startTestProvider({ redirectUris: () => [callback], accounts });
  const ts = await startTestServer({
    config: { oidc: { issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret, scope: ['openid', 'profile', 'email'] } },
  });
  callback = `${ts.server.serverUrl}/oidc/callback`;
  await idp.stop();
  await idp.start();
  return { idp, ts };
}

/** Logs a device in through the provider as `account`; returns its node id. */
async function signInDevice(ts: TestServer, client: NodeClient, account: string): Promise<number> {
  const first = await client.register({});
  const followup = client.register({ followup: first.AuthURL });
  assert.equal((await new TestBrowser().signIn(first.AuthURL, account)).status, 200);
  assert.equal((await followup).MachineAuthorized, true);
  return ts.server.state.nodeByKey(client.nodePublicKey)!.node.id;
}

/** What tailssh does with a hold-and-delegate URL: expand the variables, GET it over Noise. */
async function fetchAction(client: NodeClient, url: string, vars: { src: number; dst: number; localUser: string }): Promise<tailcfg.SSHAction> {
  const expanded = url
    .replaceAll('$SRC_NODE_ID', String(vars.src))
    .replaceAll('$DST_NODE_ID', String(vars.dst))
    .replaceAll('$LOCAL_USER', encodeURIComponent(vars.localUser));
  const target = new URL(expanded);
  const res = await (await client.control()).request(`${target.pathname}${target.search}`);
  assert.equal(res.status, 200, res.body.toString());
  return res.json as tailcfg.SSHAction;
}

function signInUrlOf(action: tailcfg.SSHAction): string {
  const m = /visit: (\S+)/.exec(action.message ?? '');
  assert.ok(m !== null, `the message carries the sign-in URL: ${action.message}`);
  return m[1]!;
}

const POLICY = {
  tagOwners: { 'tag:server': ['autogroup:admin'] },
  acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }],
  ssh: [{ action: 'check', src: ['autogroup:member'], dst: ['tag:server'], users: ['root'], checkPeriod: '1h' }],
};

describe('SSH check mode', () => {
  it('holds the login until the source user signs in again; rejects someone else; no second sign-in within checkPeriod', async () => {
    const { idp, ts } = await withProvider({ ann: { email: 'ann@example.com' }, carl: { email: 'carl@example.com' }, boss: { email: 'boss@example.com' } });
    await ts.defaultTailnet.setPolicy(JSON.stringify(POLICY), admin, { persist: true });
    const laptop = new NodeClient({ serverUrl: ts.server.url, hostname: 'ann-laptop', capVersion: 130 });
    const carlPc = new NodeClient({ serverUrl: ts.server.url, hostname: 'carl-pc', capVersion: 130 });
    const server = new NodeClient({ serverUrl: ts.server.url, hostname: 'db', capVersion: 130 });
    try {
      const annNode = await signInDevice(ts, laptop, 'ann');
      const carlNode = await signInDevice(ts, carlPc, 'carl');
      await server.loginWithAuthKey(await ts.authKey(null, { tags: ['tag:server'] }));
      const dst = ts.server.state.nodeByKey(server.nodePublicKey)!.node;
      const annIp = ts.server.state.nodeByKey(laptop.nodePublicKey)!.node.ipv4!;

      // 1. The SSH server's rule for ann's laptop is a check: hold and delegate to Headway.
      await server.startMap();
      await server.waitFor('a check rule for ann', (nm) => (nm.sshPolicy?.rules ?? []).some((r) => r.principals.some((p) => p.nodeIP === annIp)));
      const rule = (server.netmap.sshPolicy?.rules ?? []).find((r) => r.principals.some((p) => p.nodeIP === annIp))!;
      assert.deepEqual(rule.action, { holdAndDelegate: CHECK_URL });
      assert.deepEqual(rule.sshUsers, { root: 'root' });

      // 2. The first answer: a message with the sign-in URL, and a follow-up to hold on.
      const first = await fetchAction(server, rule.action.holdAndDelegate!, { src: annNode, dst: dst.id, localUser: 'root' });
      assert.equal(first.accept, undefined);
      assert.equal(first.reject, undefined);
      assert.match(first.holdAndDelegate ?? '', /^https:\/\/unused\/machine\/ssh\/action\/\d+\/to\/\d+\?local_user=root&auth_id=[\w-]+$/);
      const signInUrl = signInUrlOf(first);
      assert.ok(signInUrl.startsWith(`${ts.server.serverUrl}/oidc/start/`), signInUrl);

      // 3. The follow-up waits for the sign-in; ann signs in; the login is accepted.
      let settled = false;
      const held = fetchAction(server, first.holdAndDelegate!, { src: annNode, dst: dst.id, localUser: 'root' }).finally(() => { settled = true; });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(settled, false, 'the follow-up is held until the user signs in');
      assert.equal((await new TestBrowser().signIn(signInUrl, 'ann')).status, 200);
      const accepted = await held;
      assert.equal(accepted.accept, true);
      assert.equal(accepted.reject, undefined);

      // 4. Within checkPeriod: accepted at once, no sign-in.
      const again = await fetchAction(server, rule.action.holdAndDelegate!, { src: annNode, dst: dst.id, localUser: 'root' });
      assert.deepEqual([again.accept, again.message, again.holdAndDelegate], [true, undefined, undefined]);

      // 5. Carl's login, but boss signs in: rejected, and saying why.
      const carlFirst = await fetchAction(server, CHECK_URL, { src: carlNode, dst: dst.id, localUser: 'root' });
      const carlHeld = fetchAction(server, carlFirst.holdAndDelegate!, { src: carlNode, dst: dst.id, localUser: 'root' });
      const wrongPage = await new TestBrowser().signIn(signInUrlOf(carlFirst), 'boss');
      assert.equal(wrongPage.status, 403);
      const rejected = await carlHeld;
      assert.equal(rejected.reject, true);
      assert.equal(rejected.accept, undefined);
      assert.match(rejected.message ?? '', /HW_IDENTITY_REAUTH_MISMATCH/);
      // The follow-up is single use, and carl still has to sign in.
      assert.equal((await fetchAction(server, carlFirst.holdAndDelegate!, { src: carlNode, dst: dst.id, localUser: 'root' })).reject, true);
      assert.ok((await fetchAction(server, CHECK_URL, { src: carlNode, dst: dst.id, localUser: 'root' })).holdAndDelegate !== undefined);

      // 6. Only the destination may ask; a user the rule does not name is no check.
      const fromLaptop = await fetchAction(laptop, CHECK_URL, { src: annNode, dst: dst.id, localUser: 'root' });
      assert.equal(fromLaptop.reject, true);
      assert.match(fromLaptop.message ?? '', /not the destination/);
      const otherUser = await fetchAction(server, CHECK_URL, { src: annNode, dst: dst.id, localUser: 'postgres' });
      assert.equal(otherUser.reject, true);
    } finally {
      await laptop.close();
      await carlPc.close();
      await server.close();
      await ts.cleanup();
      await idp.stop();
    }
  });

  it('asks again once checkPeriod has passed ("always": at every login)', async () => {
    const { idp, ts } = await withProvider({ ann: { email: 'ann@example.com' } });
    await ts.defaultTailnet.setPolicy(JSON.stringify({ ...POLICY, ssh: [{ ...POLICY.ssh[0], checkPeriod: 'always' }] }), admin, { persist: true });
    const laptop = new NodeClient({ serverUrl: ts.server.url, hostname: 'ann-laptop', capVersion: 130 });
    const server = new NodeClient({ serverUrl: ts.server.url, hostname: 'db', capVersion: 130 });
    try {
      const annNode = await signInDevice(ts, laptop, 'ann');
      await server.loginWithAuthKey(await ts.authKey(null, { tags: ['tag:server'] }));
      const dst = ts.server.state.nodeByKey(server.nodePublicKey)!.node.id;
      const vars = { src: annNode, dst, localUser: 'root' };
      const first = await fetchAction(server, CHECK_URL, vars);
      const held = fetchAction(server, first.holdAndDelegate!, vars);
      assert.equal((await new TestBrowser().signIn(signInUrlOf(first), 'ann')).status, 200);
      assert.equal((await held).accept, true);
      const second = await fetchAction(server, CHECK_URL, vars);
      assert.equal(second.accept, undefined, 'checkPeriod "always": a new sign-in');
      signInUrlOf(second);
    } finally {
      await laptop.close();
      await server.close();
      await ts.cleanup();
      await idp.stop();
    }
  });

  it('rejects a check with a message that says why when no identity provider is configured', async () => {
    const ts = await startTestServer();
    const ann = await ts.createUser('ann');
    await ts.defaultTailnet.setPolicy(JSON.stringify(POLICY), admin, { persist: true });
    const laptop = new NodeClient({ serverUrl: ts.server.url, hostname: 'ann-laptop', capVersion: 130 });
    const server = new NodeClient({ serverUrl: ts.server.url, hostname: 'db', capVersion: 130 });
    try {
      await laptop.loginWithAuthKey(await ts.authKey(ann));
      await server.loginWithAuthKey(await ts.authKey(null, { tags: ['tag:server'] }));
      const src = ts.server.state.nodeByKey(laptop.nodePublicKey)!.node.id;
      const dst = ts.server.state.nodeByKey(server.nodePublicKey)!.node.id;
      const action = await fetchAction(server, CHECK_URL, { src, dst, localUser: 'root' });
      assert.equal(action.reject, true);
      assert.equal(action.holdAndDelegate, undefined);
      assert.match(action.message ?? '', /identity provider/);
    } finally {
      await laptop.close();
      await server.close();
      await ts.cleanup();
    }
  });
});

// Sign-in through a real OpenID Connect provider (oidc-provider on a loopback port, accounts and
// groups defined here): a device's interactive login completes through the provider's login and
// consent pages, the node belongs to the provisioned user, the provider's groups drive the
// policy (and a group removed at the next sign-in takes the flow away), re-authentication keeps
// the node's addresses and name, every refusal leaves nothing behind, the server starts while the
// provider is down, and the browser sign-in reaches the console's hook with the user's role.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { publicJwk, startTestProvider, TestBrowser, type TestAccount } from '../../src/identity/testing.js';
import type { BrowserSignIn } from '../../src/identity/index.js';
import { createApiHandler } from '../../src/api/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';

const admin = { name: 'test' };

async function withProvider(accounts: Record<string, TestAccount>, oidc: Record<string, unknown>, options: { start?: Record<string, unknown>; config?: Record<string, unknown>; withApi?: boolean } = {}) {
  let callback = 'http://127.0.0.1:1/oidc/callback';
  const idp = await startTestProvider({ redirectUris: () => [callback], accounts });
  const ts = await startTestServer({
    config: { ...options.config, oidc: { issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret, scope: ['openid', 'profile', 'email', 'groups'], ...oidc } },
    ...(options.start !== undefined ? { start: options.start } : {}),
    ...(options.withApi === true ? { api: createApiHandler } : {}),
  });
  // The provider learns Headway's callback URL now that the server has its port.
  callback = `${ts.server.serverUrl}/oidc/callback`;
  await idp.stop();
  await idp.start();
  return { idp, ts };
}

/** A device without a key asks to log in; returns its AuthURL and the pending followup. */
async function interactiveLogin(client: NodeClient, oldNodeKey?: string) {
  const first = await client.register(oldNodeKey !== undefined ? { oldNodeKey: oldNodeKey as never } : {});
  assert.match(first.AuthURL, /\/register\/[A-Za-z0-9_-]+$/);
  const followup = client.register({ followup: first.AuthURL, ...(oldNodeKey !== undefined ? { oldNodeKey: oldNodeKey as never } : {}) });
  return { authUrl: first.AuthURL, id: first.AuthURL.split('/').pop()!, followup };
}

function userCount(ts: TestServer): number {
  return [...ts.defaultTailnet.users()].length;
}

describe('sign-in through an OpenID Connect provider', () => {
  it('registers a device to the provisioned user; the provider\'s groups drive the policy and follow each sign-in', async () => {
    const seen: BrowserSignIn[] = [];
    const { idp, ts } = await withProvider({
      ann: { email: 'ann@example.com', name: 'Ann Example', picture: 'https://img.example.com/ann.png', groups: ['eng', '/staff'] },
      boss: { email: 'boss@example.com', groups: ['admins'] },
      carl: { email: 'carl@example.com' },
    }, { role_groups: { admins: 'admin' }, link_by_email: true, use_expiry_from_token: true }, {
      start: { onBrowserSignIn: async (who: BrowserSignIn) => { seen.push(who); } },
    });
    const ben = await ts.createUser('ben');
    const carl = await ts.createUser('carl', 'carl@example.com');
    await ts.defaultTailnet.setPolicy(JSON.stringify({ acls: [{ action: 'accept', src: ['group:eng@example.com'], dst: ['ben@example.com:22'] }] }), admin, { persist: true });
    const b = new NodeClient({ serverUrl: ts.server.url, hostname: 'ben-srv', capVersion: 130 });
    await b.loginWithAuthKey(await ts.authKey(ben));
    await b.startMap();
    const a = new NodeClient({ serverUrl: ts.server.url, hostname: 'ann-pc', capVersion: 130 });
    const browser = new TestBrowser();
    try {
      // 1. tailscale up without a key: the AuthURL leads through the provider.
      const login = await interactiveLogin(a);
      const page = await browser.signIn(login.authUrl, 'ann');
      assert.equal(page.status, 200, page.body);
      assert.match(page.body, /Signed in as <b>ann@example.com<\/b>/);
      const done = await login.followup;
      assert.equal(done.MachineAuthorized, true);
      assert.equal(done.Login.LoginName, 'ann@example.com');
      const annUser = [...ts.defaultTailnet.users()].find((u) => u.oidc?.subject === 'ann')!;
      assert.equal(annUser.oidc?.issuer, idp.issuer, 'keyed by issuer + subject');
      assert.equal(annUser.name, 'ann');
      assert.equal(annUser.displayName, 'Ann Example');
      assert.equal(annUser.pictureUrl, 'https://img.example.com/ann.png');
      assert.deepEqual(annUser.oidcGroups, ['eng@example.com', 'staff@example.com']);
      const node = ts.server.state.nodeByKey(a.nodePublicKey)!.node;
      assert.equal(node.userId, annUser.id, 'the node is the provisioned user\'s');
      assert.equal(node.registerMethod, 'oidc');
      assert.ok(node.keyExpiry !== null && node.keyExpiry.getTime() > Date.now() && node.keyExpiry.getTime() <= Date.now() + 3_601_000, 'expires with the ID token');

      // 2. The synced group grants ann's device the flow to ben's server.
      await a.startMap();
      const annIp = node.ipv4!;
      await b.waitFor("ann's device as a source (group:eng@example.com)", (nm) => nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(annIp)));

      // 3. Re-authentication (--force-reauth) after the provider removed ann from eng: same
      // node, same addresses and name; the flow is gone from ben's filter.
      idp.accounts.set('ann', { ...idp.accounts.get('ann')!, groups: ['/staff'] });
      const oldKey = a.rotateNodeKey();
      await a.stopMap();
      const again = await interactiveLogin(a, oldKey);
      assert.equal((await browser.signIn(again.authUrl, 'ann')).status, 200);
      assert.equal((await again.followup).MachineAuthorized, true);
      const after = ts.server.state.nodeByKey(a.nodePublicKey)!.node;
      assert.deepEqual([after.id, after.ipv4, after.ipv6, after.givenName], [node.id, node.ipv4, node.ipv6, node.givenName], 'the node keeps its addresses and name');
      assert.deepEqual(ts.defaultTailnet.user(annUser.id)?.oidcGroups, ['staff@example.com'], 'groups refreshed at sign-in');
      await b.waitFor("ann's device no longer a source", (nm) => !nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(annIp)));

      // 4. An existing user (created by the CLI) is linked by verified email, not duplicated.
      const c = new NodeClient({ serverUrl: ts.server.url, hostname: 'carl-pc', capVersion: 130 });
      const carlLogin = await interactiveLogin(c);
      // A fresh browser: the provider would otherwise sign ann in again from its session.
      assert.equal((await new TestBrowser().signIn(carlLogin.authUrl, 'carl')).status, 200);
      await carlLogin.followup;
      assert.equal(ts.server.state.nodeByKey(c.nodePublicKey)!.node.userId, carl.id);
      assert.equal(ts.defaultTailnet.user(carl.id)?.oidc?.subject, 'carl');
      await c.close();

      // 5. The console's browser sign-in reaches the hook with the role from role_groups.
      const consolePage = await browser.get(`${ts.server.url}/oidc/console/login?next=/admin`);
      assert.equal(consolePage.status, 302);
      const signedIn = await new TestBrowser().signIn(`${ts.server.url}/oidc/console/login?next=/admin`, 'boss');
      assert.equal(signedIn.url, `${ts.server.url}/admin/`, 'sent on to the page it asked for (the console answers /admin with /admin/)');
      const boss = ts.defaultTailnet.userByName('boss')!;
      assert.deepEqual(seen, [{ tailnetId: ts.defaultTailnet.id, userId: boss.id, role: 'admin' }]);

      // 6. Re-authentication of a known user for another part (SSH check mode).
      const reauth = await ts.server.signIn!.startReauthentication(ts.defaultTailnet.id, annUser.id);
      assert.equal((await new TestBrowser().signIn(reauth.url, 'ann')).status, 200);
      assert.equal((await reauth.result).id, annUser.id);
      const wrong = await ts.server.signIn!.startReauthentication(ts.defaultTailnet.id, annUser.id);
      const wrongPage = await new TestBrowser().signIn(wrong.url, 'boss');
      assert.equal(wrongPage.status, 403);
      await assert.rejects(wrong.result, /HW_IDENTITY_REAUTH_MISMATCH|not as the user/);
    } finally {
      await a.close();
      await b.close();
      await ts.cleanup();
      await idp.stop();
    }
  });

  it('gives whoever signs in for the console a console session with the role the provider\'s groups give', async () => {
    const { idp, ts } = await withProvider({
      boss: { email: 'boss@example.com', groups: ['admins'] },
      ann: { email: 'ann@example.com', groups: ['eng'] },
    }, { role_groups: { admins: 'admin' } }, { withApi: true });
    try {
      for (const [account, role] of [['boss', 'admin'], ['ann', 'member']] as const) {
        const browser = new TestBrowser();
        const landed = await browser.signIn(`${ts.server.url}/oidc/console/login?next=/admin/`, account);
        assert.equal(landed.url, `${ts.server.url}/admin/`, `${account}: sent to the console`);
        const session = await browser.get(`${ts.server.url}/api/v1/session`);
        assert.equal(session.status, 200, session.body);
        const who = JSON.parse(session.body) as { kind: string; role: string; user: string; csrf_token: string | null };
        assert.deepEqual([who.kind, who.role, who.user], ['session', role, account]);
        assert.ok(who.csrf_token !== null, `${account}: the session carries its CSRF token`);
      }
      // Someone who never signed in has no session.
      const stranger = JSON.parse((await new TestBrowser().get(`${ts.server.url}/api/v1/session`)).body) as { signed_in: boolean };
      assert.equal(stranger.signed_in, false);
    } finally {
      await ts.cleanup();
      await idp.stop();
    }
  });

  it('refuses a user oidc.allowed_users does not name, and lets the named one in', async () => {
    const { idp, ts } = await withProvider({
      amy: { email: 'amy@example.com' },
      zed: { email: 'zed@example.com' },
    }, { allowed_users: ['amy@example.com'] });
    const refused = new NodeClient({ serverUrl: ts.server.url, hostname: 'zed-pc', capVersion: 130 });
    const admitted = new NodeClient({ serverUrl: ts.server.url, hostname: 'amy-pc', capVersion: 130 });
    const users = userCount(ts);
    try {
      const zedLogin = await interactiveLogin(refused);
      // Refused: its register long poll only ends when the client closes.
      zedLogin.followup.catch(() => undefined);
      const page = await new TestBrowser().signIn(zedLogin.authUrl, 'zed');
      assert.equal(page.status, 403);
      assert.match(page.body, /HW_IDENTITY_USER_NOT_ALLOWED/);
      assert.equal(userCount(ts), users, 'no user created');
      assert.ok(ts.server.state.pending.get(zedLogin.id) !== undefined, 'the device keeps waiting');
      const amyLogin = await interactiveLogin(admitted);
      assert.equal((await new TestBrowser().signIn(amyLogin.authUrl, 'amy')).status, 200);
      await amyLogin.followup;
      assert.equal(ts.defaultTailnet.user(ts.server.state.nodeByKey(admitted.nodePublicKey)!.node.userId!)?.email, 'amy@example.com');
    } finally {
      await refused.close();
      await admitted.close();
      await ts.cleanup();
      await idp.stop();
    }
  });

  it('refuses what the configuration does not allow, and bad or replayed answers, creating nothing', async () => {
    const { idp, ts } = await withProvider({
      eve: { email: 'eve@evil.example', groups: ['staff'] },
      bob: { email: 'bob@example.com', groups: ['other'] },
      uma: { email: 'uma@example.com', email_verified: false, groups: ['staff'] },
      dave: { email: 'dave@example.com', groups: ['staff'] },
      sue: { email: 'sue@example.com', groups: ['staff'] },
    }, { allowed_domains: ['example.com'], allowed_groups: ['staff'], extra_params: { ui_locales: 'de' } }, { config: { node_expiry: '30d' } });
    const dave = await ts.createUser('dave', 'dave@example.com');
    const users = userCount(ts);
    const device = new NodeClient({ serverUrl: ts.server.url, hostname: 'box', capVersion: 130 });
    try {
      const login = await interactiveLogin(device);
      const expectRefusal = async (account: string, code: string, options: Parameters<TestBrowser['signIn']>[2] = {}) => {
        const page = await new TestBrowser().signIn(login.authUrl, account, options);
        assert.ok(page.status >= 400, `${account}: refused (${page.status})`);
        assert.match(page.body, new RegExp(code), `${account}: the page says why`);
        assert.equal(userCount(ts), users, `${account}: no user created`);
        assert.ok(ts.server.state.pending.get(login.id) !== undefined, `${account}: the device keeps waiting`);
        assert.equal(ts.defaultTailnet.nodeCount, 0, `${account}: no node created`);
      };
      await expectRefusal('eve', 'HW_IDENTITY_DOMAIN_NOT_ALLOWED');
      await expectRefusal('bob', 'HW_IDENTITY_GROUP_NOT_ALLOWED');
      await expectRefusal('uma', 'HW_IDENTITY_EMAIL_UNVERIFIED');
      await expectRefusal('dave', 'HW_IDENTITY_LINK_REFUSED');
      assert.equal(ts.defaultTailnet.user(dave.id)?.oidc, null, 'never a silent merge');
      // A nonce changed on the way to the provider.
      await expectRefusal('sue', 'HW_IDENTITY_TOKEN_REJECTED', { tamper: (url) => {
        if (url.searchParams.has('nonce') && url.pathname.startsWith('/auth')) url.searchParams.set('nonce', 'forged');
        return url;
      } });
      // A state changed on the way back, and a code the provider does not know (expired).
      await expectRefusal('sue', 'HW_IDENTITY_STATE_MISMATCH', { tamper: (url) => {
        if (url.pathname === '/oidc/callback') url.searchParams.set('state', 'forged-state');
        return url;
      } });
      await expectRefusal('sue', 'HW_IDENTITY_TOKEN_REJECTED', { tamper: (url) => {
        if (url.pathname === '/oidc/callback') url.searchParams.set('code', 'not-a-code-the-provider-gave');
        return url;
      } });
      // The provider flow finished in another browser than the one that opened the link.
      const opener = new TestBrowser();
      const toProvider = await opener.get(login.authUrl);
      assert.equal(toProvider.status, 302);
      const authorize = new URL(toProvider.location!);
      assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256', 'PKCE');
      assert.equal(authorize.searchParams.get('ui_locales'), 'de', 'extra_params');
      assert.ok(authorize.searchParams.get('nonce') !== null && authorize.searchParams.get('state') !== null);
      const elsewhere = await new TestBrowser().signIn(toProvider.location!, 'sue');
      assert.match(elsewhere.body, /HW_IDENTITY_STATE_MISMATCH/);
      assert.equal(userCount(ts), users);

      // Now sue signs in for real; replaying her callback is refused.
      let callback = '';
      const browser = new TestBrowser();
      const ok = await browser.signIn(login.authUrl, 'sue', { tamper: (url) => {
        if (url.pathname === '/oidc/callback') callback = url.href;
        return url;
      } });
      assert.equal(ok.status, 200, ok.body);
      await login.followup;
      const node = ts.server.state.nodeByKey(device.nodePublicKey)!.node;
      assert.ok(node.keyExpiry !== null && Math.abs(node.keyExpiry.getTime() - (Date.now() + 30 * 86_400_000)) < 60_000, 'node_expiry applies');
      const replay = await browser.get(callback);
      assert.equal(replay.status, 400);
      assert.match(replay.body, /HW_IDENTITY_STATE_MISMATCH/);

      // A provider whose JWKS does not hold its signing key: the ID token is refused.
      const other = new NodeClient({ serverUrl: ts.server.url, hostname: 'box-2', capVersion: 130 });
      const second = await interactiveLogin(other);
      second.followup.catch(() => undefined);
      const published = idp.signingKey;
      idp.newKey('k-unpublished');
      idp.publishJwks([publicJwk(published)]);
      await idp.stop();
      await idp.start();
      const unknownKey = await new TestBrowser().signIn(second.authUrl, 'sue');
      assert.match(unknownKey.body, /HW_IDENTITY_TOKEN_REJECTED/);
      assert.equal(ts.defaultTailnet.nodeCount, 1, 'no second node');
      assert.ok(ts.server.state.pending.get(second.id) !== undefined, 'the device keeps waiting');
      await other.close();
    } finally {
      await device.close();
      await ts.cleanup();
      await idp.stop();
    }
  });

  it('starts while the provider is down, keeps key registration working, and signs in once it is back', async () => {
    let callback = 'http://127.0.0.1:1/oidc/callback';
    const idp = await startTestProvider({ redirectUris: () => [callback], accounts: { ann: { email: 'ann@example.com' } } });
    await idp.stop();
    const ts = await startTestServer({ config: { oidc: { issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret } } });
    callback = `${ts.server.serverUrl}/oidc/callback`;
    const keyed = new NodeClient({ serverUrl: ts.server.url, hostname: 'keyed', capVersion: 130 });
    const device = new NodeClient({ serverUrl: ts.server.url, hostname: 'signed', capVersion: 130 });
    try {
      assert.equal(ts.server.signIn?.provider.ready, false);
      const ben = await ts.createUser('ben');
      assert.equal((await keyed.loginWithAuthKey(await ts.authKey(ben))).MachineAuthorized, true, 'pre-auth keys work meanwhile');
      const login = await interactiveLogin(device);
      const down = await new TestBrowser().get(login.authUrl);
      assert.equal(down.status, 503);
      assert.match(down.body, /HW_IDENTITY_PROVIDER_UNREACHABLE/);
      await idp.start();
      const deadline = Date.now() + 10_000;
      while (!ts.server.signIn!.provider.ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(ts.server.signIn!.provider.ready, true, 'discovery retried with backoff');
      assert.equal((await new TestBrowser().signIn(login.authUrl, 'ann')).status, 200);
      assert.equal((await login.followup).MachineAuthorized, true);
    } finally {
      await keyed.close();
      await device.close();
      await ts.cleanup();
      await idp.stop();
    }
  });
});

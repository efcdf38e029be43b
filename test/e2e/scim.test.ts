// SCIM 2.0 as Okta and Entra ID push it: users created, updated and deactivated, groups pushed.
// A group pushed by SCIM is a synced group the policy names as group:<name>@<domain>; taking
// a member out removes the flow from the receiving node's packet filter, and deactivating a user
// withholds their devices at once. Wrong tokens and bad payloads get SCIM errors and change
// nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeClient } from '../../src/client/index.js';
import { startTestServer } from '../../src/server/testing.js';

const admin = { name: 'test' };
const TOKEN = 'scim-token-for-tests-0123456789abcdef';

describe('SCIM provisioning', () => {
  it('pushes users and groups into the policy, deactivates at once, and refuses wrong tokens and bad payloads', async () => {
    const ts = await startTestServer({ config: { scim: { token: TOKEN } } });
    const scim = async (method: string, path: string, body?: unknown, token = TOKEN) => {
      const res = await fetch(`${ts.server.url}/scim/v2${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, json: text === '' ? null : JSON.parse(text) as Record<string, unknown> };
    };
    const ben = await ts.createUser('ben');
    await ts.defaultTailnet.setPolicy(JSON.stringify({ acls: [{ action: 'accept', src: ['group:eng@example.com'], dst: ['ben@example.com:22'] }] }), admin, { persist: true });
    const b = new NodeClient({ serverUrl: ts.server.url, hostname: 'ben-srv', capVersion: 130 });
    const a = new NodeClient({ serverUrl: ts.server.url, hostname: 'ann-pc', capVersion: 130 });
    try {
      // Wrong or missing token: 401, as a SCIM error.
      const wrong = await scim('GET', '/Users', undefined, 'not-the-token');
      assert.equal(wrong.status, 401);
      assert.deepEqual(wrong.json?.['schemas'], ['urn:ietf:params:scim:api:messages:2.0:Error']);
      assert.equal((await fetch(`${ts.server.url}/scim/v2/Users`)).status, 401);
      assert.equal((await scim('POST', '/Users', { userName: 'x@example.com' }, 'nope')).status, 401);
      const users = [...ts.defaultTailnet.users()].length;

      // Bad payloads: 400 naming what is wrong, nothing created.
      const bad = async (method: string, path: string, body: unknown, detail: RegExp) => {
        const answer = await scim(method, path, body);
        assert.equal(answer.status, 400, `${method} ${path}: ${JSON.stringify(answer.json)}`);
        assert.match(String(answer.json?.['detail']), detail);
      };
      await bad('POST', '/Users', { displayName: 'No Name' }, /userName: want a string/);
      await bad('POST', '/Users', '{not json', /not JSON/);
      await bad('POST', '/Users', { userName: 'not-an-email' }, /is not an email address/);
      await bad('GET', '/Users?filter=title%20co%20%22x%22', undefined, /only userName eq/);
      await bad('POST', '/Groups', { displayName: 'eng', members: [{ value: '99999' }] }, /members\[0\]\.value: no user "99999"/);
      assert.equal([...ts.defaultTailnet.users()].length, users, 'nothing created');

      // Okta's flow: look the user up, create it, push a group with it.
      assert.equal((await scim('GET', '/Users?filter=userName%20eq%20%22ann%40example.com%22')).json?.['totalResults'], 0);
      const created = await scim('POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'ann@example.com', name: { givenName: 'Ann', familyName: 'Example' }, emails: [{ value: 'ann@example.com', primary: true }], active: true, externalId: 'okta-ann' });
      assert.equal(created.status, 201);
      const annId = String(created.json?.['id']);
      assert.equal((await scim('POST', '/Users', { userName: 'ann@example.com' })).status, 409, 'one user per email');
      const found = await scim('GET', '/Users?filter=userName%20eq%20%22ann%40example.com%22');
      assert.equal((found.json?.['Resources'] as unknown[]).length, 1);
      await bad('PATCH', `/Users/${annId}`, { Operations: [{ op: 'replace', value: { active: false } }] }, /PatchOp/);

      const ann = ts.defaultTailnet.user(Number(annId) as never)!;
      assert.equal(ann.email, 'ann@example.com');
      await b.loginWithAuthKey(await ts.authKey(ben));
      await b.startMap();
      await a.loginWithAuthKey(await ts.authKey(ann));
      await a.startMap();
      const annIp = ts.server.state.nodeByKey(a.nodePublicKey)!.node.ipv4!;
      await b.waitFor('no flow from ann yet', (nm) => !nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(annIp)));

      const group = await scim('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'eng', members: [{ value: annId }] });
      assert.equal(group.status, 201);
      const groupId = String(group.json?.['id']);
      await b.waitFor('the flow from ann (group:eng@example.com pushed by SCIM)', (nm) => nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(annIp)));
      assert.deepEqual(ts.defaultTailnet.user(ann.id)?.scimGroups, ['eng@example.com']);

      // Entra ID removes the member: the flow is gone from ben's filter.
      const removed = await scim('PATCH', `/Groups/${groupId}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Remove', path: 'members', value: [{ value: annId }] }] });
      assert.equal(removed.status, 200);
      await b.waitFor('the flow from ann removed', (nm) => !nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(annIp)));
      const readded = await scim('PATCH', `/Groups/${groupId}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'add', path: 'members', value: [{ value: annId }] }] });
      assert.equal(readded.status, 200);
      await b.waitFor('the flow from ann again', (nm) => nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(annIp)));

      // Deactivation (Entra sends "False" as a string): ann's device loses access at once.
      const off = await scim('PATCH', `/Users/${annId}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
      assert.equal(off.status, 200);
      assert.equal(off.json?.['active'], false);
      await b.waitFor("ann's device gone from ben's peers", (nm) => nm.peerByName('ann-pc') === undefined && !nm.resolvedPacketFilter.some((r) => r.SrcIPs.includes(annIp)));
      await a.waitFor("ann's device sees no peer", (nm) => nm.peers.size === 0);
      const audit = await ts.server.state.store.read.audit.list({ tailnetId: ts.defaultTailnet.id });
      assert.ok(audit.some((e) => e.action === 'scim.user.deactivate' && e.actor === 'scim'));
      assert.ok(audit.some((e) => e.action === 'scim.group.create'));

      assert.equal((await scim('DELETE', `/Groups/${groupId}`)).status, 204);
      assert.deepEqual(ts.defaultTailnet.user(ann.id)?.scimGroups, []);
      assert.equal((await scim('GET', `/Groups/${groupId}`)).status, 404);
    } finally {
      await a.close();
      await b.close();
      await ts.cleanup();
    }
  });
});

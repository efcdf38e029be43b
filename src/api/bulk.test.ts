// Bulk actions on nodes (POST /api/v1/nodes/bulk) on both dialects: set tags, move to another
// user, expire and approve change every named node in one transaction with an audit entry each,
// and a call that cannot apply to one node changes none of them.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeId } from '../model/index.js';
import { forEachDialect } from '../store/testing.js';
import type { AuditEntryJson, ErrorJson, NodeJson } from './schemas.js';
import { addTestNode, startTestApi, TEST_ADMIN, type TestApi } from './testing.js';

forEachDialect('admin API bulk node actions', (open) => {
  let api: TestApi;
  let key: string;
  let cleanup: () => Promise<void>;
  const ids: NodeId[] = [];

  before(async () => {
    const testStore = await open();
    api = await startTestApi(testStore);
    key = await api.createApiKey();
    const tailnet = api.state.defaultTailnet;
    const alice = await tailnet.createUser({ name: 'alice' }, TEST_ADMIN);
    await tailnet.createUser({ name: 'bob' }, TEST_ADMIN);
    for (const hostname of ['web-1', 'web-2', 'web-3']) ids.push((await addTestNode(tailnet, { hostname, userId: alice.id, approved: false })).id);
    cleanup = async () => {
      await api.close();
      await testStore.cleanup();
    };
  });
  after(() => cleanup());

  const bulk = (body: unknown) => api.request('POST', '/api/v1/nodes/bulk', { apiKey: key, body });
  const node = (id: NodeId) => api.state.defaultTailnet.node(id)!;

  it('sets the tags of every selected node, each audited', async () => {
    const res = await bulk({ action: 'set_tags', nodes: [ids[0], 'web-2'], tags: ['tag:web'] });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual((res.json as { nodes: NodeJson[] }).nodes.map((n) => [n.hostname, n.tags]), [['web-1', ['tag:web']], ['web-2', ['tag:web']]]);
    assert.deepEqual([node(ids[0]!).tags, node(ids[1]!).tags, node(ids[2]!).tags], [['tag:web'], ['tag:web'], []]);
    const audit = (await api.request('GET', '/api/v1/audit?q=node.tag', { apiKey: key })).json as { audit: AuditEntryJson[] };
    assert.deepEqual(audit.audit.map((e) => e.target).sort(), [`node:${ids[0]}`, `node:${ids[1]}`].sort());
  });

  it('moves the selected nodes to another user', async () => {
    const res = await bulk({ action: 'move', nodes: ids, user: 'bob' });
    assert.equal(res.status, 200, res.text);
    const bob = api.state.defaultTailnet.userByName('bob')!;
    assert.ok(ids.every((id) => node(id).userId === bob.id));
  });

  it('approves waiting devices and expires keys', async () => {
    assert.equal((await bulk({ action: 'approve', nodes: ids })).status, 200);
    assert.ok(ids.every((id) => node(id).approved));
    assert.equal((await bulk({ action: 'expire', nodes: [ids[2]] })).status, 200);
    assert.ok(node(ids[2]!).keyExpiry!.getTime() <= Date.now());
  });

  it('changes none of the nodes when one of them cannot take the change', async () => {
    const unknown = await bulk({ action: 'set_tags', nodes: [ids[2], 'no-such-node'], tags: ['tag:db'] });
    assert.equal(unknown.status, 404, unknown.text);
    assert.match((unknown.json as ErrorJson).error.message, /no-such-node/);
    assert.deepEqual(node(ids[2]!).tags, []);
    // web-1 could be untagged (it has a user); the tagged server has none, so untagging it is refused.
    const server = await addTestNode(api.state.defaultTailnet, { hostname: 'tagged-server', tags: ['tag:server'] });
    const orphan = await bulk({ action: 'set_tags', nodes: [ids[0], server.id], tags: [] });
    assert.equal(orphan.status >= 400 && orphan.status < 500, true, orphan.text);
    assert.match((orphan.json as ErrorJson).error.message, new RegExp(`node ${server.id}`));
    assert.deepEqual(node(ids[0]!).tags, ['tag:web'], 'web-1 kept its tags: nothing was written');
    const missingUser = await bulk({ action: 'move', nodes: ids, user: 'carol' });
    assert.equal(missingUser.status, 404);
    const badAction = await bulk({ action: 'rename', nodes: ids });
    assert.equal(badAction.status, 400);
    assert.match((badAction.json as ErrorJson).error.message, /action/);
    const empty = await bulk({ action: 'expire', nodes: [] });
    assert.equal(empty.status, 400);
  });
});

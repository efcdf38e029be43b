// The tailnet endpoints that read and change a tailnet's settings, on both dialects over TCP
// with an API key: what they answer, what they change, what they refuse, and the audit entry.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDialect } from '../store/testing.js';
import type { AuditEntryJson, TailnetJson } from './schemas.js';
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
    assert.deepEqual((res.json as TailnetJson).settings, { auto_update: false });
    const { tailnets } = (await call('GET', '/api/v1/tailnets')).json as { tailnets: TailnetJson[] };
    assert.deepEqual(tailnets[0]!.settings, { auto_update: false });
  });

  it('changes a setting with PATCH, keeps it across a restart of the state, and audits it', async () => {
    const res = await call('PATCH', '/api/v1/tailnets/default', { body: { settings: { auto_update: true } } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual((res.json as TailnetJson).settings, { auto_update: true });
    assert.deepEqual(api.state.defaultTailnet.settings, { autoUpdate: true });
    assert.deepEqual((await api.state.store.read.tailnets.getByName('default'))?.settings, { autoUpdate: true });
    // An empty settings object changes nothing.
    assert.deepEqual(((await call('PATCH', '/api/v1/tailnets/default', { body: { settings: {} } })).json as TailnetJson).settings, { auto_update: true });
    const { audit } = (await call('GET', '/api/v1/audit?limit=100')).json as { audit: AuditEntryJson[] };
    const entry = audit.find((e) => e.action === 'tailnet.settings.update');
    assert.ok(entry !== undefined, 'audit entry written');
    assert.match(entry.actor, /^api-key:/);
    assert.deepEqual((entry.details as { after: unknown }).after, { autoUpdate: true });
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
    assert.deepEqual(api.state.defaultTailnet.settings, { autoUpdate: true }, 'nothing changed');
  });
});

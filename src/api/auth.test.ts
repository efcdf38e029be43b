import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDialect } from '../store/testing.js';
import { startTestApi, type TestApi } from './testing.js';

interface ErrorBody {
  error: { code: string; message: string; request_id: string; field?: string };
}

function errorOf(json: unknown): ErrorBody['error'] {
  return (json as ErrorBody).error;
}

forEachDialect('admin API authentication', (open) => {
  let api: TestApi;
  let clock = Date.now();
  let cleanup: () => Promise<void>;

  before(async () => {
    const testStore = await open();
    api = await startTestApi(testStore, { now: () => clock });
    cleanup = async () => {
      await api.close();
      await testStore.cleanup();
    };
  });
  after(() => cleanup());

  describe('over TCP', () => {
    it('answers 401 with a Bearer challenge when no key is sent', async () => {
      const res = await api.request('GET', '/api/v1/users');
      assert.equal(res.status, 401);
      assert.equal(errorOf(res.json).code, 'HW_API_UNAUTHENTICATED');
      assert.match(errorOf(res.json).message, /missing API key/);
      assert.match(String(res.headers['www-authenticate']), /^Bearer/);
    });

    it('answers 401 for a malformed Authorization header', async () => {
      const res = await api.request('GET', '/api/v1/users', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
      assert.equal(res.status, 401);
      assert.match(errorOf(res.json).message, /want Bearer <api key>/);
    });

    it('answers 401 for an unknown key without echoing it', async () => {
      const forged = `hwk_${'A'.repeat(12)}_${'b'.repeat(40)}`;
      for (const key of [forged, 'garbage', `${forged}x`]) {
        const res = await api.request('GET', '/api/v1/users', { apiKey: key });
        assert.equal(res.status, 401, key);
        assert.equal(errorOf(res.json).message, 'invalid API key');
        assert.ok(!res.text.includes('bbbbbbbb'), 'the secret is not echoed');
      }
    });

    it('answers 401 for an expired key', async () => {
      const key = await api.createApiKey(new Date(clock - 1_000));
      const res = await api.request('GET', '/api/v1/users', { apiKey: key });
      assert.equal(res.status, 401);
      assert.match(errorOf(res.json).message, /^API key hwk_[0-9A-Za-z]{12} expired at /);
    });

    it('answers 401 for a key once it expires by the clock', async () => {
      const key = await api.createApiKey(new Date(clock + 60_000));
      assert.equal((await api.request('GET', '/api/v1/users', { apiKey: key })).status, 200);
      const saved = clock;
      clock += 61_000;
      try {
        assert.equal((await api.request('GET', '/api/v1/users', { apiKey: key })).status, 401);
      } finally {
        clock = saved;
      }
    });

    it('answers 401 for a revoked key, at once', async () => {
      const key = await api.createApiKey();
      assert.equal((await api.request('GET', '/api/v1/apikeys', { apiKey: key })).status, 200);
      const prefix = key.split('_')[1]!;
      const expired = await api.request('POST', `/api/v1/apikeys/${prefix}/expire`, { apiKey: key });
      assert.equal(expired.status, 200);
      assert.equal((expired.json as { expired: boolean }).expired, true);
      const res = await api.request('GET', '/api/v1/users', { apiKey: key });
      assert.equal(res.status, 401);
      assert.match(errorOf(res.json).message, /was revoked/);
    });

    it('accepts a valid key and records it as the actor', async () => {
      const key = await api.createApiKey();
      const prefix = key.split('_')[1]!;
      const res = await api.request('POST', '/api/v1/users', { apiKey: key, body: { name: 'by-key' } });
      assert.equal(res.status, 201);
      const audit = await api.state.listAudit({ tailnetId: api.state.defaultTailnet.id });
      const entry = audit.find((e) => e.action === 'user.create' && e.details['name'] === 'by-key');
      assert.equal(entry?.actor, `api-key:${prefix}`);
    });

    it('writes a key\'s last use at most once a minute', async () => {
      const key = await api.createApiKey();
      const prefix = key.split('_')[1]!;
      const lastUsed = async () => (await api.state.listApiKeys()).find((k) => k.prefix === prefix)!.lastUsedAt?.getTime() ?? null;
      const saved = clock;
      try {
        assert.equal(await lastUsed(), null);
        await api.request('GET', '/api/v1/tailnets', { apiKey: key });
        const first = await lastUsed();
        assert.equal(first, clock);
        clock += 30_000;
        await api.request('GET', '/api/v1/tailnets', { apiKey: key });
        assert.equal(await lastUsed(), first, 'no write within a minute');
        clock += 31_000;
        await api.request('GET', '/api/v1/tailnets', { apiKey: key });
        assert.equal(await lastUsed(), clock, 'written again after a minute');
      } finally {
        clock = saved;
      }
    });

    it('serves the OpenAPI document without a key', async () => {
      const res = await api.request('GET', '/api/v1/openapi.json');
      assert.equal(res.status, 200);
      assert.equal((res.json as { openapi: string }).openapi, '3.1.0');
    });
  });

  describe('over the unix socket', () => {
    it('needs no key and records unix-socket as the actor', async () => {
      const res = await api.request('POST', '/api/v1/users', { transport: 'unix', body: { name: 'by-socket' } });
      assert.equal(res.status, 201);
      const audit = await api.state.listAudit({ tailnetId: api.state.defaultTailnet.id });
      const entry = audit.find((e) => e.action === 'user.create' && e.details['name'] === 'by-socket');
      assert.equal(entry?.actor, 'unix-socket');
    });

    it('ignores a bad key sent over the socket', async () => {
      const res = await api.request('GET', '/api/v1/users', { transport: 'unix', apiKey: 'garbage' });
      assert.equal(res.status, 200);
    });
  });
});

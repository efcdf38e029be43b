import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  apiKeyPrefix, hashKey, keyMatchesHash, newApiKey, newPreAuthKey, normaliseApiKeyPrefix, preAuthKeyPrefix, randomBase62,
} from './secrets.js';

describe('secrets', () => {
  it('makes keys the Tailscale client passes through unchanged', () => {
    for (let i = 0; i < 500; i++) {
      const { text } = newPreAuthKey();
      assert.ok(!text.includes('--TL'), text);
      assert.ok(!text.startsWith('tskey-client-') && !text.startsWith('file:'), text);
    }
  });

  it('recognises its own formats and nothing else', () => {
    const pre = newPreAuthKey();
    assert.equal(preAuthKeyPrefix(pre.text), pre.prefix);
    assert.equal(apiKeyPrefix(pre.text), undefined);
    const api = newApiKey();
    assert.equal(apiKeyPrefix(api.text), api.prefix);
    assert.equal(preAuthKeyPrefix(api.text), undefined);
    for (const bad of ['', 'hwk_', `${api.text}x`, api.text.replace('_', '-'), `tskey-auth-${pre.prefix}-x`]) {
      assert.equal(apiKeyPrefix(bad), undefined, bad);
      assert.equal(preAuthKeyPrefix(bad), undefined, bad);
    }
  });

  it('matches a key against its hash only', () => {
    const { text, hash } = newApiKey();
    assert.equal(hash, hashKey(text));
    assert.equal(keyMatchesHash(text, hash), true);
    assert.equal(keyMatchesHash(`${text.slice(0, -1)}0`=== text ? `${text.slice(0, -1)}1` : `${text.slice(0, -1)}0`, hash), false);
    assert.equal(keyMatchesHash(text, 'abcd'), false, 'a malformed stored hash never matches');
  });

  it('draws base62 characters without bias toward the first ones', () => {
    const counts = new Map<string, number>();
    for (const char of randomBase62(62_000)) counts.set(char, (counts.get(char) ?? 0) + 1);
    assert.equal(counts.size, 62);
    // Expected 1000 each; a biased `byte % 62` would give the first 8 characters about 1250.
    for (const [char, count] of counts) assert.ok(count > 800 && count < 1200, `${char}: ${count}`);
  });

  it('reads an API key prefix from what a user types', () => {
    for (const form of ['AbCdEfGhIjKl', 'hwk_AbCdEfGhIjKl', 'hwk_AbCdEfGhIjKl_***', ' hwk_AbCdEfGhIjKl_0123456789012345678901234567890123456789 ']) {
      assert.equal(normaliseApiKeyPrefix(form), 'AbCdEfGhIjKl', form);
    }
  });
});

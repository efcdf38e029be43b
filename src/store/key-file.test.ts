import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadwayError } from '../util/headway-error.js';
import { loadOrCreatePrivateKey } from './key-file.js';

describe('loadOrCreatePrivateKey', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'headway-key-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the file and its directory on first use, private to the owner', async () => {
    const path = join(dir, 'new', 'nested', 'noise_private.key');
    const key = await loadOrCreatePrivateKey(path);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^privkey:[0-9a-f]{64}\n$/);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'new', 'nested')).mode & 0o777, 0o700);
    assert.equal(key.toFileText(), text.trim());
    assert.deepEqual(readdirSync(join(dir, 'new', 'nested')), ['noise_private.key'], 'no temporary file is left behind');
  });

  it('returns the same key on every later start', async () => {
    const path = join(dir, 'reuse.key');
    const first = await loadOrCreatePrivateKey(path);
    const second = await loadOrCreatePrivateKey(path);
    assert.deepEqual(second.publicBytes, first.publicBytes);
  });

  it('reads a key file written by Tailscale or headscale', async () => {
    const path = join(dir, 'headscale.key');
    const hex = 'a'.repeat(64);
    writeFileSync(path, `privkey:${hex}`, { mode: 0o600 });
    assert.equal((await loadOrCreatePrivateKey(path)).toFileText(), `privkey:${hex}`);
  });

  it('gives every concurrent caller the same key', async () => {
    const path = join(dir, 'race.key');
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreatePrivateKey(path)));
    for (const key of keys) assert.deepEqual(key.publicBytes, keys[0]!.publicBytes);
    assert.equal(readFileSync(path, 'utf8').trim(), keys[0]!.toFileText());
  });

  it('refuses a file with the wrong content and leaves it untouched', async () => {
    const path = join(dir, 'garbage.key');
    writeFileSync(path, 'this is not a key\n');
    await assert.rejects(loadOrCreatePrivateKey(path), (err) => {
      assert.ok(err instanceof HeadwayError);
      assert.equal(err.code, 'HW_STORE_KEY_FILE_INVALID');
      assert.equal(err.message, `${path}: not a private key file (want "privkey:" followed by 64 hex digits, found 18 bytes); it was left untouched`);
      return true;
    });
    assert.equal(readFileSync(path, 'utf8'), 'this is not a key\n');
    writeFileSync(path, '');
    await assert.rejects(loadOrCreatePrivateKey(path), { code: 'HW_STORE_KEY_FILE_INVALID' });
    assert.equal(readFileSync(path, 'utf8'), '');
  });

  it('reports a path that cannot hold a file', async () => {
    const blocker = join(dir, 'plain-file');
    writeFileSync(blocker, 'x');
    const path = join(blocker, 'key');
    await assert.rejects(loadOrCreatePrivateKey(path), (err) => {
      assert.ok(err instanceof HeadwayError);
      assert.equal(err.code, 'HW_STORE_KEY_FILE_UNUSABLE');
      assert.equal(err.message, `${path}: cannot read the private key file: ENOTDIR`);
      return true;
    });
  });
});

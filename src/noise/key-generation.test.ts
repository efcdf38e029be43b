// Key generation survives many keys in a row: on Node 20, generateKeyPairSync('x25519')
// followed by the key's JWK export deadlocked the main thread when a GC inside the export
// finalized the job that made the key (it hung one run of transport.test's handshake storm).
// A deadlocked thread cannot fail its own test, so the keys are made in a child process, with
// a 1 MB young generation: GCs come often, and the old code hung in most runs of this length.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generateEphemeralKey } from './primitives.js';
import { Curve25519PrivateKey } from '../key/index.js';

const primitives = fileURLToPath(new URL('./primitives.js', import.meta.url));
const keys = fileURLToPath(new URL('../key/index.js', import.meta.url));

function makeKeysInChild(expression: string, count: number): number | null {
  const script = `const { generateEphemeralKey } = await import(${JSON.stringify(primitives)});
const { Curve25519PrivateKey } = await import(${JSON.stringify(keys)});
for (let i = 0; i < ${count}; i++) ${expression};`;
  const child = spawnSync(process.execPath, ['--min-semi-space-size=1', '--max-semi-space-size=1', '--input-type=module', '-e', script], { timeout: 60_000, stdio: 'ignore' });
  return child.status;
}

describe('X25519 key generation', () => {
  it('makes 100,000 ephemeral keys in a row', () => {
    assert.equal(makeKeysInChild('generateEphemeralKey()', 100_000), 0, 'the child finished (null: killed after 60 s)');
  });

  it('makes 30,000 private keys in a row', () => {
    assert.equal(makeKeysInChild('Curve25519PrivateKey.generate()', 30_000), 0, 'the child finished (null: killed after 60 s)');
  });

  it('gives public keys that match the private keys', () => {
    const ephemeral = generateEphemeralKey();
    const peer = Curve25519PrivateKey.generate();
    assert.deepEqual(ephemeral.sharedSecret(peer.publicBytes), peer.sharedSecret(ephemeral.publicBytes));
    assert.deepEqual(Curve25519PrivateKey.fromBytes(peer.rawBytes()).publicBytes, peer.publicBytes);
  });
});

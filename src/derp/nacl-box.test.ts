import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import nacl from 'tweetnacl';
import { Curve25519PrivateKey } from '../key/index.js';
import { boxSharedKey, openWithSharedKey, sealWithSharedKey } from './nacl-box.js';

describe('nacl-box', () => {
  it('derives the same key as tweetnacl box.before (native X25519 + HSalsa20)', () => {
    for (let i = 0; i < 20; i++) {
      const ours = Curve25519PrivateKey.generate();
      const peer = nacl.box.keyPair();
      assert.deepEqual(boxSharedKey(ours, peer.publicKey), nacl.box.before(peer.publicKey, ours.rawBytes()));
    }
  });

  it('opens what nacl.box sealed, and nacl.box.open opens what we sealed', () => {
    const server = Curve25519PrivateKey.generate();
    const client = nacl.box.keyPair();
    const key = boxSharedKey(server, client.publicKey);
    const nonce = nacl.randomBytes(24);
    const sealed = Buffer.concat([nonce, nacl.box(Buffer.from('{"version":2}'), nonce, server.publicBytes, client.secretKey)]);
    assert.equal(Buffer.from(openWithSharedKey(key, sealed)!).toString(), '{"version":2}');

    const ours = sealWithSharedKey(key, Buffer.from('hello'));
    const opened = nacl.box.open(ours.subarray(24), ours.subarray(0, 24), server.publicBytes, client.secretKey);
    assert.equal(Buffer.from(opened!).toString(), 'hello');
  });

  it('refuses a tampered box, a short box, and a low-order peer key', () => {
    const server = Curve25519PrivateKey.generate();
    const key = boxSharedKey(server, nacl.box.keyPair().publicKey);
    const sealed = sealWithSharedKey(key, Buffer.from('hello'));
    sealed[sealed.length - 1]! ^= 1;
    assert.equal(openWithSharedKey(key, sealed), null);
    assert.equal(openWithSharedKey(key, Buffer.alloc(30)), null);
    assert.throws(() => boxSharedKey(server, new Uint8Array(32)));
  });
});

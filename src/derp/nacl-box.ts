/**
 * @module derp/nacl-box
 * NaCl `box` (curve25519-xsalsa20-poly1305) as DERP uses it for ClientInfo and ServerInfo,
 * in Tailscale's layout (types/key/node.go SealTo/OpenFrom): `nonce (24) | tag (16) | ciphertext`.
 *
 * The X25519 step runs in Node's native crypto (Curve25519PrivateKey.sharedSecret, which also
 * refuses low-order peer keys); tweetnacl does HSalsa20 and the secretbox. That keeps a
 * handshake at a few tens of microseconds instead of tweetnacl's ~0.8 ms scalar multiplication.
 */
import nacl from 'tweetnacl';
import type { Curve25519PrivateKey } from '../key/index.js';
import { NONCE_BYTES } from './frame.js';

interface NaclLowLevel {
  crypto_core_hsalsa20(out: Uint8Array, input: Uint8Array, key: Uint8Array, constant: Uint8Array): number;
}

const SIGMA = new Uint8Array(Buffer.from('expand 32-byte k', 'latin1'));
const ZERO_16 = new Uint8Array(16);

function lowLevel(): NaclLowLevel | null {
  // tweetnacl exports `lowlevel` at runtime but its typings do not declare it.
  const candidate: unknown = (nacl as unknown as { lowlevel?: unknown }).lowlevel;
  if (typeof candidate === 'object' && candidate !== null && typeof (candidate as Record<string, unknown>)['crypto_core_hsalsa20'] === 'function') {
    return candidate as NaclLowLevel;
  }
  return null;
}

const hsalsa = lowLevel();

/**
 * The box key shared by `privateKey` and `peerPublic` (NaCl's crypto_box_beforenm).
 * Throws when the peer key is a low-order point.
 */
export function boxSharedKey(privateKey: Curve25519PrivateKey, peerPublic: Uint8Array): Uint8Array {
  if (hsalsa === null) {
    // Fallback if a tweetnacl build ever drops `lowlevel`: the slow pure-JS path.
    privateKey.sharedSecret(peerPublic); // for its low-order check
    return nacl.box.before(new Uint8Array(peerPublic), new Uint8Array(privateKey.rawBytes()));
  }
  const shared = privateKey.sharedSecret(peerPublic);
  const key = new Uint8Array(32);
  hsalsa.crypto_core_hsalsa20(key, ZERO_16, new Uint8Array(shared), SIGMA);
  shared.fill(0);
  return key;
}

/** `nonce | box(message)` with a random nonce. */
export function sealWithSharedKey(sharedKey: Uint8Array, message: Uint8Array): Buffer {
  const nonce = nacl.randomBytes(NONCE_BYTES);
  const box = nacl.secretbox(message, nonce, sharedKey);
  const out = Buffer.allocUnsafe(NONCE_BYTES + box.length);
  out.set(nonce, 0);
  out.set(box, NONCE_BYTES);
  return out;
}

/** Opens `nonce | box`; null when it is too short or does not authenticate. */
export function openWithSharedKey(sharedKey: Uint8Array, sealed: Uint8Array): Uint8Array | null {
  if (sealed.length < NONCE_BYTES + nacl.secretbox.overheadLength) return null;
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const box = sealed.subarray(NONCE_BYTES);
  return nacl.secretbox.open(box, nonce, sharedKey);
}

// The three primitives of Noise_*_25519_ChaChaPoly_BLAKE2s on Node's built-in crypto (OpenSSL):
// X25519, ChaCha20-Poly1305 (IETF, 12-byte nonce) and BLAKE2s-256 with its HMAC-HKDF. Nothing
// here knows about handshakes or framing; pure-JS libraries are test oracles only (see testing.ts).
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { NoiseErrors, NoiseHandshakeError } from './errors.js';

/**
 * A copy of `bytes` in an ArrayBuffer of its own, for bytes kept as long as a connection. A small
 * Buffer.from/allocUnsafe is a slice of Node's shared 8 KiB pool and keeps that whole pool alive;
 * with the pool refilled between two connections' handshakes, each connection's keys pinned
 * about a pool of their own (measured: see docs/benchmarks-notes.md, issue 15 memory).
 */
export function unpooledCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  copy.set(bytes);
  return copy;
}

/** Bytes of a Curve25519 key or shared secret (Noise DHLEN). */
export const DH_BYTES = 32;
/** Bytes of a BLAKE2s-256 digest (Noise HASHLEN). */
export const HASH_BYTES = 32;
/** Bytes of a ChaCha20-Poly1305 key. */
export const AEAD_KEY_BYTES = 32;
/** Bytes of a Poly1305 tag appended to every ciphertext. */
export const AEAD_TAG_BYTES = 16;
/** Bytes of an IETF ChaCha20-Poly1305 nonce. */
export const AEAD_NONCE_BYTES = 12;

const EMPTY = Buffer.alloc(0);

/**
 * A Curve25519 key pair as the handshake needs it. `Curve25519PrivateKey` from src/key fits this
 * shape (static keys); `generateEphemeralKey()` makes a cheaper one-shot pair for ephemerals.
 * `sharedSecret` must throw on an all-zero result (low-order peer point), as Go's X25519 does.
 */
export interface DhKeyPair {
  readonly publicBytes: Buffer;
  sharedSecret(peerPublic: Uint8Array): Buffer;
}

/** X25519's base point (u = 9): X25519(k, base point) is k's public key. */
const BASE_POINT = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from([9, ...new Array<number>(31).fill(0)]).toString('base64url') }, format: 'jwk' });

/**
 * X25519 with a fresh key pair. Its public half comes from X25519(k, base point), not from
 * privateKey.export({ format: 'jwk' }): Node 20 holds a fresh key's mutex while it builds the
 * JWK's strings, and a GC there that finalizes the key-generation job of that same key takes
 * the mutex again: the main thread deadlocks (a few thousand keys in a loop on Node 20.20).
 * diffieHellman computes under the lock and allocates its result after releasing it.
 */
export function generateEphemeralKey(): DhKeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  return new EphemeralKeyPair(privateKey, diffieHellman({ privateKey, publicKey: BASE_POINT }));
}

class EphemeralKeyPair implements DhKeyPair {
  readonly #privateKey: KeyObject;
  readonly publicBytes: Buffer;

  constructor(privateKey: KeyObject, publicBytes: Buffer) {
    this.#privateKey = privateKey;
    this.publicBytes = publicBytes;
  }

  sharedSecret(peerPublic: Uint8Array): Buffer {
    return x25519(this.#privateKey, peerPublic);
  }
}

/** X25519(private, peerPublic); throws NoiseHandshakeError on a low-order peer key. */
export function x25519(privateKey: KeyObject, peerPublic: Uint8Array): Buffer {
  if (peerPublic.length !== DH_BYTES) {
    throw new NoiseHandshakeError(NoiseErrors.BAD_LENGTH, `noise: x25519 peer key: ${peerPublic.length} bytes, want ${DH_BYTES}`);
  }
  // Node imports a raw X25519 public key about 8x faster as JWK than as SPKI DER.
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(peerPublic).toString('base64url') }, format: 'jwk' });
  const secret = diffieHellman({ privateKey, publicKey });
  if (isAllZero(secret)) {
    throw new NoiseHandshakeError(NoiseErrors.LOW_ORDER_KEY, 'noise: x25519: low-order peer key (all-zero shared secret)');
  }
  return secret;
}

function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

/** BLAKE2s-256 over the concatenation of `parts`. */
export function blake2s(...parts: Uint8Array[]): Buffer {
  const hash = createHash('blake2s256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/**
 * Noise's HKDF with two outputs: RFC 5869 HKDF over HMAC-BLAKE2s, salt = chaining key,
 * info empty, 64 bytes split in halves. Node's hkdfSync takes an empty ikm (Split needs it).
 */
export function hkdf2(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array): [Buffer, Buffer] {
  const out = Buffer.from(hkdfSync('blake2s256', inputKeyMaterial, chainingKey, EMPTY, 2 * HASH_BYTES));
  return [out.subarray(0, HASH_BYTES), out.subarray(HASH_BYTES)];
}

/**
 * ChaCha20-Poly1305 seal of `plaintext` with `ad`, written as ciphertext||tag at `out[offset]`.
 * Returns the number of bytes written (plaintext length + 16).
 */
export function aeadSealInto(key: Buffer, nonce: Buffer, ad: Uint8Array, plaintext: Uint8Array, out: Buffer, offset: number): number {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: plaintext.length });
  let written = 0;
  if (plaintext.length > 0) {
    const body = cipher.update(plaintext);
    written += body.copy(out, offset);
  }
  const tail = cipher.final();
  written += tail.copy(out, offset + written);
  written += cipher.getAuthTag().copy(out, offset + written);
  return written;
}

/** ChaCha20-Poly1305 open of ciphertext||tag; null when authentication fails. */
export function aeadOpen(key: Buffer, nonce: Buffer, ad: Uint8Array, sealed: Uint8Array): Buffer | null {
  if (sealed.length < AEAD_TAG_BYTES) return null;
  const bodyLength = sealed.length - AEAD_TAG_BYTES;
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  decipher.setAuthTag(sealed.subarray(bodyLength));
  if (ad.length > 0) decipher.setAAD(ad, { plaintextLength: bodyLength });
  try {
    const body = bodyLength > 0 ? decipher.update(sealed.subarray(0, bodyLength)) : EMPTY;
    const tail = decipher.final();
    return tail.length === 0 ? body : Buffer.concat([body, tail]);
  } catch {
    return null;
  }
}

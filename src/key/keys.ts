// Key text forms follow Tailscale's types/key: a role prefix and exactly 64 hex digits.
// Public keys travel as their canonical text (lower-case hex) so they can be used directly as
// map keys and JSON values; raw bytes are produced only where a protocol needs them.
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, timingSafeEqual, type KeyObject } from 'node:crypto';

declare const brand: unique symbol;
type Branded<T, B extends string> = T & { readonly [brand]: B };

/** `mkey:<hex>`: a machine's Noise static public key (also the control server's). */
export type MachinePublicKey = Branded<string, 'MachinePublicKey'>;
/** `nodekey:<hex>`: a node's WireGuard public key; its DERP identity too. */
export type NodePublicKey = Branded<string, 'NodePublicKey'>;
/** `discokey:<hex>`: a node's disco (NAT traversal) public key. */
export type DiscoPublicKey = Branded<string, 'DiscoPublicKey'>;
/** `chalpub:<hex>`: the per-connection challenge key sent in the Noise early payload. */
export type ChallengePublicKey = Branded<string, 'ChallengePublicKey'>;

export type KeyRole = 'machine' | 'node' | 'disco' | 'challenge';

const prefixOfRole: Readonly<Record<KeyRole, string>> = {
  machine: 'mkey:',
  node: 'nodekey:',
  disco: 'discokey:',
  challenge: 'chalpub:',
};

interface KeyOfRole {
  machine: MachinePublicKey;
  node: NodePublicKey;
  disco: DiscoPublicKey;
  challenge: ChallengePublicKey;
}

export const KEY_BYTES = 32;
const HEX64 = /^[0-9a-fA-F]{64}$/;
const ZERO_HEX = '0'.repeat(64);

/** Thrown for a key string of the wrong role, length or alphabet. */
export class KeyParseError extends Error {
  override name = 'KeyParseError';
}

/**
 * Parses `<prefix><64 hex>` into the canonical lower-case form. Tailscale accepts upper-case hex
 * too. Returns null for an all-zero key, which clients send to mean "absent" (e.g. a fresh
 * client's `OldNodeKey`).
 */
export function parsePublicKey<R extends KeyRole>(role: R, text: string): KeyOfRole[R] | null {
  const prefix = prefixOfRole[role];
  if (typeof text !== 'string' || !text.startsWith(prefix)) {
    throw new KeyParseError(`${role} key: want prefix "${prefix}", got ${describe(text)}`);
  }
  const hex = text.slice(prefix.length);
  if (!HEX64.test(hex)) {
    throw new KeyParseError(`${role} key: want ${prefix} followed by 64 hex digits, got ${hex.length} characters`);
  }
  const lower = hex.toLowerCase();
  if (lower === ZERO_HEX) return null;
  return (prefix + lower) as KeyOfRole[R];
}

/** Like parsePublicKey, but an all-zero key is an error. */
export function requirePublicKey<R extends KeyRole>(role: R, text: string): KeyOfRole[R] {
  const key = parsePublicKey(role, text);
  if (key === null) throw new KeyParseError(`${role} key: the zero key is not allowed here`);
  return key;
}

export function publicKeyFromBytes<R extends KeyRole>(role: R, raw: Uint8Array): KeyOfRole[R] {
  if (raw.length !== KEY_BYTES) throw new KeyParseError(`${role} key: want ${KEY_BYTES} bytes, got ${raw.length}`);
  return (prefixOfRole[role] + Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex')) as KeyOfRole[R];
}

/** The raw 32 bytes of a public key in canonical text form. */
export function publicKeyBytes(key: MachinePublicKey | NodePublicKey | DiscoPublicKey | ChallengePublicKey): Buffer {
  const colon = key.indexOf(':');
  return Buffer.from(key.slice(colon + 1), 'hex');
}

/** The untyped hex of a public key (DERP's `Derp-Public-Key` header uses this form). */
export function publicKeyHex(key: MachinePublicKey | NodePublicKey | DiscoPublicKey | ChallengePublicKey): string {
  return key.slice(key.indexOf(':') + 1);
}

/** `[abcde]`: the first five base64 characters of the raw key, as Tailscale prints keys in logs. */
export function shortKey(key: MachinePublicKey | NodePublicKey | DiscoPublicKey | ChallengePublicKey): string {
  return `[${publicKeyBytes(key).toString('base64').slice(0, 5)}]`;
}

/** Constant-time equality of two public keys of the same role. */
export function keysEqual<K extends string>(a: K, b: K): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function describe(text: unknown): string {
  if (typeof text !== 'string') return typeof text;
  const head = text.slice(0, 12);
  return JSON.stringify(text.length > 12 ? `${head}...` : head);
}

// --- Curve25519 private keys ----------------------------------------------------------------

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * A Curve25519 private key. It has no string form on purpose (Tailscale's key types do the
 * same); `toFileText()` is the one way out, for the 0600 key file.
 */
export class Curve25519PrivateKey {
  readonly #raw: Buffer;
  readonly #keyObject: KeyObject;
  readonly publicBytes: Buffer;

  private constructor(raw: Buffer, keyObject: KeyObject, publicBytes: Buffer) {
    this.#raw = raw;
    this.#keyObject = keyObject;
    this.publicBytes = publicBytes;
  }

  // The pair comes out encoded by the key-generation job itself, then the KeyObject is imported
  // as JWK (about 8x faster than DER). Not generateKeyPairSync's KeyObject and its JWK export:
  // Node 20 can deadlock there (see generateEphemeralKey in src/noise/primitives.ts).
  static generate(): Curve25519PrivateKey {
    const pair = generateKeyPairSync('x25519', { privateKeyEncoding: { format: 'der', type: 'pkcs8' }, publicKeyEncoding: { format: 'der', type: 'spki' } });
    const raw = Buffer.from(pair.privateKey.subarray(pair.privateKey.length - KEY_BYTES));
    const publicBytes = Buffer.from(pair.publicKey.subarray(pair.publicKey.length - KEY_BYTES));
    const keyObject = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: raw.toString('base64url'), x: publicBytes.toString('base64url') }, format: 'jwk' });
    return new Curve25519PrivateKey(raw, keyObject, publicBytes);
  }

  static fromBytes(raw: Uint8Array): Curve25519PrivateKey {
    if (raw.length !== KEY_BYTES) throw new KeyParseError(`private key: want ${KEY_BYTES} bytes, got ${raw.length}`);
    const copy = Buffer.from(raw);
    const keyObject = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, copy]), format: 'der', type: 'pkcs8' });
    const x = createPublicKey(keyObject).export({ format: 'jwk' }).x!;
    return new Curve25519PrivateKey(copy, keyObject, Buffer.from(x, 'base64url'));
  }

  /** Parses `privkey:<64 hex>` (Tailscale's on-disk form). */
  static fromFileText(text: string): Curve25519PrivateKey {
    const trimmed = text.trim();
    if (!trimmed.startsWith('privkey:') || !HEX64.test(trimmed.slice(8))) {
      throw new KeyParseError('private key: want "privkey:" followed by 64 hex digits');
    }
    return Curve25519PrivateKey.fromBytes(Buffer.from(trimmed.slice(8), 'hex'));
  }

  toFileText(): string {
    return `privkey:${this.#raw.toString('hex')}`;
  }

  /** The raw scalar, for code that must hand it to a library (NaCl box). */
  rawBytes(): Buffer {
    return Buffer.from(this.#raw);
  }

  publicKey<R extends KeyRole>(role: R): KeyOfRole[R] {
    return publicKeyFromBytes(role, this.publicBytes);
  }

  /**
   * X25519(this, peer). Throws on an all-zero result (a low-order peer point), as Go's
   * curve25519.X25519 does.
   */
  sharedSecret(peerPublic: Uint8Array): Buffer {
    if (peerPublic.length !== KEY_BYTES) throw new KeyParseError(`x25519 peer key: want ${KEY_BYTES} bytes, got ${peerPublic.length}`);
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(peerPublic).toString('base64url') }, format: 'jwk' });
    const secret = diffieHellman({ privateKey: this.#keyObject, publicKey });
    if (secret.every((b) => b === 0)) throw new KeyParseError('x25519: low-order peer key (all-zero shared secret)');
    return secret;
  }
}


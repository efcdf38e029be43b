// The server's private keys shared by every instance (docs/ha.md): stored in ha_keys, encrypted
// with AES-256-GCM under a key derived from ha.secret, so a client trusts whichever instance the
// load balancer picks, and a stolen database yields no key without the secret.
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { Curve25519PrivateKey } from '../key/index.js';
import type { Store } from '../store/index.js';
import { HaErrors, haError } from './errors.js';

/** Purpose-bound salts: the same secret yields unrelated keys for encryption and the DERP mesh. */
const ENCRYPTION_SALT = 'headway-ha-keys-v1';
const MESH_SALT = 'headway-ha-derp-mesh-v1';

export function encryptionKey(secret: string): Buffer {
  return scryptSync(secret, ENCRYPTION_SALT, 32);
}

/** The DERP mesh key every instance derives from the shared secret (64 hex, as Tailscale's). */
export function meshKey(secret: string): string {
  return scryptSync(secret, MESH_SALT, 32).toString('hex');
}

export function sealText(key: Buffer, text: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

/** Undefined when the ciphertext was not sealed with `key` (another secret) or is damaged. */
export function openText(key: Buffer, sealed: string): string | undefined {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < 28) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/**
 * The named key, created by whichever instance asks first (INSERT ... ON CONFLICT DO NOTHING,
 * then read back: two instances starting at once end up with the same key).
 */
export async function loadOrCreateSharedKey(store: Store, name: 'noise' | 'derp', secret: string): Promise<Curve25519PrivateKey> {
  const key = encryptionKey(secret);
  let sealed = await store.read.ha.getKey(name);
  if (sealed === undefined) {
    const fresh = sealText(key, Curve25519PrivateKey.generate().toFileText());
    sealed = await store.transaction((tx) => tx.ha.putKeyIfAbsent(name, fresh));
  }
  const text = openText(key, sealed);
  if (text === undefined) {
    throw haError(HaErrors.SECRET_MISMATCH, `the shared ${name} private key in the database does not open with this instance's ha.secret; every instance needs the same secret`);
  }
  return Curve25519PrivateKey.fromFileText(text);
}

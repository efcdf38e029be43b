// Pre-auth keys and API keys: a public prefix to find the row, a random secret, and only a
// SHA-256 of the whole key stored. The secrets are 238 random bits, so a slow hash (scrypt,
// bcrypt) would add no protection against guessing and would cost every API call; SHA-256
// keeps a stolen database from yielding usable keys.
//
//   pre-auth key:  hwkey-auth-<prefix 12>-<secret 40>   (like Tailscale's tskey-auth-...)
//   API key:       hwk_<prefix 12>_<secret 40>
//
// Both use only [0-9A-Za-z] inside, so a key never contains "--TL" (the client would read it as
// a tailnet-lock wrapped key) and never starts with "tskey-client-" (the client's OAuth flow).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const KEY_PREFIX_CHARS = 12;
export const KEY_SECRET_CHARS = 40;

export const PRE_AUTH_KEY_TAG = 'hwkey-auth-';
export const API_KEY_TAG = 'hwk_';

/** Uniform base62 text: bytes >= 248 are rejected so that `byte % 62` has no bias. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte >= 248) continue;
      out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function hashKey(keyText: string): string {
  return createHash('sha256').update(keyText, 'utf8').digest('hex');
}

/** Constant-time comparison of a presented key with a stored hash. */
export function keyMatchesHash(keyText: string, storedHash: string): boolean {
  const presented = createHash('sha256').update(keyText, 'utf8').digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

export interface NewKeyText {
  prefix: string;
  /** The whole key, shown once. */
  text: string;
  hash: string;
}

function newKey(format: (prefix: string, secret: string) => string): NewKeyText {
  const prefix = randomBase62(KEY_PREFIX_CHARS);
  const text = format(prefix, randomBase62(KEY_SECRET_CHARS));
  return { prefix, text, hash: hashKey(text) };
}

export function newPreAuthKey(): NewKeyText {
  return newKey((prefix, secret) => `${PRE_AUTH_KEY_TAG}${prefix}-${secret}`);
}

export function newApiKey(): NewKeyText {
  return newKey((prefix, secret) => `${API_KEY_TAG}${prefix}_${secret}`);
}

const PRE_AUTH_KEY_RE = new RegExp(`^${PRE_AUTH_KEY_TAG}([0-9A-Za-z]{${KEY_PREFIX_CHARS}})-[0-9A-Za-z]{${KEY_SECRET_CHARS}}$`);
const API_KEY_RE = new RegExp(`^${API_KEY_TAG}([0-9A-Za-z]{${KEY_PREFIX_CHARS}})_[0-9A-Za-z]{${KEY_SECRET_CHARS}}$`);

/**
 * headscale 0.23-0.27 made pre-auth keys of 48 lowercase hex digits and stored them in the clear;
 * `headway import headscale` carries them over as hashes under this prefix form, so the devices
 * and scripts that hold them keep working. The `hs:` cannot occur in our base62 prefixes.
 */
const HEADSCALE_LEGACY_KEY_RE = /^[0-9a-f]{48}$/;
export const HEADSCALE_LEGACY_PREFIX_CHARS = 12;

/** The stored prefix of a legacy headscale pre-auth key, or undefined when `text` is not one. */
export function headscaleLegacyKeyPrefix(text: string): string | undefined {
  return HEADSCALE_LEGACY_KEY_RE.test(text) ? `hs:${text.slice(0, HEADSCALE_LEGACY_PREFIX_CHARS)}` : undefined;
}

/** The prefix of a well-formed pre-auth key (ours or an imported headscale one), or undefined. */
export function preAuthKeyPrefix(text: string): string | undefined {
  return PRE_AUTH_KEY_RE.exec(text)?.[1] ?? headscaleLegacyKeyPrefix(text);
}

/** The prefix of a well-formed API key, or undefined. */
export function apiKeyPrefix(text: string): string | undefined {
  return API_KEY_RE.exec(text)?.[1];
}

/**
 * The bare prefix from what a user may type to name an API key: `AbC123xyz789`, `hwk_AbC123xyz789`,
 * `hwk_AbC123xyz789_***` or the whole key.
 */
export function normaliseApiKeyPrefix(text: string): string {
  let rest = text.trim();
  if (rest.startsWith(API_KEY_TAG)) rest = rest.slice(API_KEY_TAG.length);
  const underscore = rest.indexOf('_');
  return underscore === -1 ? rest : rest.slice(0, underscore);
}

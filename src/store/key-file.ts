// The server's private keys on disk, in Tailscale's text form `privkey:<64 hex>` (headscale's
// too, so its key files can be reused). Created once with mode 0600 and never overwritten: a new
// key would make every client distrust the server.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Curve25519PrivateKey, KeyParseError } from '../key/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { StoreErrors, storeError } from './errors.js';

function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
}

async function readKeyFile(path: string): Promise<Curve25519PrivateKey | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw storeError(StoreErrors.keyFileUnusable, `${path}: cannot read the private key file: ${errorCode(err) || String(err)}`, err);
  }
  try {
    return Curve25519PrivateKey.fromFileText(text);
  } catch (err) {
    if (!(err instanceof KeyParseError)) throw err;
    // Never echo the content: it may be a key of another format.
    throw storeError(
      StoreErrors.keyFileInvalid,
      `${path}: not a private key file (want "privkey:" followed by 64 hex digits, found ${Buffer.byteLength(text)} bytes); it was left untouched`,
    );
  }
}

/**
 * Returns the key stored at `path`, creating the file (and its directory, mode 0700) with a new
 * key on first use. The file is written under a temporary name and linked into place, so a crash
 * never leaves a half-written key, and two processes starting at once end up with the same key.
 */
/** Writes `key` to a new file `temporary` (never an existing one), mode 0600, synced to disk. */
async function writeNewKeyFile(path: string, temporary: string, key: Curve25519PrivateKey): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(`${key.toFileText()}\n`, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function loadOrCreatePrivateKey(path: string): Promise<Curve25519PrivateKey> {
  const existing = await readKeyFile(path);
  if (existing !== undefined) return existing;

  const key = Curve25519PrivateKey.generate();
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeNewKeyFile(path, temporary, key);
    try {
      await link(temporary, path);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      // Another process created it first: use theirs.
      const theirs = await readKeyFile(path);
      if (theirs === undefined) throw err;
      return theirs;
    }
    return key;
  } catch (err) {
    if (err instanceof HeadwayError) throw err;
    throw storeError(StoreErrors.keyFileUnusable, `${path}: cannot create the private key file: ${errorCode(err) || String(err)}`, err);
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

/**
 * Puts `key` at `path`, replacing a key that is there (kept beside it as `<path>.replaced-<ms>`),
 * for `headway import`, which must take over another server's key so its clients keep trusting
 * the server. Written under a temporary name and renamed, mode 0600.
 */
export async function replacePrivateKey(path: string, key: Curve25519PrivateKey): Promise<{ replaced: string | null }> {
  const current = await readKeyFile(path).catch(() => undefined);
  if (current !== undefined && current.toFileText() === key.toFileText()) return { replaced: null };
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeNewKeyFile(path, temporary, key);
    let replaced: string | null = null;
    if (current !== undefined) {
      replaced = `${path}.replaced-${Date.now()}`;
      await link(path, replaced);
    }
    await rename(temporary, path);
    return { replaced };
  } catch (err) {
    throw storeError(StoreErrors.keyFileUnusable, `${path}: cannot write the private key file: ${errorCode(err) || String(err)}`, err);
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

/** The key stored at `path`, or undefined when there is no file (a bad file is an error). */
export function readPrivateKeyFile(path: string): Promise<Curve25519PrivateKey | undefined> {
  return readKeyFile(path);
}

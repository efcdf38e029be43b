// The server's private keys on disk, in Tailscale's text form `privkey:<64 hex>` (headscale's
// too, so its key files can be reused). Created once with mode 0600 and never overwritten: a new
// key would make every client distrust the server.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
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
export async function loadOrCreatePrivateKey(path: string): Promise<Curve25519PrivateKey> {
  const existing = await readKeyFile(path);
  if (existing !== undefined) return existing;

  const key = Curve25519PrivateKey.generate();
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(`${key.toFileText()}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
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

// Test support (never imported by production code): where the shared reference vectors are.
// $HEADWAY_SHARED_DIR/vectors, else a `shared/vectors` directory above the checkout (the
// workplace layout: ../shared next to the repository), else the compressed copy in
// test/fixtures, extracted once per archive version into the temporary directory.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decompress } from 'zstd-napi';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/src/util -> repository root. */
const repoRoot = resolve(here, '..', '..', '..');
const ARCHIVE = join(repoRoot, 'test', 'fixtures', 'shared-vectors.tar.zst');

let cached: string | null = null;

/** The directory holding `noise/`, `tailscale-saas/`, `client-1.34.2/`, `client-1.78.3/`. */
export function sharedVectorsDir(): string {
  if (cached !== null) return cached;
  const fromEnv = process.env['HEADWAY_SHARED_DIR'];
  if (fromEnv !== undefined && fromEnv !== '') return (cached = join(fromEnv, 'vectors'));
  for (let dir = repoRoot; ; dir = resolve(dir, '..')) {
    const candidate = join(dir, 'shared', 'vectors');
    if (existsSync(join(candidate, 'tailscale-saas'))) return (cached = candidate);
    if (resolve(dir, '..') === dir) break;
  }
  return (cached = extractArchive());
}

function extractArchive(): string {
  const archive = readFileSync(ARCHIVE);
  const digest = createHash('sha256').update(archive).digest('hex').slice(0, 16);
  const target = join(tmpdir(), `headway-vectors-${digest}`);
  if (existsSync(join(target, 'vectors', 'tailscale-saas'))) return join(target, 'vectors');
  // Extract beside the target, then rename: concurrent test processes never see half a tree.
  const staging = `${target}.${process.pid}.${Date.now()}`;
  const tar = decompress(archive);
  // GNU tar stores a name longer than 100 bytes in a preceding 'L' entry, pax in an 'x' entry.
  let longName: string | null = null;
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const name = cString(header, 0, 100);
    const prefix = cString(header, 345, 155);
    const size = parseInt(cString(header, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    const body = tar.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = cString(body, 0, body.length);
      continue;
    }
    if (type === 'x') {
      const match = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      if (match) longName = match[1]!;
      continue;
    }
    const path = longName ?? (prefix === '' ? name : `${prefix}/${name}`);
    longName = null;
    const dest = resolve(staging, path);
    if (!dest.startsWith(staging + sep)) throw new Error(`vector archive: entry ${JSON.stringify(path)} escapes the target`);
    if (type === '5') mkdirSync(dest, { recursive: true });
    else if (type === '0' || type === '\0') {
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, body);
    }
  }
  try {
    renameSync(staging, target);
  } catch {
    // Another process got there first; its copy is identical.
    rmSync(staging, { recursive: true, force: true });
  }
  return join(target, 'vectors');
}

function cString(buffer: Buffer, start: number, length: number): string {
  const slice = buffer.subarray(start, start + length);
  const end = slice.indexOf(0);
  return slice.subarray(0, end === -1 ? slice.length : end).toString('utf8');
}

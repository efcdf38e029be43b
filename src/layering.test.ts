// Guards the layout: every import between parts follows the table in DEVELOPERS.md (data flows
// store -> state -> policy index -> mapper -> sessions, leaves import nothing of ours),
// production code never imports a testing.ts, and the engine has no `any`.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled to dist/src; the sources sit at the same relative place under the repo root.
const srcRoot = resolve(here, '..', '..', 'src');

const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  key: [],
  tailcfg: ['key'],
  model: ['key', 'tailcfg'],
  util: [],
  log: [],
  config: ['util', 'log', 'key', 'tailcfg'],
  store: ['model', 'config', 'util', 'log', 'key', 'tailcfg'],
  state: ['store', 'model', 'log', 'key', 'tailcfg', 'util'],
  policy: ['model', 'tailcfg', 'util', 'key', 'log'],
  dns: ['model', 'tailcfg', 'config', 'util'],
  mapper: ['state', 'policy', 'dns', 'tailcfg', 'model', 'key', 'util', 'log'],
  noise: ['key', 'util', 'log', 'tailcfg'],
  control: ['noise', 'mapper', 'state', 'policy', 'dns', 'tailcfg', 'model', 'key', 'util', 'log', 'config'],
  derp: ['key', 'tailcfg', 'config', 'util', 'log'],
  ha: ['store', 'state', 'config', 'model', 'key', 'log', 'util', 'client'],
  api: ['state', 'policy', 'model', 'config', 'log', 'util', 'key', 'tailcfg', 'webhooks', 'web-session'],
  identity: ['state', 'model', 'config', 'log', 'util'],
  scim: ['state', 'model', 'config', 'log', 'util'],
  'web-session': ['state', 'store', 'model', 'util'],
  console: ['web-session', 'config', 'log', 'util'],
  server: ['*'],
  cli: ['server', 'config', 'policy', 'client', 'util', 'log', 'model', 'key', 'tailcfg', 'api', 'import'],
  import: ['store', 'policy', 'config', 'model', 'key', 'tailcfg', 'util', 'log'],
  webhooks: ['state', 'model', 'log', 'util'],
  client: ['noise', 'tailcfg', 'key', 'util'],
  bench: ['*'],
};

/** Folders where `any` is banned outright (DEVELOPERS.md: no `any` in the engine). */
const NO_ANY = ['state', 'policy', 'mapper', 'control', 'store', 'dns'];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

function partOf(file: string): string | null {
  const rel = relative(srcRoot, file);
  if (rel.startsWith('..')) return null;
  const first = rel.split(sep)[0]!;
  return first.endsWith('.ts') ? null : first;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

describe('layering', () => {
  const files = sourceFiles(srcRoot);

  it('finds the sources', () => {
    assert.ok(files.length > 20, `found only ${files.length} files under ${srcRoot}`);
  });

  it('imports only from parts upstream of each part', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = partOf(file);
      if (from === null || file.endsWith('.test.ts') || file.endsWith('.bench.ts') || file.endsWith('testing.ts')) continue;
      const allowed = ALLOWED[from];
      if (allowed === undefined) {
        violations.push(`${relative(srcRoot, file)}: part "${from}" is not in the layering table`);
        continue;
      }
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(IMPORT_RE)) {
        const spec = match[1] ?? match[2]!;
        if (!spec.startsWith('.')) continue;
        const to = partOf(resolve(dirname(file), spec));
        if (to === null || to === from || allowed.includes('*') || allowed.includes(to)) continue;
        violations.push(`${relative(srcRoot, file)}: ${from} may not import ${to} (${spec})`);
      }
    }
    assert.deepEqual(violations, []);
  });

  it('never imports a testing.ts from production code', () => {
    const violations: string[] = [];
    for (const file of files) {
      if (file.endsWith('.test.ts') || file.endsWith('testing.ts') || file.endsWith('.bench.ts')) continue;
      if (partOf(file) === 'bench') continue;
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(IMPORT_RE)) {
        const spec = match[1] ?? match[2]!;
        if (/(^|\/)testing\.js$/.test(spec)) violations.push(`${relative(srcRoot, file)} imports ${spec}`);
      }
    }
    assert.deepEqual(violations, []);
  });

  it('has no `any` in the engine', () => {
    const violations: string[] = [];
    for (const file of files) {
      const part = partOf(file);
      if (part === null || !NO_ANY.includes(part)) continue;
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '');
        if (/(:\s*any\b|\bas\s+any\b|<any>|any\[\])/.test(code)) violations.push(`${relative(srcRoot, file)}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(violations, []);
  });
});

// Guard: nothing outside store/ reaches past its index (rows must not leave the folder); test
// helpers (testing.ts) may use the store's test helpers. src/layering.test.ts keeps testing.ts
// out of production code.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const IMPORT = /\bfrom\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/g;

function importsOf(path: string): string[] {
  return [...readFileSync(path, 'utf8').matchAll(IMPORT)].map((match) => match[1] ?? match[2]!);
}

describe('store imports', () => {
  const files = sourceFiles(SRC);

  it('lets other parts import the store only through its index', () => {
    const offenders = files
      .filter((path) => !path.includes('/src/store/') && !path.endsWith('.test.ts') && !path.endsWith('.bench.ts') && !path.endsWith('/testing.ts'))
      .flatMap((path) => importsOf(path).filter((spec) => /\/store\/(?!index\.js$|types\.js$)/.test(spec)).map((spec) => `${relative(SRC, path)}: ${spec}`));
    assert.deepEqual(offenders, []);
  });
});

// Guards the policy engine's layout: no import cycle among the policy part's production files
// (the index used to import diff.ts and tests.ts, which import it), so each part of the index
// can be read and changed without the others.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled to dist/src/policy/index; the sources sit at the same place under the repo root.
const policyRoot = resolve(here, '..', '..', '..', '..', 'src', 'policy');

function productionFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...productionFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.bench.ts') && name !== 'testing.ts') out.push(path);
  }
  return out;
}

/** Relative imports of a file, type-only ones included (they are edges a reader follows too). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms)) {
    out.push(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  }
  return out;
}

describe('policy engine layout', () => {
  it('has no import cycle among its production files', () => {
    const files = productionFiles(policyRoot);
    assert.ok(files.length > 10, `found the sources at ${policyRoot}`);
    const known = new Set(files);
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => known.has(i))]));
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(policyRoot, f)).join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const next of graph.get(file)!) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const f of files) visit(f, []);
    assert.deepEqual(cycles, []);
  });
});

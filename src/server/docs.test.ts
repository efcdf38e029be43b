import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorTables } from '../util/headway-error.js';
import { GENERATED_DOCS } from './docs.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('generated reference docs', () => {
  for (const doc of GENERATED_DOCS) {
    it(`keeps ${doc.path} in step with the code (run npm run docs after a change)`, () => {
      assert.equal(readFileSync(join(repoRoot, doc.path), 'utf8'), doc.render());
    });
  }

  it('never gives two errors the same code', () => {
    const seen = new Map<string, number>();
    for (const table of errorTables) for (const spec of Object.values(table)) seen.set(spec.code, (seen.get(spec.code) ?? 0) + 1);
    assert.deepEqual([...seen].filter(([, count]) => count > 1), []);
    assert.ok(seen.size > 30, `only ${seen.size} codes found: some part is not imported`);
  });
});

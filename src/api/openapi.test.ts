// The generated artefacts stay true: the OpenAPI document covers every route and resolves every
// reference, and docs/api.md holds the current endpoint reference.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorTables } from '../util/headway-error.js';
import { ApiErrors } from './errors.js';
import { apiRoutes } from './handler.js';
import { buildOpenApiDocument } from './openapi.js';
import { REFERENCE_BEGIN, REFERENCE_END, renderApiReference } from './reference.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DOCS = resolve(repoRoot, 'docs', 'api.md');

function collectRefs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) collectRefs(v, out);
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else collectRefs(v, out);
    }
  }
  return out;
}

describe('OpenAPI document', () => {
  const routes = apiRoutes();
  const doc = buildOpenApiDocument(routes, { version: 'test' }) as {
    openapi: string;
    paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown>; security?: unknown[] }>>;
    components: Record<string, Record<string, unknown>>;
  };

  it('is OpenAPI 3.1 with one operation per route', () => {
    assert.equal(doc.openapi, '3.1.0');
    const operations = Object.values(doc.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));
    assert.deepEqual(operations.sort(), routes.map((r) => r.operationId).sort());
    assert.equal(new Set(operations).size, operations.length, 'operation ids are unique');
  });

  it('resolves every $ref', () => {
    for (const ref of collectRefs(doc)) {
      const [, section, name] = /^#\/components\/(schemas|responses)\/(.+)$/.exec(ref) ?? [];
      assert.ok(section && name && doc.components[section]?.[name], `unresolved ${ref}`);
    }
  });

  it('documents 401 on every route but the public ones (this document, who am I, sign-in options)', () => {
    const publicOperations = ['getOpenApi', 'getSession', 'getSignInOptions'];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (publicOperations.includes(op.operationId)) assert.deepEqual(op.security, []);
        else assert.ok('401' in op.responses, `${method} ${path}`);
      }
    }
  });

  it('registers the API error codes for docs/errors.md', () => {
    assert.ok(errorTables.includes(ApiErrors));
  });
});

describe('docs/api.md', () => {
  it('holds the current generated endpoint reference (HEADWAY_WRITE_DOCS=1 rewrites it)', () => {
    const text = readFileSync(DOCS, 'utf8');
    const start = text.indexOf(REFERENCE_BEGIN);
    const end = text.indexOf(REFERENCE_END);
    assert.ok(start >= 0 && end > start, `docs/api.md lacks the generated section markers`);
    const current = text.slice(start, end + REFERENCE_END.length);
    const wanted = renderApiReference(apiRoutes());
    if (current !== wanted && process.env['HEADWAY_WRITE_DOCS'] === '1') {
      writeFileSync(DOCS, text.slice(0, start) + wanted + text.slice(end + REFERENCE_END.length));
      return;
    }
    assert.equal(current, wanted, 'docs/api.md is stale: run `npx tsc -p . && HEADWAY_WRITE_DOCS=1 node --test dist/src/api/openapi.test.js`');
  });
});

// The endpoint reference of docs/api.md, rendered from the route table, so the documentation
// is generated from the same declarations as validation and the OpenAPI document. A test keeps
// the file current (set HEADWAY_WRITE_DOCS=1 to rewrite it).
import type { JsonSchema } from './openapi.js';
import { buildOpenApiDocument, routeParameters, toJsonSchema } from './openapi.js';
import { ROUTE_GROUPS, type Route } from './route.js';

export const REFERENCE_BEGIN = '<!-- BEGIN GENERATED: endpoint reference (src/api/reference.ts) -->';
export const REFERENCE_END = '<!-- END GENERATED: endpoint reference -->';

const COMPONENT = '#/components/schemas/';

/** A short, readable type for a JSON schema: `string`, `Node[]`, `string or null`. */
export function typeText(schema: JsonSchema | undefined): string {
  if (schema === undefined) return 'any';
  const ref = schema['$ref'];
  if (typeof ref === 'string') return ref.startsWith(COMPONENT) ? ref.slice(COMPONENT.length) : ref;
  const anyOf = schema['anyOf'] ?? schema['oneOf'];
  if (Array.isArray(anyOf)) return [...new Set((anyOf as JsonSchema[]).map(typeText))].join(' or ');
  if (Array.isArray(schema['enum'])) return (schema['enum'] as unknown[]).map((v) => JSON.stringify(v)).join(' \\| ');
  if ('const' in schema) return JSON.stringify(schema['const']);
  const type = schema['type'];
  if (type === 'array') return `${typeText(schema['items'] as JsonSchema | undefined)}[]`;
  if (type === 'object') {
    const properties = schema['properties'] as Record<string, JsonSchema> | undefined;
    if (properties === undefined || Object.keys(properties).length === 0) return 'object';
    return `{ ${Object.entries(properties).map(([k, v]) => `${k}: ${typeText(v)}`).join(', ')} }`;
  }
  if (schema['format'] === 'date-time') return 'time';
  if (Array.isArray(type)) return type.join(' or ');
  return typeof type === 'string' ? type : 'any';
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function fieldRows(schema: JsonSchema): string[] {
  const properties = (schema['properties'] ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema['required'] ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const description = typeof property['description'] === 'string' ? property['description'] : '';
    const fallback = 'default' in property ? `default \`${JSON.stringify(property['default'])}\`` : '';
    const req = required.has(name) && !('default' in property) ? 'yes' : fallback || 'no';
    return `| \`${name}\` | ${cell(typeText(property))} | ${cell(req)} | ${cell(description)} |`;
  });
}

export function renderApiReference(routes: readonly Route[]): string {
  const components: Record<string, JsonSchema> = {};
  const out: string[] = [REFERENCE_BEGIN, '', '## Endpoints', '', '| Method | Path | What it does |', '|---|---|---|'];
  for (const route of routes) {
    const scope = route.scope === 'tailnet' ? ' (`?tailnet=`)' : '';
    out.push(`| ${route.method} | [\`/api/v1${route.path}\`](#${route.operationId.toLowerCase()}) | ${cell(route.summary)}${scope} |`);
  }
  for (const group of ROUTE_GROUPS) {
    const inGroup = routes.filter((r) => r.group === group);
    if (inGroup.length === 0) continue;
    out.push('', `## ${group}`);
    for (const route of inGroup) {
      out.push('', `<a id="${route.operationId.toLowerCase()}"></a>`, `### ${route.method} /api/v1${route.path}`, '', `${route.summary}.`);
      if (route.description !== '') out.push('', route.description);
      const parameters = routeParameters(route, components);
      if (parameters.length > 0) {
        out.push('', '| Parameter | In | Type | Required | Description |', '|---|---|---|---|---|');
        for (const p of parameters) {
          const fallback = 'default' in p.schema ? `default \`${JSON.stringify(p.schema['default'])}\`` : 'no';
          out.push(`| \`${p.name}\` | ${p.in} | ${cell(typeText(p.schema))} | ${p.required ? 'yes' : fallback} | ${cell(p.description)} |`);
        }
      }
      if (route.body !== undefined) {
        const body = toJsonSchema(route.body, 'input', components);
        out.push('', 'Body (JSON):', '', '| Field | Type | Required | Description |', '|---|---|---|---|', ...fieldRows(body));
      }
      const response = toJsonSchema(route.response, 'output', components);
      const auth = route.public ? 'No API key needed.' : '';
      const errors = [...new Set([...(route.public ? [] : [401]), 400, ...route.errors])].sort((a, b) => a - b).join(', ');
      out.push('', `Answers \`${route.status}\` with ${cell(typeText(response))}. Errors: ${errors}. ${auth}`.trimEnd());
    }
  }
  // Walk the full document so every component (including Error) is collected.
  const document = buildOpenApiDocument(routes, { version: 'docs' }) as { components: { schemas: Record<string, JsonSchema> } };
  out.push('', '## Objects');
  for (const [name, schema] of Object.entries(document.components.schemas)) {
    out.push('', `### ${name}`);
    if (typeof schema['description'] === 'string') out.push('', schema['description']);
    out.push('', '| Field | Type | Always present | Description |', '|---|---|---|---|', ...fieldRows(schema));
  }
  out.push('', REFERENCE_END);
  return out.join('\n');
}

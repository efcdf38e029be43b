// The OpenAPI 3.1 document, generated from the route table: the same zod schemas that validate
// requests describe them here, so the document cannot drift from the code.
import { z } from 'zod';
import { ROUTE_GROUPS, type Route, type RouteGroup } from './route.js';
import { errorSchema } from './schemas.js';

export type JsonSchema = Record<string, unknown>;

const COMPONENT_PREFIX = '#/components/schemas/';

const GROUP_DESCRIPTIONS: Readonly<Record<RouteGroup, string>> = {
  meta: 'This document.',
  session: 'Web console sessions: who is signed in, sign-out, sign-in options and sign-in links. A console session (cookie) may call any endpoint an API key may; its changes need the X-CSRF-Token header.',
  tailnets: 'Tailnets: isolated networks served by one server. Server-wide.',
  users: 'Users of a tailnet.',
  nodes: 'Nodes (devices) of a tailnet.',
  routes: 'Subnet and exit routes of nodes.',
  preauthkeys: 'Pre-auth keys: register nodes without an interactive login.',
  apikeys: 'API keys for the admin API over TCP. Server-wide.',
  policy: 'The tailnet access policy (HuJSON).',
  audit: 'The audit log of admin changes.',
  settings: 'Read-only server settings: DNS and the DERP map.',
  events: 'Live changes as server-sent events.',
};

const ERROR_RESPONSES: Readonly<Record<number, string>> = {
  400: 'The request is invalid; the message names the field.',
  401: 'No API key, or an unknown, expired or revoked one (TCP only).',
  404: 'The tailnet, user, node or key does not exist.',
  405: 'The path exists but not with this method.',
  409: 'The change conflicts with the current state (name taken, user still owns nodes, policy managed by a file, ...).',
  413: 'The body is larger than 1 MiB.',
  415: 'The body is not application/json.',
  500: 'The server failed; the log has the details under the request id.',
};

/** Converts a schema; named components found inside it are collected into `components`. */
export function toJsonSchema(schema: z.ZodType, io: 'input' | 'output', components: Record<string, JsonSchema>): JsonSchema {
  const converted = z.toJSONSchema(schema, { io, unrepresentable: 'any', reused: 'inline' }) as JsonSchema;
  const defs = (converted['$defs'] ?? {}) as Record<string, JsonSchema>;
  delete converted['$defs'];
  delete converted['$schema'];
  for (const [name, def] of Object.entries(defs)) components[name] ??= tidy(def) as JsonSchema;
  return tidy(converted) as JsonSchema;
}

/** Points $refs at components and drops zod's long date-time regex (the format says it all). */
function tidy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(tidy);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (key === '$ref' && typeof inner === 'string') out[key] = inner.replace(/^#\/\$defs\//, COMPONENT_PREFIX);
    else if (key === 'pattern' && (value as Record<string, unknown>)['format'] === 'date-time') continue;
    else out[key] = tidy(inner);
  }
  return out;
}

/** Every path and query parameter of a route, for docs and OpenAPI. */
export function routeParameters(route: Route, components: Record<string, JsonSchema>): Array<{
  name: string; in: 'path' | 'query'; required: boolean; description: string; schema: JsonSchema;
}> {
  const out: Array<{ name: string; in: 'path' | 'query'; required: boolean; description: string; schema: JsonSchema }> = [];
  for (const [where, schema] of [['path', route.params], ['query', route.query]] as const) {
    if (schema === undefined) continue;
    const json = toJsonSchema(schema, 'input', components);
    const properties = (json['properties'] ?? {}) as Record<string, JsonSchema>;
    const required = new Set((json['required'] ?? []) as string[]);
    for (const [name, property] of Object.entries(properties)) {
      const { description, ...rest } = property;
      out.push({ name, in: where, required: where === 'path' || required.has(name), description: typeof description === 'string' ? description : '', schema: rest });
    }
  }
  return out;
}

export interface OpenApiOptions {
  version: string;
}

export function buildOpenApiDocument(routes: readonly Route[], options: OpenApiOptions): JsonSchema {
  const components: Record<string, JsonSchema> = {};
  const paths: Record<string, Record<string, unknown>> = {};
  const usedStatuses = new Set<number>();
  for (const route of routes) {
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      tags: [route.group],
      summary: route.summary,
    };
    if (route.description !== '') operation['description'] = route.description;
    const parameters = routeParameters(route, components);
    if (parameters.length > 0) operation['parameters'] = parameters;
    if (route.body !== undefined) {
      const schema = toJsonSchema(route.body, 'input', components);
      const required = Array.isArray(schema['required']) && (schema['required'] as unknown[]).length > 0;
      operation['requestBody'] = { required, content: { 'application/json': { schema } } };
    }
    const responses: Record<string, unknown> = {
      [String(route.status)]: {
        description: route.summary,
        content: route.stream
          ? { 'text/event-stream': { schema: { type: 'string', description: 'Server-sent events; each `data:` line is a JSON object.' } } }
          : { 'application/json': { schema: toJsonSchema(route.response, 'output', components) } },
      },
    };
    const statuses = new Set<number>([...(route.public ? [] : [401]), ...(hasInput(route) ? [400] : []), ...route.errors, 500]);
    for (const status of [...statuses].sort((a, b) => a - b)) {
      usedStatuses.add(status);
      responses[String(status)] = { $ref: `#/components/responses/E${status}` };
    }
    operation['responses'] = responses;
    if (route.public) operation['security'] = [];
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  toJsonSchema(errorSchema, 'output', components);
  const responses: Record<string, unknown> = {};
  for (const status of [...new Set([...usedStatuses, 405, 413, 415])].sort((a, b) => a - b)) {
    responses[`E${status}`] = {
      description: ERROR_RESPONSES[status] ?? `HTTP ${status}`,
      content: { 'application/json': { schema: { $ref: `${COMPONENT_PREFIX}Error` } } },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Headway admin API',
      version: options.version,
      description:
        'Administer a Headway server: tailnets, users, nodes, routes, keys, policy and audit log. ' +
        'Over TCP every request needs `Authorization: Bearer <api key>` or a web console session cookie (changes then need ' +
        'the `X-CSRF-Token` header from GET /session); over the unix socket none is needed. ' +
        'Tailnet-scoped endpoints take `?tailnet=<name>` (default `default`). Errors are `{"error": {"code", "message", "request_id"}}`.',
    },
    servers: [{ url: '/api/v1' }],
    security: [{ apiKey: [] }],
    tags: ROUTE_GROUPS.map((name) => ({ name, description: GROUP_DESCRIPTIONS[name] })),
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'An API key from `headway apikeys create` (`hwk_...`).' },
      },
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
      responses,
    },
  };
}

function hasInput(route: Route): boolean {
  return route.body !== undefined || route.params !== undefined || route.query !== undefined;
}

/** What the /api/v2 document needs of a Tailscale-compatible route (api/v2/route.ts). */
export interface ApiV2RouteDoc {
  readonly operationId: string;
  readonly method: string;
  readonly path: string;
  readonly summary: string;
  readonly scope: string | null;
  readonly rawBody?: boolean;
  readonly body?: z.ZodType;
  readonly response?: z.ZodType;
}

/**
 * The OpenAPI document of /api/v2 (Tailscale's API, served at /api/v2/openapi.json): same
 * generator for schemas, Tailscale's auth (API key as Basic user name or Bearer, OAuth client
 * credentials) and error body `{"message"}`.
 */
export function buildApiV2OpenApiDocument(routes: readonly ApiV2RouteDoc[], options: OpenApiOptions): JsonSchema {
  const components: Record<string, JsonSchema> = {};
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const names = [...route.path.matchAll(/\{([A-Za-z_]+)\}/g)].map((m) => m[1]!);
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      tags: [route.path.startsWith('/oauth') ? 'oauth' : route.path.split('/').filter((p) => p !== '' && !p.startsWith('{') && p !== 'tailnet')[0] ?? 'meta'],
      summary: route.summary,
    };
    if (route.scope !== null) operation['description'] = `OAuth scope: \`${route.scope}\`${route.method === 'GET' ? ` or \`${route.scope}:read\`` : ''}.`;
    if (names.length > 0) {
      operation['parameters'] = names.map((name) => ({
        name, in: 'path', required: true, schema: { type: 'string' },
        ...(name === 'tailnet' ? { description: 'The tailnet name, or `-` for the credential\'s tailnet.' } : {}),
      }));
    }
    if (route.rawBody) {
      operation['requestBody'] = { required: false, content: { 'application/hujson': { schema: { type: 'string' } }, 'application/json': { schema: { type: 'object' } } } };
    } else if (route.body !== undefined) {
      operation['requestBody'] = { required: true, content: { 'application/json': { schema: toJsonSchema(route.body, 'input', components) } } };
    }
    operation['responses'] = {
      '200': { description: route.summary, ...(route.response !== undefined ? { content: { 'application/json': { schema: toJsonSchema(route.response, 'output', components) } } } : {}) },
      default: { description: 'Tailscale\'s error body', content: { 'application/json': { schema: { $ref: `${COMPONENT_PREFIX}V2Error` } } } },
    };
    if (route.scope === null) operation['security'] = [];
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  components['V2Error'] = { type: 'object', properties: { message: { type: 'string' }, data: { type: 'array', items: { type: 'object' } } }, required: ['message'] };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Headway: Tailscale API v2',
      version: options.version,
      description: 'The part of Tailscale\'s API v2 that the Terraform provider and tailscale-client-go-v2 use. ' +
        'Authenticate with a Headway API key as the Basic user name or as a Bearer token, or with an OAuth access token from /oauth/token. ' +
        'The tailnet `-` is the credential\'s tailnet (the default tailnet for API keys).',
    },
    servers: [{ url: '/api/v2' }],
    security: [{ basic: [] }, { bearer: [] }, { oauth: [] }],
    paths,
    components: {
      securitySchemes: {
        basic: { type: 'http', scheme: 'basic', description: 'API key as the user name, empty password.' },
        bearer: { type: 'http', scheme: 'bearer', description: 'API key or OAuth access token.' },
        oauth: { type: 'oauth2', flows: { clientCredentials: { tokenUrl: '/api/v2/oauth/token', scopes: {} } } },
      },
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}

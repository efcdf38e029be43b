// One declaration per endpoint (fastify's discipline without the framework): method, path,
// request schemas (path parameters, query, body) and response schema. The handler validates
// with them, the OpenAPI document and docs/api.md are generated from them, and the compiler
// checks each handler's result against its response schema.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config/index.js';
import type { TailnetId, UserId } from '../model/index.js';
import type { Actor, ServerState, TailnetState } from '../state/index.js';
import type { AuthenticatedSession, WebSessions } from '../web-session/index.js';
import { ApiValidationError } from './errors.js';
import { describeIssue } from './validation.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Resource groups, in the order the reference documents them. */
export const ROUTE_GROUPS = ['meta', 'session', 'tailnets', 'users', 'nodes', 'routes', 'preauthkeys', 'apikeys', 'policy', 'audit', 'settings', 'events'] as const;
export type RouteGroup = (typeof ROUTE_GROUPS)[number];

export interface ApiDeps {
  readonly state: ServerState;
  readonly config: Config;
  readonly logger: Logger;
  /** Milliseconds since the epoch; injectable so expiry can be tested. */
  readonly now: () => number;
  /** Browser sessions of the console. */
  readonly sessions: WebSessions;
  /** The URL clients and browsers use (sign-in links are built on it). */
  readonly serverUrl: string;
  /** The DERP map in force, for the settings page; absent in unit tests without DERP. */
  readonly derpMap?: () => unknown;
  /** Whether OIDC sign-in is configured (the identity part reports it). */
  readonly oidc?: () => { enabled: boolean; provider: string | null };
}

/** How a route picks its tailnet: `?tailnet=<name>`, `default` when absent. */
export type RouteScope = 'tailnet' | 'server';

/**
 * Who is asking, beyond the actor name: API keys and the unix socket are server admins; a
 * console session is bound to its tailnet and, for a member, to the member's own devices.
 */
export interface Viewer {
  readonly kind: 'api-key' | 'unix' | 'session' | 'anonymous';
  readonly admin: boolean;
  /** The signed-in user (console sessions of a user), else null. */
  readonly userId: UserId | null;
  /** A console session of a user may act only in its tailnet; null = any tailnet. */
  readonly tailnetId: TailnetId | null;
  /** The console session, when the request carries one. */
  readonly session: AuthenticatedSession | null;
}

export interface BaseContext {
  readonly deps: ApiDeps;
  readonly actor: Actor;
  readonly viewer: Viewer;
  /** Adds a response header (Set-Cookie on sign-out). */
  readonly setHeader: (name: string, value: string) => void;
  /** The request's remote address, for audit entries. */
  readonly from: string;
  /** The raw exchange, for streaming routes only (the handler answers JSON for the others). */
  readonly raw: { readonly req: IncomingMessage; readonly res: ServerResponse };
  readonly requestId: string;
  readonly logger: Logger;
}

export interface RouteContext<P, Q, B> extends BaseContext {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  /** The selected tailnet (`?tailnet=`), for tailnet-scoped routes. */
  readonly tailnet: TailnetState;
}

type ObjectSchema = z.ZodObject;

export interface RouteSpec<P extends ObjectSchema, Q extends ObjectSchema, B extends z.ZodType, R extends z.ZodType> {
  readonly operationId: string;
  readonly method: HttpMethod;
  /** Relative to /api/v1, with `{name}` path parameters. */
  readonly path: string;
  readonly group: RouteGroup;
  readonly summary: string;
  readonly description?: string;
  readonly scope: RouteScope;
  /** No API key needed even over TCP (the OpenAPI document). */
  readonly public?: boolean;
  /**
   * A console member (non-admin) may call it; the handler must then limit what it shows to the
   * member's own devices. Default false: admins only.
   */
  readonly members?: boolean;
  /** Server-sent events: the handler writes the stream itself (see events.ts). */
  readonly stream?: boolean;
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
  readonly response: R;
  readonly status?: 200 | 201;
  /** Error statuses this route answers besides 400/401/500, for the documentation. */
  readonly errors?: readonly number[];
  readonly handle: (ctx: RouteContext<z.output<P>, z.output<Q>, z.output<B>>) => Promise<z.output<R>>;
}

/** A declared route with its types erased, as the router and the generators see it. */
export interface Route {
  readonly operationId: string;
  readonly method: HttpMethod;
  readonly path: string;
  readonly group: RouteGroup;
  readonly summary: string;
  readonly description: string;
  readonly scope: RouteScope;
  readonly public: boolean;
  readonly members: boolean;
  readonly stream: boolean;
  readonly params: ObjectSchema | undefined;
  /** The declared query schema, with `tailnet` added for tailnet-scoped routes. */
  readonly query: ObjectSchema | undefined;
  readonly body: z.ZodType | undefined;
  readonly response: z.ZodType;
  readonly status: 200 | 201;
  readonly errors: readonly number[];
  /** Matches a path below /api/v1; returns the raw path parameters. */
  match(path: string): Record<string, string> | undefined;
  /**
   * Validates the raw request parts, resolves the tailnet, and runs the handler. `resolveTailnet`
   * is called with the validated name so that a missing tailnet is a 404 after validation.
   */
  run(
    raw: { params: Record<string, string>; query: Record<string, string>; body: unknown },
    base: BaseContext,
    resolveTailnet: (name: string) => TailnetState,
  ): Promise<unknown>;
}

export const tailnetQuery = z.string().min(1).default('default').describe('The tailnet to act on (default `default`).');

const EMPTY_OBJECT = z.strictObject({});

export function defineRoute<
  P extends ObjectSchema = typeof EMPTY_OBJECT,
  Q extends ObjectSchema = typeof EMPTY_OBJECT,
  B extends z.ZodType = z.ZodUndefined,
  R extends z.ZodType = z.ZodType,
>(spec: RouteSpec<P, Q, B, R>): Route {
  const names: string[] = [];
  const pattern = spec.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([a-z_]+)\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  const matcher = new RegExp(`^${pattern}$`);
  const query = spec.scope === 'tailnet'
    ? (spec.query ?? EMPTY_OBJECT).extend({ tailnet: tailnetQuery })
    : spec.query;
  return {
    operationId: spec.operationId,
    method: spec.method,
    path: spec.path,
    group: spec.group,
    summary: spec.summary,
    description: spec.description ?? '',
    scope: spec.scope,
    public: spec.public === true,
    members: spec.members === true,
    stream: spec.stream === true,
    params: spec.params,
    query,
    body: spec.body,
    response: spec.response,
    status: spec.status ?? 200,
    errors: spec.errors ?? [],
    match(path) {
      const found = matcher.exec(path);
      if (found === null) return undefined;
      const params: Record<string, string> = {};
      names.forEach((name, i) => {
        params[name] = found[i + 1]!;
      });
      return params;
    },
    async run(raw, base, resolveTailnet) {
      const params = validate(spec.params ?? EMPTY_OBJECT, raw.params, 'params');
      const queryValue = validate(query ?? EMPTY_OBJECT, raw.query, 'query') as Record<string, unknown>;
      const body = spec.body === undefined ? undefined : validate(spec.body, raw.body, 'body');
      const tailnet = spec.scope === 'tailnet' ? resolveTailnet(String(queryValue['tailnet'])) : undefined;
      const operationId = spec.operationId;
      return spec.handle({
        ...base,
        params: params as z.output<P>,
        query: queryValue as z.output<Q>,
        body: body as z.output<B>,
        get tailnet(): TailnetState {
          if (tailnet === undefined) throw new Error(`route ${operationId} is server-wide and has no tailnet`);
          return tailnet;
        },
      });
    },
  };
}

function validate(schema: z.ZodType, value: unknown, root: 'params' | 'query' | 'body'): unknown {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw new ApiValidationError(result.error.issues.slice(0, 5).map((issue) => describeIssue(issue, root, schema)));
}

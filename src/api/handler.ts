// The admin API's request handler, mounted by the server on the main TCP listener and on the
// admin unix socket. It owns everything between the socket and a route: request ids, the access
// log line, authentication, body limits, validation, and turning errors into JSON answers. No
// input can take the process down: every failure ends as a response.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config/index.js';
import { F } from '../log/index.js';
import type { Actor, ServerState } from '../state/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { CSRF_HEADER, WebSessionErrors, csrfMatches, remoteAddress } from '../web-session/index.js';
import { WebSessions } from '../web-session/index.js';
import { KeyedRateLimiter } from '../util/rate-limiter.js';
import { apiKeyRoutes } from './api-keys.js';
import { consoleRoutes } from './console.js';
import { eventRoutes } from './events.js';
import { settingsRoutes } from './settings.js';
import { auditRoutes } from './audit.js';
import { ApiKeyAuthenticator, UNIX_SOCKET_ACTOR } from './auth.js';
import { BODY_TIMEOUT_MS, checkDeclaredLength, MAX_BODY_BYTES, parseJsonBody, readBodyText } from './body.js';
import { ApiErrors, ApiValidationError, apiError } from './errors.js';
import { nodeRouteRoutes } from './node-routes.js';
import { nodeRoutes } from './nodes.js';
import { buildOpenApiDocument } from './openapi.js';
import { policyRoutes } from './policy.js';
import { preAuthKeyRoutes } from './pre-auth-keys.js';
import { defineRoute, type ApiDeps, type Route, type Viewer } from './route.js';
import type { ErrorJson } from './schemas.js';
import { tailnetRoutes } from './tailnets.js';
import { userRoutes } from './users.js';
import { createApiV2 } from './v2/index.js';

export const API_PREFIX = '/api/v1';
/** The audit log's "from" for changes over the admin unix socket (the CLI). */
export const LOCAL_ADDRESS = 'local';
export const API_VERSION = '1.0.0';

export type ApiTransport = 'tcp' | 'unix';

export interface ApiHandlerDeps {
  state: ServerState;
  config: Config;
  logger: Logger;
  now?: () => number;
  /**
   * Check every response against its declared schema and answer 500 when it differs. Tests turn
   * this on so that the OpenAPI document is proven true; production trusts the compiler.
   */
  validateResponses?: boolean;
  /** How long a request body may take to arrive; default 30 s. */
  bodyTimeoutMs?: number;
  /** Console sessions; default: a WebSessions over `state` with the default timeouts. */
  sessions?: WebSessions;
  /** The public URL (sign-in links); default config.serverUrl. */
  serverUrl?: string;
  derpMap?: () => unknown;
  oidc?: () => { enabled: boolean; provider: string | null };
}

export interface ApiHandler {
  /**
   * Handles a request if its path is under /api/v1 and returns true; returns false without
   * touching `req` or `res` otherwise.
   */
  handle(req: IncomingMessage, res: ServerResponse, transport: ApiTransport): Promise<boolean>;
  /** The route table (for docs and the CLI's reference). */
  readonly routes: readonly Route[];
}

const openApiRoute = (document: () => unknown): Route =>
  defineRoute({
    operationId: 'getOpenApi',
    method: 'GET',
    path: '/openapi.json',
    group: 'meta',
    scope: 'server',
    public: true,
    summary: 'This OpenAPI 3.1 document',
    response: z.record(z.string(), z.unknown()),
    async handle() {
      return document() as Record<string, unknown>;
    },
  });

/** Every route of the API, in documentation order. */
export function apiRoutes(document: () => unknown = () => ({})): readonly Route[] {
  return [
    openApiRoute(document),
    ...consoleRoutes,
    ...tailnetRoutes,
    ...userRoutes,
    ...nodeRoutes,
    ...nodeRouteRoutes,
    ...preAuthKeyRoutes,
    ...apiKeyRoutes,
    ...policyRoutes,
    ...auditRoutes,
    ...settingsRoutes,
    ...eventRoutes,
  ];
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** Keys pasted into a URL never reach the log whole. */
export function redactPath(path: string): string {
  return path
    .replace(/(hwkey-auth-[0-9A-Za-z]{12})-[0-9A-Za-z]+/g, '$1-***')
    .replace(/(hwk_[0-9A-Za-z]{12})_[0-9A-Za-z]+/g, '$1_***');
}

export function createApiHandler(input: ApiHandlerDeps): ApiHandler {
  // The server hands over a logger already bound to part=api; a bare one gets the binding here.
  const logger = input.logger.bindings()[F.part] === 'api' ? input.logger : input.logger.child({ [F.part]: 'api' });
  const now = input.now ?? Date.now;
  const deps: ApiDeps = {
    state: input.state, config: input.config, logger, now,
    sessions: input.sessions ?? new WebSessions(input.state, { now }),
    serverUrl: input.serverUrl ?? input.config.serverUrl,
    ...(input.derpMap !== undefined ? { derpMap: input.derpMap } : {}),
    ...(input.oidc !== undefined ? { oidc: input.oidc } : {}),
  };
  const authenticator = new ApiKeyAuthenticator(deps.state, deps.now, logger);
  // Counted before the key is checked, so guessing keys is limited too.
  const limiter = new KeyedRateLimiter({ perMinute: deps.config.limits.apiRequestsPerMinutePerKey });
  let openApiDocument: unknown;
  const routes = apiRoutes(() => (openApiDocument ??= buildOpenApiDocument(routes, { version: API_VERSION })));
  const validateResponses = input.validateResponses === true;
  const bodyTimeoutMs = input.bodyTimeoutMs ?? BODY_TIMEOUT_MS;
  // Tailscale's API v2 on the same listener (api/v2).
  const v2 = createApiV2({ state: deps.state, config: deps.config, logger, now: deps.now });

  async function handle(req: IncomingMessage, res: ServerResponse, transport: ApiTransport): Promise<boolean> {
    const rawUrl = req.url ?? '';
    if (await v2.handle(req, res, transport)) return true;
    if (!rawUrl.startsWith(API_PREFIX) || (rawUrl.length > API_PREFIX.length && !'/?'.includes(rawUrl[API_PREFIX.length]!))) return false;

    const started = process.hrtime.bigint();
    const offered = req.headers['x-request-id'];
    const requestId = typeof offered === 'string' && REQUEST_ID_RE.test(offered) ? offered : randomUUID();
    const requestLogger = logger.child({ [F.requestId]: requestId });
    let actor: Actor | undefined;
    let path = API_PREFIX;
    let closeAfter = false;
    res.setHeader('X-Request-Id', requestId);

    try {
      const url = new URL(rawUrl, 'http://admin.invalid');
      path = url.pathname;
      const sub = path.slice(API_PREFIX.length) || '/';
      const method = (req.method ?? 'GET').toUpperCase();
      const matches = routes.map((route) => ({ route, params: route.match(sub) })).filter((m) => m.params !== undefined);
      if (matches.length === 0) throw apiError(ApiErrors.routeNotFound, `${method} ${path}: no such endpoint (see GET ${API_PREFIX}/openapi.json)`);
      const found = matches.find((m) => m.route.method === method);
      if (found === undefined) {
        res.setHeader('Allow', [...new Set(matches.map((m) => m.route.method))].join(', '));
        throw apiError(ApiErrors.methodNotAllowed, `${method} ${path}: method not allowed (allowed: ${matches.map((m) => m.route.method).join(', ')})`);
      }
      const { route } = found;

      let viewer: Viewer;
      if (transport === 'unix') {
        actor = UNIX_SOCKET_ACTOR;
        viewer = { kind: 'unix', admin: true, userId: null, tailnetId: null, session: null };
      } else {
        if (!route.public) {
          const limitKey = rateLimitKey(req);
          if (!limiter.tryTake(limitKey)) {
            res.setHeader('Retry-After', String(Math.max(1, limiter.retryAfterSeconds(limitKey))));
            throw apiError(ApiErrors.rateLimited, `${method} ${path}: too many requests (limit ${limiter.perMinute} per minute per API key); retry later`);
          }
        }
        try {
          viewer = await authenticateTcp(req, route, method);
          if (viewer.kind === 'api-key') {
            actor = route.public
              ? await authenticator.authenticate(req.headers.authorization).catch(() => ({ name: 'anonymous' }))
              : await authenticator.authenticate(req.headers.authorization);
          } else actor = viewer.session?.actor ?? { name: 'anonymous' };
        } catch (err) {
          if (err instanceof HeadwayError && err.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="headway"');
          throw err;
        }
      }

      let body: unknown;
      try {
        checkDeclaredLength(req);
        if (route.body !== undefined) body = parseJsonBody(await readBodyText(req, MAX_BODY_BYTES, bodyTimeoutMs), req.headers['content-type']);
      } catch (err) {
        if (err instanceof HeadwayError && (err.code === ApiErrors.bodyTooLarge.code || err.code === ApiErrors.bodyTimeout.code)) closeAfter = true;
        throw err;
      }

      const params: Record<string, string> = {};
      for (const [name, value] of Object.entries(found.params!)) params[name] = decodeParam(name, value);
      const query: Record<string, string> = {};
      for (const [name, value] of url.searchParams) {
        if (Object.hasOwn(query, name)) throw new ApiValidationError([{ field: `query.${name}`, problem: 'given more than once' }]);
        query[name] = value;
      }

      // Who and from where, for the audit log: `local` for the admin socket, else the client's
      // address (Headway reads no forwarding headers: it has no trusted-proxy setting).
      actor = { ...actor!, from: transport === 'unix' ? LOCAL_ADDRESS : remoteAddress(req) };
      const tailnetFor = (name: string) => {
        const tailnet = deps.state.requireTailnet(name);
        if (viewer.tailnetId !== null && viewer.tailnetId !== tailnet.id) {
          throw new HeadwayError(WebSessionErrors.forbidden, `your console session belongs to another tailnet than "${name}"`);
        }
        return tailnet;
      };
      const context = {
        deps, actor, viewer, requestId, logger: requestLogger, from: remoteAddress(req),
        setHeader: (name: string, value: string) => res.setHeader(name, value), raw: { req, res },
      };
      const result = await route.run({ params, query, body }, context, tailnetFor);
      if (route.stream) return true;
      if (validateResponses) {
        const checked = route.response.safeParse(result);
        if (!checked.success) throw new Error(`response of ${route.operationId} does not match its schema: ${checked.error.message}`);
      }
      sendJson(res, route.status, result, false);
    } catch (err) {
      const { status, body } = errorResponse(err, requestId);
      if (status >= 500) requestLogger.error({ err }, 'admin request failed');
      sendJson(res, status, body, closeAfter);
    } finally {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      requestLogger.info({
        method: req.method,
        [F.path]: redactPath(path),
        status: res.statusCode,
        [F.durationMs]: Math.round(durationMs * 1000) / 1000,
        transport,
        actor: actor?.name,
      }, 'admin request');
    }
    return true;
  }

  /**
   * Who a TCP request is: an API key (Authorization header), a console session (cookie; changes
   * need the CSRF header, members only reach member routes), or anonymous for public routes.
   */
  async function authenticateTcp(req: IncomingMessage, route: Route, method: string): Promise<Viewer> {
    const anonymous: Viewer = { kind: 'anonymous', admin: false, userId: null, tailnetId: null, session: null };
    if (req.headers.authorization !== undefined) return { kind: 'api-key', admin: true, userId: null, tailnetId: null, session: null };
    const session = await deps.sessions.authenticate(req.headers.cookie).catch((err: unknown) => {
      if (route.public) return undefined;
      throw err;
    });
    if (session === undefined) {
      if (route.public) return anonymous;
      throw apiError(ApiErrors.unauthenticated, 'missing API key: send Authorization: Bearer <api key>, or sign in to the console');
    }
    if (!['GET', 'HEAD'].includes(method)) {
      const presented = req.headers[CSRF_HEADER];
      if (!csrfMatches(session.token, typeof presented === 'string' ? presented : undefined)) {
        throw new HeadwayError(WebSessionErrors.csrfMissing, `${method} with a console session needs the X-CSRF-Token header of GET ${API_PREFIX}/session`);
      }
    }
    if (!session.admin && !route.members && !route.public) {
      throw new HeadwayError(WebSessionErrors.forbidden, `${session.actor.name} is a ${session.session.role}, not an admin: the console shows members their own devices only`);
    }
    const operator = session.session.userId === null;
    // Server-wide routes (tailnets, API keys) are for the operator; a user's session is one tailnet's.
    if (!operator && route.scope === 'server' && !route.public && !route.members && route.group !== 'audit') {
      throw new HeadwayError(WebSessionErrors.forbidden, `${session.actor.name} is signed in to one tailnet; ${method} ${route.path} is server-wide (operator or API key only)`);
    }
    return { kind: 'session', admin: session.admin, userId: session.session.userId, tailnetId: operator ? null : session.session.tailnetId, session };
  }

  return { handle, routes };
}

function decodeParam(name: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new ApiValidationError([{ field: `params.${name}`, problem: 'malformed percent-encoding' }]);
  }
}

/**
 * Whom a TCP request is counted against: the presented key's public part (`hwk_<prefix>`,
 * never the secret), or the source address when there is no bearer token.
 */
function rateLimitKey(req: IncomingMessage): string {
  const header = req.headers.authorization ?? '';
  const token = /^Bearer\s+(\S+)/i.exec(header)?.[1];
  return token !== undefined ? `key:${token.slice(0, 16)}` : `addr:${req.socket.remoteAddress ?? ''}`;
}

/** The status and JSON body for an error; never a stack trace, never a non-Headway message. */
export function errorResponse(err: unknown, requestId: string): { status: number; body: ErrorJson } {
  if (err instanceof HeadwayError) {
    const error: ErrorJson['error'] = { code: err.code, message: err.message, request_id: requestId };
    if (err instanceof ApiValidationError) error.field = err.field;
    const status = Number.isInteger(err.status) && err.status >= 400 && err.status <= 599 ? err.status : 500;
    return { status, body: { error } };
  }
  return {
    status: 500,
    body: { error: { code: ApiErrors.internal.code, message: `internal error; the server log has the details under request id ${requestId}`, request_id: requestId } },
  };
}

function sendJson(res: ServerResponse, status: number, value: unknown, close: boolean): void {
  if (res.headersSent || res.writableEnded) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (close) {
    res.setHeader('Connection', 'close');
    // The client may still be sending the rest of a huge body; stop reading it once answered.
    res.once('finish', () => setTimeout(() => res.socket?.destroy(), 1_000).unref());
  }
  res.end(text);
}

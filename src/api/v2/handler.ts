// The /api/v2 request handler: Tailscale's API for the tools people already run against it (the
// Terraform provider, tailscale-client-go-v2, scripts). Authenticates an API key sent as Basic
// auth user name (what tailscale-client-go-v2 does) or as a Bearer token, or an OAuth access
// token; resolves `{tailnet}` (`-` = the credential's tailnet); answers Tailscale's error bodies.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../../config/index.js';
import { F } from '../../log/index.js';
import { PolicyError } from '../../policy/index.js';
import type { ServerState, TailnetState } from '../../state/index.js';
import { HeadwayError } from '../../util/headway-error.js';
import { remoteAddress } from '../../web-session/index.js';
import { apiKeyActor, TOUCH_INTERVAL_MS, UNIX_SOCKET_ACTOR } from '../auth.js';
import { BODY_TIMEOUT_MS, checkDeclaredLength, MAX_BODY_BYTES, readBodyText } from '../body.js';
import { describeIssue } from '../validation.js';
import { ApiV2Errors } from './errors.js';
import { REPLY, type CompiledV2Route, type V2Context, type V2Principal, type V2Reply } from './route.js';

export const API_V2_PREFIX = '/api/v2';

export interface ApiV2Deps {
  state: ServerState;
  config: Config;
  logger: Logger;
  now: () => number;
}

/** Resolves a Bearer token that is not an API key (an OAuth access token), or undefined. */
export type TokenResolver = (token: string, now: number) => Promise<V2Principal | undefined>;

export function v2Error(spec: (typeof ApiV2Errors)[keyof typeof ApiV2Errors], message: string): HeadwayError {
  return new HeadwayError(spec, message);
}

function credentialOf(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  if (bearer !== null) return bearer[1];
  const basic = /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(authorization);
  if (basic === null) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  // Tailscale takes the key as the user name with an empty password; accept it as the password too.
  const user = colon === -1 ? decoded : decoded.slice(0, colon);
  return user !== '' ? user : colon === -1 ? undefined : decoded.slice(colon + 1) || undefined;
}

export function scopeAllows(scopes: readonly string[] | null, needed: string | null, method: string): boolean {
  if (scopes === null || needed === null) return true;
  const readOnly = method === 'GET';
  return scopes.some((scope) => scope === 'all' || scope === needed || (readOnly && (scope === 'all:read' || scope === `${needed}:read`)));
}

export interface ApiV2Handler {
  /** Over the admin unix socket no credential is needed (as for /api/v1). */
  handle(req: IncomingMessage, res: ServerResponse, transport?: 'tcp' | 'unix'): Promise<boolean>;
  readonly routes: readonly CompiledV2Route[];
}

export function createApiV2Handler(deps: ApiV2Deps, routes: readonly CompiledV2Route[], resolveToken: TokenResolver, publicRoutes: ReadonlySet<string> = new Set()): ApiV2Handler {
  async function authenticate(req: IncomingMessage): Promise<V2Principal> {
    const secret = credentialOf(req.headers.authorization);
    if (secret === undefined) throw v2Error(ApiV2Errors.unauthenticated, 'API token invalid');
    if (secret.startsWith('hwk_')) {
      const check = await deps.state.authenticateApiKey(secret, deps.now(), TOUCH_INTERVAL_MS);
      if (!check.ok) throw v2Error(ApiV2Errors.unauthenticated, check.problem === 'unknown' ? 'API token invalid' : `API token ${check.problem}`);
      return { actor: apiKeyActor(check.key), tailnet: null, scopes: null };
    }
    const principal = await resolveToken(secret, deps.now());
    if (principal === undefined) throw v2Error(ApiV2Errors.unauthenticated, 'API token invalid');
    return principal;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, transport: 'tcp' | 'unix' = 'tcp'): Promise<boolean> {
    const rawUrl = req.url ?? '';
    if (!rawUrl.startsWith(API_V2_PREFIX) || (rawUrl.length > API_V2_PREFIX.length && !'/?'.includes(rawUrl[API_V2_PREFIX.length]!))) return false;
    const requestId = randomUUID();
    const started = process.hrtime.bigint();
    let actorName: string | undefined;
    let path = API_V2_PREFIX;
    try {
      const url = new URL(rawUrl, 'http://api.invalid');
      path = url.pathname;
      const sub = path.slice(API_V2_PREFIX.length) || '/';
      const method = (req.method ?? 'GET').toUpperCase();
      const matches = routes.map((route) => ({ route, params: safeMatch(route, sub) })).filter((m) => m.params !== undefined);
      const found = matches.find((m) => m.route.method === method);
      if (found === undefined) {
        if (matches.length > 0) {
          res.setHeader('Allow', [...new Set(matches.map((m) => m.route.method))].join(', '));
          return send(res, { status: 405, body: { message: 'method not allowed' } }, requestId);
        }
        throw v2Error(ApiV2Errors.notFound, 'not found');
      }
      const { route } = found;
      const authenticated: V2Principal = transport === 'unix'
        ? { actor: UNIX_SOCKET_ACTOR, tailnet: null, scopes: null }
        : publicRoutes.has(route.operationId) ? { actor: { name: 'anonymous' }, tailnet: null, scopes: [] } : await authenticate(req);
      // From where, for the audit log (as in /api/v1: `local` for the socket, else the peer address).
      const principal: V2Principal = { ...authenticated, actor: { ...authenticated.actor, from: transport === 'unix' ? 'local' : remoteAddress(req) } };
      actorName = principal.actor.name;
      if (transport !== 'unix' && !publicRoutes.has(route.operationId) && !scopeAllows(principal.scopes, route.scope, method)) {
        throw v2Error(ApiV2Errors.forbidden, `calling actor does not have enough permissions to perform this function (needs scope ${route.scope ?? ''}${method === 'GET' ? ' or its :read form' : ''})`);
      }
      checkDeclaredLength(req);
      const text = method === 'GET' || method === 'DELETE' ? '' : await readBodyText(req, MAX_BODY_BYTES, BODY_TIMEOUT_MS);
      let body: unknown = text;
      if (!route.rawBody) {
        body = text.trim() === '' ? {} : parseJson(text, req.headers['content-type']);
        if (route.body !== undefined) {
          const checked = route.body.safeParse(body);
          if (!checked.success) {
            const problem = describeIssue(checked.error.issues[0]!, 'body', route.body);
            throw v2Error(ApiV2Errors.badRequest, `${problem.field}: ${problem.problem}`);
          }
          body = checked.data;
        }
      }
      const params = found.params!;
      const ctx: V2Context = {
        ...deps,
        principal,
        params,
        query: url.searchParams,
        headers: req.headers,
        body,
        tailnet: () => resolveTailnet(deps.state, principal, params['tailnet'] ?? '-'),
      };
      const result = await route.handle(ctx);
      const out: V2Reply = typeof result === 'object' && result !== null && REPLY in result ? (result as { [REPLY]: V2Reply })[REPLY] : { body: result };
      return send(res, out, requestId);
    } catch (err) {
      return send(res, errorReply(err, requestId, deps.logger), requestId);
    } finally {
      deps.logger.info({
        method: req.method,
        [F.path]: path,
        status: res.statusCode,
        [F.durationMs]: Math.round(Number(process.hrtime.bigint() - started) / 1e3) / 1e3,
        actor: actorName,
        [F.requestId]: requestId,
      }, 'api v2 request');
    }
  }

  return { handle, routes };
}

function safeMatch(route: CompiledV2Route, path: string): Record<string, string> | undefined {
  try {
    return route.match(path);
  } catch {
    throw v2Error(ApiV2Errors.badRequest, 'malformed percent-encoding in the path');
  }
}

function parseJson(text: string, contentType: string | undefined): unknown {
  const media = (contentType ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (media !== 'application/json' && !media.endsWith('+json') && media !== '') {
    throw v2Error(ApiV2Errors.badRequest, `Content-Type ${JSON.stringify(contentType)}: want application/json`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw v2Error(ApiV2Errors.badRequest, `invalid JSON body: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** `-` is the credential's tailnet (the default tailnet for server-wide API keys). */
export function resolveTailnet(state: ServerState, principal: V2Principal, name: string): TailnetState {
  const tailnet = name === '-' ? principal.tailnet ?? state.defaultTailnet : state.tailnetByName(name);
  if (tailnet === undefined) throw v2Error(ApiV2Errors.notFound, `tailnet ${JSON.stringify(name)} not found`);
  if (principal.tailnet !== null && principal.tailnet !== tailnet) throw v2Error(ApiV2Errors.forbidden, `this token belongs to another tailnet than ${JSON.stringify(name)}`);
  return tailnet;
}

function errorReply(err: unknown, requestId: string, logger: Logger): V2Reply {
  if (err instanceof PolicyError) return { status: 400, body: { message: err.message }, headers: { 'X-Headway-Error': err.code } };
  if (err instanceof HeadwayError) {
    const status = Number.isInteger(err.status) && err.status >= 400 && err.status <= 599 ? err.status : 500;
    return { status, body: { message: err.message }, headers: { 'X-Headway-Error': err.code } };
  }
  if (err instanceof z.ZodError) return { status: 400, body: { message: err.message } };
  logger.error({ err, [F.requestId]: requestId }, 'api v2 request failed');
  return { status: 500, body: { message: `internal error; the server log has the details under request id ${requestId}` } };
}

function send(res: ServerResponse, out: V2Reply, requestId: string): true {
  if (res.headersSent || res.writableEnded) {
    res.destroy();
    return true;
  }
  res.statusCode = out.status ?? 200;
  res.setHeader('X-Request-Id', requestId);
  res.setHeader('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(out.headers ?? {})) res.setHeader(name, value);
  if (out.text !== undefined) {
    res.setHeader('Content-Type', out.text.contentType);
    res.setHeader('Content-Length', Buffer.byteLength(out.text.value));
    res.end(out.text.value);
    return true;
  }
  if (out.body === undefined || res.statusCode === 204) {
    res.setHeader('Content-Length', 0);
    res.end();
    return true;
  }
  const text = JSON.stringify(out.body);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
  return true;
}

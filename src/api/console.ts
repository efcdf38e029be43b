// What the web console needs about its own session: who is signed in (and the CSRF token for
// changes), sign-out, which sign-in methods the server offers, and sign-in links for the
// operator (`headway admin login-link`).
import { z } from 'zod';
import { clearedSessionCookie, DEFAULT_LINK_TTL_MS, isSecureRequest, WebSessionErrors } from '../web-session/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { defineRoute, type Route } from './route.js';
import { durationText, parsePositiveDuration } from './schemas.js';

const sessionSchema = z.object({
  signed_in: z.boolean(),
  actor: z.string().nullable().describe('The audit log\'s name for the caller, e.g. `console:alice`.'),
  kind: z.enum(['api-key', 'unix', 'session', 'anonymous']),
  admin: z.boolean().describe('May administer the tailnet; false: sees only the user\'s own devices.'),
  role: z.string().nullable(),
  user: z.string().nullable().describe('The signed-in user\'s name; null for the operator and API keys.'),
  user_id: z.number().int().nullable(),
  tailnet: z.string().nullable().describe('The tailnet a user session is bound to; null = any.'),
  csrf_token: z.string().nullable().describe('Send as X-CSRF-Token with every change made with the session cookie.'),
  idle_timeout_seconds: z.number().int().nullable(),
  expires_at: z.string().nullable(),
});

export const consoleRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'getSession',
    method: 'GET',
    path: '/session',
    group: 'session',
    scope: 'server',
    public: true,
    summary: 'Who is calling: the console session (with its CSRF token), an API key, or nobody',
    response: sessionSchema,
    async handle({ viewer, actor, deps }) {
      const session = viewer.session;
      const tailnet = session === null ? undefined : deps.state.tailnet(session.session.tailnetId);
      const user = session?.session.userId == null ? undefined : tailnet?.user(session.session.userId);
      return {
        signed_in: viewer.kind !== 'anonymous',
        actor: viewer.kind === 'anonymous' ? null : actor.name,
        kind: viewer.kind,
        admin: viewer.admin,
        role: session?.session.role ?? (viewer.kind === 'anonymous' ? null : 'admin'),
        user: user?.name ?? null,
        user_id: user?.id ?? null,
        tailnet: viewer.tailnetId === null ? null : tailnet?.name ?? null,
        csrf_token: session?.csrfToken ?? null,
        idle_timeout_seconds: session === null ? null : Math.round(deps.sessions.idleTimeoutMs / 1000),
        expires_at: session?.session.expiresAt.toISOString() ?? null,
      };
    },
  }),
  defineRoute({
    operationId: 'signOut',
    method: 'DELETE',
    path: '/session',
    group: 'session',
    scope: 'server',
    members: true,
    summary: 'Sign the console session out (the cookie stops working at once)',
    response: z.object({ signed_out: z.boolean() }),
    async handle({ viewer, deps, from, setHeader, raw }) {
      if (viewer.session === null) return { signed_out: false };
      await deps.sessions.signOut(viewer.session.session, from);
      setHeader('Set-Cookie', clearedSessionCookie(isSecureRequest(raw.req, deps.serverUrl)));
      return { signed_out: true };
    },
  }),
  defineRoute({
    operationId: 'getSignInOptions',
    method: 'GET',
    path: '/signin-options',
    group: 'session',
    scope: 'server',
    public: true,
    summary: 'How a browser can sign in to the console',
    response: z.object({
      oidc: z.boolean().describe('An OpenID Connect provider is configured: the console offers "Sign in with <provider>".'),
      oidc_provider: z.string().nullable(),
      oidc_start_path: z.string().nullable().describe('Where the browser goes to start an OIDC sign-in.'),
      login_link: z.boolean().describe('Sign-in links from `headway admin login-link` are accepted.'),
    }),
    async handle({ deps }) {
      const oidc = deps.oidc?.() ?? { enabled: false, provider: null };
      return { oidc: oidc.enabled, oidc_provider: oidc.provider, oidc_start_path: oidc.enabled ? '/oidc/console/login?next=/admin/' : null, login_link: true };
    },
  }),
  defineRoute({
    operationId: 'createLoginLink',
    method: 'POST',
    path: '/console/login-links',
    group: 'session',
    scope: 'tailnet',
    summary: 'Create a short-lived, single-use console sign-in link',
    description:
      'Only over the unix socket or with an API key (a console session cannot mint links). Without `user` the link ' +
      'signs in the server operator (an admin of every tailnet); with it, that user with the user\'s role. The link ' +
      'works once, within `ttl` (default 5m, at most 1h).',
    body: z.strictObject({
      user: z.string().min(1).optional().describe('Sign in as this user of the tailnet.'),
      ttl: durationText.optional().describe('How long the link stays valid (default 5m, at most 1h).'),
    }),
    response: z.object({ url: z.string(), path: z.string(), expires_at: z.string(), actor: z.string() }),
    status: 201,
    errors: [403, 404],
    async handle({ viewer, tailnet, body, deps, actor }) {
      if (viewer.kind === 'session') throw new HeadwayError(WebSessionErrors.forbidden, 'a console session cannot create sign-in links; use `headway admin login-link` on the server');
      let ttlMs = DEFAULT_LINK_TTL_MS;
      if (body.ttl !== undefined) {
        const parsed = parsePositiveDuration(body.ttl);
        if (!parsed.ok) throw new Error('unreachable: ttl was validated');
        ttlMs = Math.min(parsed.ms, 3_600_000);
      }
      const link = await deps.sessions.createLoginLink(tailnet.name, body.user ?? null, ttlMs, actor);
      const path = `/admin/login?token=${link.token}`;
      return { url: `${deps.serverUrl.replace(/\/+$/, '')}${path}`, path, expires_at: link.expiresAt.toISOString(), actor: link.actor };
    },
  }),
];

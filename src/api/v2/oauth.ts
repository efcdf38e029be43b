// OAuth clients of Tailscale's API: created and listed through the keys endpoint (keyType
// "client", as tailscale-client-go-v2's CreateOAuthClient and the Terraform provider's
// tailscale_oauth_client do), and the client-credentials token endpoint golang.org/x/oauth2
// calls: POST /api/v2/oauth/token, form-encoded, client credentials in the form or as Basic auth.
// Access tokens last an hour, carry the scopes asked for (at most the client's), and belong to
// the client's tailnet.
import { z } from 'zod';
import type { OAuthClient } from '../../model/index.js';
import { auditActor, type ServerState, type TailnetState } from '../../state/index.js';
import { ApiV2Errors } from './errors.js';
import { v2Error, type TokenResolver } from './handler.js';
import type { ClientKeyHooks, KeyJson } from './keys.js';
import { reply, tsTime, v2Route, type CompiledV2Route } from './route.js';

export const ACCESS_TOKEN_TTL_MS = 3_600_000;

/** Tailscale's OAuth scopes (and `all`); each also has a `:read` form. */
export const OAUTH_SCOPES = ['all', 'devices:core', 'devices:routes', 'devices:posture_attributes', 'auth_keys', 'oauth_keys', 'policy_file', 'dns', 'users', 'feature_settings', 'webhooks', 'logs:network', 'logs:configuration', 'services'] as const;

function validScope(scope: string): boolean {
  const base = scope.endsWith(':read') ? scope.slice(0, -':read'.length) : scope;
  return (OAUTH_SCOPES as readonly string[]).includes(base);
}

function clientJson(client: OAuthClient, secret?: string): KeyJson {
  return {
    id: client.clientId,
    keyType: 'client',
    ...(secret !== undefined ? { key: secret } : {}),
    description: client.description,
    created: tsTime(client.createdAt),
    expires: tsTime(null),
    invalid: false,
    scopes: [...client.scopes],
    tags: [...client.tags],
    userId: '',
  };
}

/** Does a scope the client holds grant the one asked for? */
function grants(held: readonly string[], wanted: string): boolean {
  return held.some((h) => h === 'all' || h === wanted || (h === 'all:read' && wanted.endsWith(':read')) || `${h}:read` === wanted);
}

export const oauthClientHooks: ClientKeyHooks = {
  async create(ctx, tailnet, body) {
    const scopes = body.scopes ?? [];
    if (scopes.length === 0) throw v2Error(ApiV2Errors.badRequest, 'scopes: an OAuth client needs at least one scope');
    const bad = scopes.find((s) => !validScope(s));
    if (bad !== undefined) throw v2Error(ApiV2Errors.badRequest, `scopes: ${JSON.stringify(bad)} is not a Tailscale OAuth scope`);
    const { client, secret } = await ctx.state.store.transaction(async (tx) => {
      const created = await tx.oauth.createClient({ tailnetId: tailnet.id, scopes, tags: body.tags ?? [], description: body.description ?? '' });
      await tx.audit.record({ tailnetId: tailnet.id, ...auditActor(ctx.principal.actor), action: 'oauth_client.create', target: `oauth_client:${created.client.clientId}`, details: { scopes, tags: body.tags ?? [] } });
      return created;
    });
    return clientJson(client, secret);
  },
  async list(ctx, tailnet) {
    return (await ctx.state.store.read.oauth.listClients(tailnet.id)).map((c) => clientJson(c));
  },
  async get(ctx, tailnet, id) {
    const client = await ctx.state.store.read.oauth.getClient(id);
    return client === undefined || client.tailnetId !== tailnet.id ? undefined : clientJson(client);
  },
  async delete(ctx, tailnet, id) {
    const client = await ctx.state.store.read.oauth.getClient(id);
    if (client === undefined || client.tailnetId !== tailnet.id) return false;
    await ctx.state.store.transaction(async (tx) => {
      await tx.oauth.deleteClient(id);
      await tx.audit.record({ tailnetId: tailnet.id, ...auditActor(ctx.principal.actor), action: 'oauth_client.delete', target: `oauth_client:${id}`, details: {} });
    });
    return true;
  },
};

export function oauthTokenResolver(state: ServerState): TokenResolver {
  return async (token, now) => {
    const found = await state.store.read.oauth.findToken(token, now);
    if (found === undefined) return undefined;
    const tailnet: TailnetState | undefined = state.tailnet(found.client.tailnetId);
    if (tailnet === undefined) return undefined;
    return { actor: { name: `oauth:${found.client.clientId}` }, tailnet, scopes: found.scopes };
  };
}

function oauthError(status: number, error: string, description: string) {
  return reply({ status, body: { error, error_description: description } });
}

export const oauthRoutes: readonly CompiledV2Route[] = [
  v2Route({
    operationId: 'v2OAuthToken', method: 'POST', path: '/oauth/token', summary: 'Client credentials grant: trade an OAuth client id and secret for an access token (form-encoded)', scope: null,
    rawBody: true,
    response: z.object({ access_token: z.string(), token_type: z.literal('Bearer'), expires_in: z.number().int(), scope: z.string() }),
    async handle(ctx) {
      const form = new URLSearchParams(typeof ctx.body === 'string' ? ctx.body : '');
      let clientId = form.get('client_id') ?? '';
      let secret = form.get('client_secret') ?? '';
      const basic = /^Basic[ \t]+([A-Za-z0-9+/=]+)$/i.exec(String(ctx.headers.authorization ?? '').trim());
      if (basic !== null) {
        const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon !== -1) {
          clientId = decodeURIComponent(decoded.slice(0, colon));
          secret = decodeURIComponent(decoded.slice(colon + 1));
        }
      }
      if (form.get('grant_type') !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', 'want grant_type=client_credentials');
      const client = clientId === '' ? undefined : await ctx.state.store.read.oauth.verifyClient(clientId, secret);
      if (client === undefined) return oauthError(401, 'invalid_client', 'unknown client or wrong secret');
      const asked = (form.get('scope') ?? '').split(/[ ,]+/).filter((s) => s !== '');
      const scopes = asked.length === 0 ? [...client.scopes] : asked;
      const refused = scopes.find((s) => !grants(client.scopes, s));
      if (refused !== undefined) return oauthError(400, 'invalid_scope', `the client does not hold scope ${refused}`);
      const { token } = await ctx.state.store.transaction((tx) => tx.oauth.createToken(client, scopes, ACCESS_TOKEN_TTL_MS));
      return { access_token: token, token_type: 'Bearer', expires_in: ACCESS_TOKEN_TTL_MS / 1000, scope: scopes.join(' ') };
    },
  }),
  v2Route({
    operationId: 'v2SetOAuthClient', method: 'PUT', path: '/tailnet/{tailnet}/keys/{keyId}', summary: 'Replace the scopes, tags and description of an OAuth client', scope: 'oauth_keys',
    body: z.object({ keyType: z.string().optional(), scopes: z.array(z.string()).min(1), tags: z.array(z.string()).default([]), description: z.string().max(50).default('') }),
    async handle(ctx) {
      const tailnet = ctx.tailnet();
      const body = ctx.body as { scopes: string[]; tags: string[]; description: string };
      const bad = body.scopes.find((s) => !validScope(s));
      if (bad !== undefined) throw v2Error(ApiV2Errors.badRequest, `scopes: ${JSON.stringify(bad)} is not a Tailscale OAuth scope`);
      const id = ctx.params['keyId']!;
      const existing = await ctx.state.store.read.oauth.getClient(id);
      if (existing === undefined || existing.tailnetId !== tailnet.id) throw v2Error(ApiV2Errors.notFound, 'key not found');
      const updated = await ctx.state.store.transaction(async (tx) => {
        const after = await tx.oauth.updateClient(id, body);
        await tx.audit.record({ tailnetId: tailnet.id, ...auditActor(ctx.principal.actor), action: 'oauth_client.update', target: `oauth_client:${id}`, details: { scopes: body.scopes, tags: body.tags } });
        return after;
      });
      return clientJson(updated!);
    },
  }),
];

// Auth keys as Tailscale's API has them: POST /tailnet/{t}/keys with `capabilities.devices.create`
// makes a pre-auth key (the id is its public prefix); keyType "client" makes an OAuth client
// (oauth.ts). Headway API keys have no owner, so an auth key without tags has no user to belong
// to and is refused with a message saying so.
import { z } from 'zod';
import type { PreAuthKey } from '../../model/index.js';
import type { TailnetState } from '../../state/index.js';
import { findPreAuthKey } from '../lookup.js';
import { tagName } from '../schemas.js';
import { requireTagsDefined } from '../tag-owners.js';
import { ApiV2Errors } from './errors.js';
import { v2Error } from './handler.js';
import { reply, tsTime, v2Route, type CompiledV2Route, type V2Context } from './route.js';

/** Tailscale's default auth key lifetime: 90 days. */
export const DEFAULT_AUTH_KEY_SECONDS = 90 * 24 * 3600;

const capabilities = z.object({
  devices: z.object({
    create: z.object({
      reusable: z.boolean().default(false),
      ephemeral: z.boolean().default(false),
      preauthorized: z.boolean().default(false),
      tags: z.array(tagName).max(64).nullish(),
    }).default({ reusable: false, ephemeral: false, preauthorized: false }),
  }).default({ create: { reusable: false, ephemeral: false, preauthorized: false } }),
});

export const createKeyBody = z.object({
  keyType: z.enum(['auth', 'client', 'federated', 'api']).optional().describe('auth (default) or client (an OAuth client).'),
  capabilities: capabilities.optional(),
  expirySeconds: z.number().int().min(0).max(10 * 365 * 24 * 3600).optional().describe('0 or absent: 90 days.'),
  description: z.string().max(50).optional(),
  scopes: z.array(z.string()).optional().describe('OAuth clients: the scopes their tokens get.'),
  tags: z.array(tagName).optional().describe('OAuth clients: tags the keys they create must carry.'),
});

export const keySchema = z.object({
  id: z.string(),
  keyType: z.string(),
  key: z.string().optional().describe('The secret; only in the answer to its creation.'),
  description: z.string(),
  created: z.string(),
  expires: z.string(),
  revoked: z.string().optional(),
  invalid: z.boolean(),
  capabilities: z.object({ devices: z.object({ create: z.object({ reusable: z.boolean(), ephemeral: z.boolean(), preauthorized: z.boolean(), tags: z.array(z.string()) }) }) }).optional(),
  scopes: z.array(z.string()).optional(),
  tags: z.array(z.string()).optional(),
  userId: z.string(),
}).meta({ id: 'V2Key' });

export type KeyJson = z.output<typeof keySchema>;

export function authKeyJson(key: PreAuthKey, nowMs: number, secret?: string): KeyJson {
  const invalid = key.revokedAt !== null || (key.expiresAt !== null && key.expiresAt.getTime() <= nowMs) || (!key.reusable && key.usedCount > 0);
  return {
    id: key.prefix,
    keyType: 'auth',
    ...(secret !== undefined ? { key: secret } : {}),
    description: key.description,
    created: tsTime(key.createdAt),
    expires: tsTime(key.expiresAt),
    ...(key.revokedAt !== null ? { revoked: tsTime(key.revokedAt) } : {}),
    invalid,
    capabilities: { devices: { create: { reusable: key.reusable, ephemeral: key.ephemeral, preauthorized: key.preApproved, tags: [...key.tags] } } },
    userId: key.userId === null ? '' : String(key.userId),
  };
}

/** Extension point for keyType "client" (OAuth clients), filled in by oauth.ts. */
export interface ClientKeyHooks {
  create(ctx: V2Context, tailnet: TailnetState, body: z.output<typeof createKeyBody>): Promise<KeyJson>;
  list(ctx: V2Context, tailnet: TailnetState): Promise<KeyJson[]>;
  get(ctx: V2Context, tailnet: TailnetState, id: string): Promise<KeyJson | undefined>;
  delete(ctx: V2Context, tailnet: TailnetState, id: string): Promise<boolean>;
}

export function keyRoutes(clients: ClientKeyHooks): CompiledV2Route[] {
  return [
    v2Route({
      operationId: 'v2CreateKey', method: 'POST', path: '/tailnet/{tailnet}/keys', summary: 'Create an auth key (or an OAuth client with keyType "client"); the secret is in this answer only', scope: 'auth_keys',
      body: createKeyBody, response: keySchema,
      async handle(ctx) {
        const tailnet = ctx.tailnet();
        const body = ctx.body as z.output<typeof createKeyBody>;
        if (body.keyType === 'client') return clients.create(ctx, tailnet, body);
        if (body.keyType !== undefined && body.keyType !== 'auth') throw v2Error(ApiV2Errors.notSupported, `keyType ${body.keyType}: Headway creates auth keys and OAuth clients here; API keys with \`headway apikeys create\``);
        const create = body.capabilities?.devices.create ?? { reusable: false, ephemeral: false, preauthorized: false, tags: [] };
        const tags = create.tags ?? [];
        if (tags.length === 0) {
          throw v2Error(ApiV2Errors.badRequest, 'capabilities.devices.create.tags: Headway API keys belong to no user, so an auth key made through them must be tagged (or create a user key with `headway preauthkeys create --user`)');
        }
        requireTagsDefined(tailnet, tags, 'capabilities.devices.create.tags');
        const seconds = body.expirySeconds === undefined || body.expirySeconds === 0 ? DEFAULT_AUTH_KEY_SECONDS : body.expirySeconds;
        const now = ctx.now();
        const created = await ctx.state.createPreAuthKey(tailnet, { userId: null, reusable: create.reusable, ephemeral: create.ephemeral, tags, expiresAt: new Date(now + seconds * 1000), description: body.description ?? '', preApproved: create.preauthorized }, ctx.principal.actor);
        return authKeyJson(created.key, now, created.secret);
      },
    }),
    v2Route({
      operationId: 'v2ListKeys', method: 'GET', path: '/tailnet/{tailnet}/keys', summary: 'List auth keys and OAuth clients (`all=true` includes expired and revoked ones)', scope: 'auth_keys',
      response: z.object({ keys: z.array(keySchema) }),
      async handle(ctx) {
        const tailnet = ctx.tailnet();
        const now = ctx.now();
        const all = ctx.query.get('all') === 'true';
        const auth = (await ctx.state.listPreAuthKeys(tailnet)).map((k) => authKeyJson(k, now)).filter((k) => all || !k.invalid);
        // Tailscale lists only ids unless all=true; tailscale-client-go-v2 reads ids and then gets each.
        return { keys: [...auth, ...(await clients.list(ctx, tailnet))] };
      },
    }),
    v2Route({
      operationId: 'v2GetKey', method: 'GET', path: '/tailnet/{tailnet}/keys/{keyId}', summary: 'Get an auth key or OAuth client (never its secret)', scope: 'auth_keys', response: keySchema,
      async handle(ctx) {
        const tailnet = ctx.tailnet();
        const id = ctx.params['keyId']!;
        const client = await clients.get(ctx, tailnet, id);
        if (client !== undefined) return client;
        return authKeyJson(await findAuthKey(ctx, tailnet, id), ctx.now());
      },
    }),
    v2Route({
      operationId: 'v2DeleteKey', method: 'DELETE', path: '/tailnet/{tailnet}/keys/{keyId}', summary: 'Revoke an auth key or delete an OAuth client', scope: 'auth_keys',
      async handle(ctx) {
        const tailnet = ctx.tailnet();
        const id = ctx.params['keyId']!;
        if (await clients.delete(ctx, tailnet, id)) return reply({ status: 200 });
        const key = await findAuthKey(ctx, tailnet, id);
        await ctx.state.expirePreAuthKey(tailnet, key.id, ctx.principal.actor);
        return reply({ status: 200 });
      },
    }),
  ];
}

async function findAuthKey(ctx: V2Context, tailnet: TailnetState, id: string): Promise<PreAuthKey> {
  try {
    return await findPreAuthKey(ctx.state, tailnet, id);
  } catch {
    throw v2Error(ApiV2Errors.notFound, 'key not found');
  }
}

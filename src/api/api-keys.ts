// API keys, server-wide: create (the secret is returned once), list, expire.
import { z } from 'zod';
import { defineRoute, type Route } from './route.js';
import { apiKeyJsonFrom, apiKeySchema, durationText, newApiKeySchema, parsePositiveDuration } from './schemas.js';

export const DEFAULT_API_KEY_EXPIRATION = '90d';

export const apiKeyRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'listApiKeys',
    method: 'GET',
    path: '/apikeys',
    group: 'apikeys',
    scope: 'server',
    summary: 'List API keys (never their secrets)',
    response: z.object({ apikeys: z.array(apiKeySchema) }),
    async handle({ deps }) {
      const now = deps.now();
      return { apikeys: (await deps.state.listApiKeys()).map((k) => apiKeyJsonFrom(k, now)) };
    },
  }),
  defineRoute({
    operationId: 'createApiKey',
    method: 'POST',
    path: '/apikeys',
    group: 'apikeys',
    scope: 'server',
    summary: 'Create an API key; the response holds the key, shown once',
    body: z.strictObject({
      expiration: durationText.default(DEFAULT_API_KEY_EXPIRATION).describe('How long the key stays valid (default 90d).'),
    }),
    response: newApiKeySchema,
    status: 201,
    async handle({ body, deps, actor }) {
      const duration = parsePositiveDuration(body.expiration);
      if (!duration.ok) throw new Error('unreachable: expiration was validated');
      const now = deps.now();
      const created = await deps.state.createApiKey(new Date(now + duration.ms), actor);
      return { ...apiKeyJsonFrom(created.key, now), key: created.secret };
    },
  }),
  defineRoute({
    operationId: 'expireApiKey',
    method: 'POST',
    path: '/apikeys/{prefix}/expire',
    group: 'apikeys',
    scope: 'server',
    summary: 'Expire an API key now',
    params: z.strictObject({ prefix: z.string().min(1).describe('The key prefix (`hwk_<prefix>` or the bare prefix).') }),
    response: apiKeySchema,
    errors: [404],
    async handle({ params, deps, actor }) {
      return apiKeyJsonFrom(await deps.state.expireApiKey(params.prefix, actor), deps.now());
    },
  }),
];

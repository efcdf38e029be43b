// Pre-auth keys of a tailnet: create (the secret is returned once), list, expire.
import { z } from 'zod';
import type { UserId } from '../model/index.js';
import { findPreAuthKey, findUser } from './lookup.js';
import { defineRoute, type Route } from './route.js';
import {
  durationText, newPreAuthKeySchema, parsePositiveDuration, preAuthKeyJsonFrom, preAuthKeySchema, tagName, userRef,
} from './schemas.js';
import { requireTagsDefined } from './tag-owners.js';

export const DEFAULT_PRE_AUTH_KEY_EXPIRATION = '1h';

export const preAuthKeyRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'listPreAuthKeys',
    method: 'GET',
    path: '/preauthkeys',
    group: 'preauthkeys',
    scope: 'tailnet',
    summary: 'List pre-auth keys (never their secrets)',
    query: z.strictObject({ user: z.string().min(1).optional().describe('Only the keys of this user (name or id).') }),
    response: z.object({ preauthkeys: z.array(preAuthKeySchema) }),
    errors: [404],
    async handle({ tailnet, query, deps }) {
      const userId = query.user === undefined ? undefined : findUser(tailnet, query.user).id;
      const keys = await deps.state.listPreAuthKeys(tailnet, userId);
      const now = deps.now();
      return { preauthkeys: keys.map((k) => preAuthKeyJsonFrom(k, tailnet, now)) };
    },
  }),
  defineRoute({
    operationId: 'createPreAuthKey',
    method: 'POST',
    path: '/preauthkeys',
    group: 'preauthkeys',
    scope: 'tailnet',
    summary: 'Create a pre-auth key; the response holds the key, shown once',
    description:
      'A key registers nodes for `user`, or as tagged nodes with `tags` (then `user` is optional). Tags must be ' +
      'defined in the policy\'s tagOwners when the tailnet has a policy.',
    body: z.strictObject({
      user: userRef.optional(),
      reusable: z.boolean().default(false).describe('May register any number of nodes until it expires.'),
      ephemeral: z.boolean().default(false).describe('Nodes registered with it are deleted when they go offline.'),
      expiration: durationText.default(DEFAULT_PRE_AUTH_KEY_EXPIRATION).describe('How long the key stays valid (default 1h).'),
      tags: z.array(tagName).max(64).default([]).describe('Nodes registered with the key carry these tags.'),
      pre_approved: z.boolean().default(false).describe('Nodes registered with it skip device approval (tailnet setting device_approval).'),
    }).refine((b) => b.user !== undefined || b.tags.length > 0, { error: 'give user or tags (a key registers nodes for a user or as tagged nodes)' }),
    response: newPreAuthKeySchema,
    status: 201,
    errors: [404],
    async handle({ tailnet, body, deps, actor }) {
      const userId: UserId | null = body.user === undefined ? null : findUser(tailnet, body.user).id;
      requireTagsDefined(tailnet, body.tags, 'body.tags');
      const duration = parsePositiveDuration(body.expiration);
      if (!duration.ok) throw new Error('unreachable: expiration was validated');
      const now = deps.now();
      const created = await deps.state.createPreAuthKey(tailnet, {
        userId, reusable: body.reusable, ephemeral: body.ephemeral, tags: body.tags, expiresAt: new Date(now + duration.ms), preApproved: body.pre_approved,
      }, actor);
      return { ...preAuthKeyJsonFrom(created.key, tailnet, now), key: created.secret };
    },
  }),
  defineRoute({
    operationId: 'expirePreAuthKey',
    method: 'POST',
    path: '/preauthkeys/{key}/expire',
    group: 'preauthkeys',
    scope: 'tailnet',
    summary: 'Expire a pre-auth key now',
    description: 'Nodes it registered stay; no new node can register with it.',
    params: z.strictObject({ key: z.string().min(1).describe('The key: its numeric id or its prefix.') }),
    response: preAuthKeySchema,
    errors: [404],
    async handle({ tailnet, params, deps, actor }) {
      const key = await findPreAuthKey(deps.state, tailnet, params.key);
      const expired = await deps.state.expirePreAuthKey(tailnet, key.id, actor);
      return preAuthKeyJsonFrom(expired, tailnet, deps.now());
    },
  }),
];

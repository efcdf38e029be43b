// Webhook endpoints through Tailscale's API: the Terraform provider's tailscale_webhook resource
// and tailscale-client-go-v2's WebhooksResource. The secret is in the answers to create and
// rotate only. Deliveries themselves are the webhooks part's work (src/webhooks).
import { z } from 'zod';
import type { Webhook } from '../../model/index.js';
import { auditActor, type TailnetState } from '../../state/index.js';
import { WEBHOOK_CATEGORIES, WEBHOOK_EVENT_TYPES, WebhookErrors, testEvent } from '../../webhooks/index.js';
import { HeadwayError } from '../../util/headway-error.js';
import { ApiV2Errors } from './errors.js';
import { v2Error } from './handler.js';
import { reply, tsTime, v2Route, type CompiledV2Route, type V2Context } from './route.js';

const subscription = z.string().refine((s) => (WEBHOOK_EVENT_TYPES as readonly string[]).includes(s) || s in WEBHOOK_CATEGORIES, { error: 'not a webhook event type or category' });

export const webhookSchema = z.object({
  endpointId: z.string(),
  endpointUrl: z.string(),
  providerType: z.string(),
  creatorLoginName: z.string(),
  created: z.string(),
  lastModified: z.string(),
  subscriptions: z.array(z.string()),
  secret: z.string().optional().describe('Only when created or rotated.'),
}).meta({ id: 'V2Webhook' });

export function checkWebhookUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new HeadwayError(WebhookErrors.invalidUrl, `endpointUrl: ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new HeadwayError(WebhookErrors.invalidUrl, `endpointUrl: want http:// or https://, got ${url.protocol}`);
  return url.toString();
}

function webhookJson(hook: Webhook, withSecret: boolean): z.output<typeof webhookSchema> {
  return {
    endpointId: hook.endpointId,
    endpointUrl: hook.url,
    providerType: hook.providerType,
    creatorLoginName: hook.creator,
    created: tsTime(hook.createdAt),
    lastModified: tsTime(hook.updatedAt),
    subscriptions: [...hook.subscriptions],
    ...(withSecret ? { secret: hook.secret } : {}),
  };
}

async function findWebhook(ctx: V2Context): Promise<{ hook: Webhook; tailnet: TailnetState }> {
  const hook = await ctx.state.store.read.webhooks.get(ctx.params['endpointId'] ?? '');
  const tailnet = hook === undefined ? undefined : ctx.state.tailnet(hook.tailnetId);
  if (hook === undefined || tailnet === undefined || (ctx.principal.tailnet !== null && ctx.principal.tailnet !== tailnet)) throw v2Error(ApiV2Errors.notFound, 'webhook endpoint not found');
  return { hook, tailnet };
}

export const webhookRoutes: readonly CompiledV2Route[] = [
  v2Route({
    operationId: 'v2CreateWebhook', method: 'POST', path: '/tailnet/{tailnet}/webhooks', summary: 'Create a webhook endpoint; the answer holds its signing secret, shown once', scope: 'webhooks',
    body: z.object({ endpointUrl: z.string(), providerType: z.string().default(''), subscriptions: z.array(subscription).min(1) }), response: webhookSchema,
    async handle(ctx) {
      const tailnet = ctx.tailnet();
      const body = ctx.body as { endpointUrl: string; providerType: string; subscriptions: string[] };
      if (body.providerType !== '') throw v2Error(ApiV2Errors.notSupported, `providerType ${JSON.stringify(body.providerType)}: Headway sends Tailscale's generic JSON events only (providerType "")`);
      const url = checkWebhookUrl(body.endpointUrl);
      const hook = await ctx.state.store.transaction(async (tx) => {
        const created = await tx.webhooks.create({ tailnetId: tailnet.id, url, providerType: '', subscriptions: body.subscriptions, creator: ctx.principal.actor.name });
        await tx.audit.record({ tailnetId: tailnet.id, ...auditActor(ctx.principal.actor), action: 'webhook.create', target: `webhook:${created.endpointId}`, details: { url, subscriptions: body.subscriptions } });
        return created;
      });
      return webhookJson(hook, true);
    },
  }),
  v2Route({
    operationId: 'v2ListWebhooks', method: 'GET', path: '/tailnet/{tailnet}/webhooks', summary: 'List webhook endpoints', scope: 'webhooks',
    response: z.object({ webhooks: z.array(webhookSchema) }),
    async handle(ctx) {
      const tailnet = ctx.tailnet();
      return { webhooks: (await ctx.state.store.read.webhooks.list(tailnet.id)).map((h) => webhookJson(h, false)) };
    },
  }),
  v2Route({
    operationId: 'v2GetWebhook', method: 'GET', path: '/webhooks/{endpointId}', summary: 'Get a webhook endpoint', scope: 'webhooks', response: webhookSchema,
    async handle(ctx) {
      return webhookJson((await findWebhook(ctx)).hook, false);
    },
  }),
  v2Route({
    operationId: 'v2UpdateWebhook', method: 'PATCH', path: '/webhooks/{endpointId}', summary: 'Replace the subscriptions of a webhook endpoint', scope: 'webhooks',
    body: z.object({ subscriptions: z.array(subscription).min(1) }), response: webhookSchema,
    async handle(ctx) {
      const { hook, tailnet } = await findWebhook(ctx);
      const subscriptions = (ctx.body as { subscriptions: string[] }).subscriptions;
      const updated = await ctx.state.store.transaction(async (tx) => {
        const after = await tx.webhooks.update(hook.endpointId, { subscriptions });
        await tx.audit.record({ tailnetId: tailnet.id, ...auditActor(ctx.principal.actor), action: 'webhook.update', target: `webhook:${hook.endpointId}`, details: { subscriptions } });
        return after;
      });
      if (updated === undefined) throw v2Error(ApiV2Errors.notFound, 'webhook endpoint not found');
      return webhookJson(updated, false);
    },
  }),
  v2Route({
    operationId: 'v2DeleteWebhook', method: 'DELETE', path: '/webhooks/{endpointId}', summary: 'Delete a webhook endpoint and its queued deliveries', scope: 'webhooks',
    async handle(ctx) {
      const { hook, tailnet } = await findWebhook(ctx);
      await ctx.state.store.transaction(async (tx) => {
        await tx.webhooks.delete(hook.endpointId);
        await tx.audit.record({ tailnetId: tailnet.id, ...auditActor(ctx.principal.actor), action: 'webhook.delete', target: `webhook:${hook.endpointId}`, details: {} });
      });
      return reply({ status: 200 });
    },
  }),
  v2Route({
    operationId: 'v2TestWebhook', method: 'POST', path: '/webhooks/{endpointId}/test', summary: 'Queue a test event to the endpoint', scope: 'webhooks',
    async handle(ctx) {
      const { hook, tailnet } = await findWebhook(ctx);
      await ctx.state.store.transaction((tx) => tx.webhooks.enqueue(hook.id, JSON.stringify([testEvent(tailnet.name, ctx.now())])));
      return reply({ status: 202 });
    },
  }),
  v2Route({
    operationId: 'v2RotateWebhookSecret', method: 'POST', path: '/webhooks/{endpointId}/rotate', summary: 'Replace the signing secret; the answer holds the new one', scope: 'webhooks', response: webhookSchema,
    async handle(ctx) {
      const { hook, tailnet } = await findWebhook(ctx);
      const rotated = await ctx.state.store.transaction(async (tx) => {
        const after = await tx.webhooks.update(hook.endpointId, { rotateSecret: true });
        await tx.audit.record({ tailnetId: tailnet.id, ...auditActor(ctx.principal.actor), action: 'webhook.rotate', target: `webhook:${hook.endpointId}`, details: {} });
        return after;
      });
      if (rotated === undefined) throw v2Error(ApiV2Errors.notFound, 'webhook endpoint not found');
      return webhookJson(rotated, true);
    },
  }),
];

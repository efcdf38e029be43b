// headway webhooks: webhook endpoints of a tailnet, through Tailscale's API v2 (/api/v2) of the
// server (the same endpoints the Terraform provider's tailscale_webhook uses).
import type { Cli } from './program.js';
import { commaList } from './program.js';
import { list, renderTable, time } from './output.js';
import { usageError } from './errors.js';

interface WebhookJson {
  endpointId: string;
  endpointUrl: string;
  subscriptions: string[];
  created: string;
  lastModified: string;
  secret?: string;
}

const V2 = { apiPrefix: '/api/v2' };

export function registerWebhookCommands({ program, action }: Cli): void {
  const webhooks = program.command('webhooks').description("manage webhook endpoints (Tailscale's events, signed with Tailscale-Webhook-Signature)");
  webhooks.command('list')
    .description('list the webhook endpoints of the tailnet')
    .action(action(async (ctx) => {
      const out = await ctx.call<{ webhooks: WebhookJson[] }>('GET', `/tailnet/${encodeURIComponent(ctx.globals.tailnet)}/webhooks`, V2);
      ctx.print(out.webhooks, () => renderTable(out.webhooks, [
        { header: 'ID', value: (w) => w.endpointId },
        { header: 'URL', value: (w) => w.endpointUrl },
        { header: 'EVENTS', value: (w) => list(w.subscriptions) },
        { header: 'CREATED', value: (w) => time(w.created) },
      ]));
    }));
  webhooks.command('create')
    .description('add an endpoint; prints its signing secret once')
    .requiredOption('--url <url>', 'where events are POSTed')
    .requiredOption('--events <list>', 'comma-separated event types or categories (e.g. nodeCreated,policyUpdate or categoryTailnetManagement)')
    .action(action(async (ctx, _args, options) => {
      const subscriptions = commaList(String(options['events']));
      if (subscriptions.length === 0) throw usageError('--events: give at least one event type');
      ctx.fields({ 'body.endpointUrl': '--url', 'body.subscriptions': '--events' });
      const created = await ctx.call<WebhookJson>('POST', `/tailnet/${encodeURIComponent(ctx.globals.tailnet)}/webhooks`, { ...V2, body: { endpointUrl: String(options['url']), providerType: '', subscriptions } });
      ctx.print(created, () => `webhook ${created.endpointId} created for ${created.endpointUrl}\nsigning secret (shown once): ${created.secret ?? ''}\n`);
    }));
  for (const [name, description, method, suffix] of [
    ['delete', 'delete an endpoint and its queued deliveries', 'DELETE', ''],
    ['test', 'send a test event to an endpoint', 'POST', '/test'],
    ['rotate', 'replace the signing secret of an endpoint; prints the new one', 'POST', '/rotate'],
  ] as const) {
    webhooks.command(`${name} <endpoint-id>`)
      .description(description)
      .action(action(async (ctx, [id]) => {
        const out = await ctx.call<WebhookJson | Record<string, never>>(method, `/webhooks/${encodeURIComponent(id!)}${suffix}`, V2);
        ctx.print(out, () => name === 'rotate' ? `new signing secret (shown once): ${(out as WebhookJson).secret ?? ''}\n` : name === 'test' ? `test event queued for ${id}\n` : `webhook ${id} deleted\n`);
      }));
  }
}

// headway preauthkeys create|list|expire and headway apikeys create|list|expire
import type { ApiKeyJson, NewApiKeyJson, NewPreAuthKeyJson, PreAuthKeyJson } from '../api/index.js';
import { usageError } from './errors.js';
import { list, renderTable, time, yesNo } from './output.js';
import { commaList, type Cli } from './program.js';

/** Checks a duration option here, so a typo fails before anything is sent (same rule as the API). */
async function durationOption(option: string, text: string): Promise<string> {
  const { parsePositiveDuration } = await import('../api/index.js');
  const parsed = parsePositiveDuration(text);
  if (!parsed.ok) throw usageError(`${option}: ${parsed.problem}`);
  return text;
}

function keyStatus(k: { expired: boolean; usable?: boolean }): string {
  if (k.expired) return 'expired';
  return k.usable === false ? 'used' : 'valid';
}

export function registerKeyCommands({ program, action }: Cli): void {
  const preauthkeys = program.command('preauthkeys').description('manage pre-auth keys (register nodes without an interactive login)');

  preauthkeys.command('create')
    .description('create a pre-auth key; prints the key, which is shown only once')
    .option('-u, --user <user>', 'register nodes for this user (name or id)')
    .option('--reusable', 'the key may register any number of nodes until it expires', false)
    .option('--ephemeral', 'nodes registered with it are deleted when they go offline', false)
    .option('-e, --expiration <duration>', 'how long the key stays valid (units: ms, s, m, h, d, w)', '1h')
    .option('--tags <tags>', 'register nodes as tagged nodes, e.g. tag:ci,tag:prod')
    .option('--pre-approved', 'nodes registered with it skip device approval', false)
    .action(action(async (ctx, _args, options) => {
      ctx.fields({ 'body.user': '--user', 'body.tags': '--tags', 'body.expiration': '--expiration', body: '--user/--tags' });
      const expiration = await durationOption('--expiration', options['expiration'] as string);
      const created = await ctx.call<NewPreAuthKeyJson>('POST', '/preauthkeys', {
        query: { tailnet: ctx.globals.tailnet },
        body: {
          user: options['user'],
          reusable: options['reusable'] === true,
          ephemeral: options['ephemeral'] === true,
          expiration,
          tags: commaList(options['tags'] as string | undefined),
          pre_approved: options['preApproved'] === true,
        },
      });
      ctx.print(created, () => `${created.key}\n`);
    }));

  preauthkeys.command('list')
    .description('list pre-auth keys (never their secrets)')
    .option('-u, --user <user>', 'only the keys of this user (name or id)')
    .action(action(async (ctx, _args, options) => {
      const { preauthkeys: rows } = await ctx.call<{ preauthkeys: PreAuthKeyJson[] }>('GET', '/preauthkeys', {
        query: { tailnet: ctx.globals.tailnet, user: options['user'] as string | undefined },
      });
      ctx.print(rows, () => renderTable(rows, [
        { header: 'ID', value: (k) => String(k.id) },
        { header: 'PREFIX', value: (k) => k.prefix },
        { header: 'USER', value: (k) => k.user ?? '-' },
        { header: 'TAGS', value: (k) => list(k.tags) },
        { header: 'REUSABLE', value: (k) => yesNo(k.reusable) },
        { header: 'EPHEMERAL', value: (k) => yesNo(k.ephemeral) },
        { header: 'USED', value: (k) => String(k.used_count) },
        { header: 'EXPIRES', value: (k) => time(k.expiration) },
        { header: 'STATUS', value: keyStatus },
      ]));
    }));

  preauthkeys.command('expire')
    .description('expire a pre-auth key now (nodes it registered stay)')
    .argument('<key>', 'the key: id or prefix')
    .action(action(async (ctx, [key]) => {
      const expired = await ctx.call<PreAuthKeyJson>('POST', `/preauthkeys/${encodeURIComponent(key!)}/expire`, { query: { tailnet: ctx.globals.tailnet } });
      ctx.print(expired, () => `expired pre-auth key ${expired.id} (${expired.prefix})\n`);
    }));

  const apikeys = program.command('apikeys').description('manage API keys for --server and the HTTP admin API (server-wide)');

  apikeys.command('create')
    .description('create an API key; prints the key, which is shown only once')
    .option('-e, --expiration <duration>', 'how long the key stays valid (units: ms, s, m, h, d, w)', '90d')
    .action(action(async (ctx, _args, options) => {
      ctx.fields({ 'body.expiration': '--expiration' });
      const expiration = await durationOption('--expiration', options['expiration'] as string);
      const created = await ctx.call<NewApiKeyJson>('POST', '/apikeys', { body: { expiration } });
      ctx.print(created, () => `${created.key}\n`);
    }));

  apikeys.command('list')
    .description('list API keys (never their secrets)')
    .action(action(async (ctx) => {
      const { apikeys: rows } = await ctx.call<{ apikeys: ApiKeyJson[] }>('GET', '/apikeys');
      ctx.print(rows, () => renderTable(rows, [
        { header: 'ID', value: (k) => String(k.id) },
        { header: 'PREFIX', value: (k) => `hwk_${k.prefix}` },
        { header: 'EXPIRES', value: (k) => time(k.expiration) },
        { header: 'LAST USED', value: (k) => time(k.last_used_at) },
        { header: 'STATUS', value: keyStatus },
      ]));
    }));

  apikeys.command('expire')
    .description('expire an API key now')
    .argument('<prefix>', 'the key prefix (hwk_... or bare)')
    .action(action(async (ctx, [prefix]) => {
      const expired = await ctx.call<ApiKeyJson>('POST', `/apikeys/${encodeURIComponent(prefix!)}/expire`);
      ctx.print(expired, () => `expired API key hwk_${expired.prefix}\n`);
    }));
}

// headway tailnets create|list|get|set|owner|delete
import type { OwnerTransferJson, TailnetJson } from '../api/index.js';
import { renderTable, time } from './output.js';
import { usageError } from './errors.js';
import type { Cli } from './program.js';

export function registerTailnetCommands({ program, action }: Cli): void {
  const tailnets = program.command('tailnets').description('manage tailnets (server-wide; --tailnet is not used)');

  tailnets.command('create')
    .description('create a tailnet')
    .argument('<name>', 'a DNS label, e.g. lab')
    .action(action(async (ctx, [name]) => {
      ctx.fields({ 'body.name': '<name>' });
      const tailnet = await ctx.call<TailnetJson>('POST', '/tailnets', { body: { name } });
      ctx.print(tailnet, () => `created tailnet "${tailnet.name}" (id ${tailnet.id})\n`);
    }));

  tailnets.command('list')
    .description('list tailnets')
    .action(action(async (ctx) => {
      const { tailnets: rows } = await ctx.call<{ tailnets: TailnetJson[] }>('GET', '/tailnets');
      ctx.print(rows, () => renderTable(rows, [
        { header: 'ID', value: (t) => String(t.id) },
        { header: 'NAME', value: (t) => t.name },
        { header: 'USERS', value: (t) => String(t.user_count) },
        { header: 'NODES', value: (t) => String(t.node_count) },
        { header: 'APPROVAL', value: (t) => (t.settings.device_approval ? 'on' : 'off') },
        { header: 'CREATED', value: (t) => time(t.created_at) },
      ]));
    }));

  tailnets.command('get')
    .description('show a tailnet and its settings')
    .argument('<name>')
    .action(action(async (ctx, [name]) => {
      const tailnet = await ctx.call<TailnetJson>('GET', `/tailnets/${encodeURIComponent(name!)}`);
      ctx.print(tailnet, () => describeTailnet(tailnet));
    }));

  tailnets.command('set')
    .description('change tailnet settings; every node hears the change')
    .argument('<name>')
    .option('--auto-update <on|off>', 'the auto-update setting, sent to every node as default-auto-update')
    .option('--device-approval <on|off>', 'new devices of non-admin users wait for an admin (headway nodes approve)')
    .action(action(async (ctx, [name], options) => {
      ctx.fields({ 'body.settings.auto_update': '--auto-update', 'body.settings.device_approval': '--device-approval' });
      const settings: Record<string, boolean> = {};
      if (options['autoUpdate'] !== undefined) settings['auto_update'] = onOff(String(options['autoUpdate']), '--auto-update');
      if (options['deviceApproval'] !== undefined) settings['device_approval'] = onOff(String(options['deviceApproval']), '--device-approval');
      if (Object.keys(settings).length === 0) throw usageError('tailnets set: name a setting to change (--auto-update on|off, --device-approval on|off)');
      const tailnet = await ctx.call<TailnetJson>('PATCH', `/tailnets/${encodeURIComponent(name!)}`, { body: { settings } });
      ctx.print(tailnet, () => describeTailnet(tailnet));
    }));

  tailnets.command('owner')
    .description('give the tailnet an owner, or move ownership to another user (the former owner becomes an admin)')
    .argument('<name>', 'the tailnet')
    .argument('<user>', 'the new owner: a user name or id of that tailnet')
    .action(action(async (ctx, [name, user]) => {
      ctx.fields({ 'body.user': '<user>' });
      const moved = await ctx.call<OwnerTransferJson>('PUT', `/tailnets/${encodeURIComponent(name!)}/owner`, { body: { user } });
      ctx.print(moved, () => `${moved.owner.name} owns tailnet "${moved.tailnet}"${moved.previous_owner === null ? '' : `; ${moved.previous_owner.name} is now an admin`}\n`);
    }));

  tailnets.command('delete')
    .description('delete a tailnet with all its users, nodes, keys and policies')
    .argument('<name>')
    .action(action(async (ctx, [name]) => {
      const tailnet = await ctx.call<TailnetJson>('DELETE', `/tailnets/${encodeURIComponent(name!)}`);
      ctx.print(tailnet, () => `deleted tailnet "${tailnet.name}" (${tailnet.user_count} users, ${tailnet.node_count} nodes)\n`);
    }));
}

function describeTailnet(t: TailnetJson): string {
  return `tailnet "${t.name}" (id ${t.id}): ${t.user_count} users, ${t.node_count} nodes, created ${time(t.created_at)}\n` +
    `  auto-update: ${t.settings.auto_update ? 'on' : 'off'}\n` +
    `  device approval: ${t.settings.device_approval ? 'on' : 'off'}\n`;
}

function onOff(text: string, option: string): boolean {
  if (text === 'on' || text === 'true') return true;
  if (text === 'off' || text === 'false') return false;
  throw usageError(`${option}: want on or off, got ${JSON.stringify(text)}`);
}

// headway tailnets create|list|set|delete
import type { TailnetJson } from '../api/index.js';
import { renderTable, time } from './output.js';
import type { Cli } from './program.js';
import { usageError } from './errors.js';

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
        { header: 'APPROVAL', value: (t) => (t.device_approval ? 'on' : 'off') },
        { header: 'CREATED', value: (t) => time(t.created_at) },
      ]));
    }));

  tailnets.command('set')
    .description('change the settings of a tailnet')
    .argument('<name>')
    .option('--device-approval <on|off>', 'new devices of non-admin users wait for an admin (headway nodes approve)')
    .action(action(async (ctx, [name], options) => {
      const value = options['deviceApproval'] as string | undefined;
      if (value !== undefined && value !== 'on' && value !== 'off') throw usageError(`--device-approval: want on or off, got ${JSON.stringify(value)}`);
      const tailnet = await ctx.call<TailnetJson>('PATCH', `/tailnets/${encodeURIComponent(name!)}`, {
        body: value === undefined ? {} : { device_approval: value === 'on' },
      });
      ctx.print(tailnet, () => `tailnet "${tailnet.name}": device approval ${tailnet.device_approval ? 'on' : 'off'}\n`);
    }));

  tailnets.command('delete')
    .description('delete a tailnet with all its users, nodes, keys and policies')
    .argument('<name>')
    .action(action(async (ctx, [name]) => {
      const tailnet = await ctx.call<TailnetJson>('DELETE', `/tailnets/${encodeURIComponent(name!)}`);
      ctx.print(tailnet, () => `deleted tailnet "${tailnet.name}" (${tailnet.user_count} users, ${tailnet.node_count} nodes)\n`);
    }));
}

// headway users create|list|rename|set-role|delete
import type { UserJson } from '../api/index.js';
import { renderTable, time } from './output.js';
import type { Cli } from './program.js';

export function registerUserCommands({ program, action }: Cli): void {
  const users = program.command('users').description('manage the users of a tailnet');

  users.command('create')
    .description('create a user')
    .argument('<name>', 'unique in the tailnet, e.g. alice or alice@example.com')
    .option('--display-name <text>', 'the name shown in clients')
    .option('--email <address>', 'what policies may write to mean this user')
    .option('--role <role>', 'admin, it-admin, network-admin, billing-admin, auditor or member (default member)')
    .action(action(async (ctx, [name], options) => {
      ctx.fields({ 'body.name': '<name>', 'body.display_name': '--display-name', 'body.email': '--email', 'body.role': '--role' });
      const user = await ctx.call<UserJson>('POST', '/users', {
        query: { tailnet: ctx.globals.tailnet },
        body: { name, display_name: options['displayName'], email: options['email'], role: options['role'] },
      });
      ctx.print(user, () => `created user "${user.name}" (id ${user.id})\n`);
    }));

  users.command('list')
    .description('list users')
    .action(action(async (ctx) => {
      const { users: rows } = await ctx.call<{ users: UserJson[] }>('GET', '/users', { query: { tailnet: ctx.globals.tailnet } });
      ctx.print(rows, () => renderTable(rows, [
        { header: 'ID', value: (u) => String(u.id) },
        { header: 'NAME', value: (u) => u.name },
        { header: 'DISPLAY NAME', value: (u) => u.display_name || '-' },
        { header: 'EMAIL', value: (u) => u.email || '-' },
        { header: 'ROLE', value: (u) => u.role },
        { header: 'CREATED', value: (u) => time(u.created_at) },
      ]));
    }));

  users.command('rename')
    .description('rename a user')
    .argument('<user>', 'the user: name or id')
    .argument('<new-name>')
    .action(action(async (ctx, [user, name]) => {
      ctx.fields({ 'body.name': '<new-name>' });
      const renamed = await ctx.call<UserJson>('PATCH', `/users/${encodeURIComponent(user!)}`, {
        query: { tailnet: ctx.globals.tailnet },
        body: { name },
      });
      ctx.print(renamed, () => `renamed user ${renamed.id} to "${renamed.name}"\n`);
    }));

  users.command('set-role')
    .description("give a user one of Tailscale's roles (what autogroup:admin and the like select)")
    .argument('<user>', 'the user: name or id')
    .argument('<role>', 'admin, it-admin, network-admin, billing-admin, auditor or member')
    .action(action(async (ctx, [user, role]) => {
      ctx.fields({ 'body.role': '<role>' });
      const updated = await ctx.call<UserJson>('PATCH', `/users/${encodeURIComponent(user!)}`, {
        query: { tailnet: ctx.globals.tailnet },
        body: { role },
      });
      ctx.print(updated, () => `user "${updated.name}" is now ${updated.role}\n`);
    }));

  users.command('delete')
    .description('delete a user (it must own no nodes)')
    .argument('<user>', 'the user: name or id')
    .action(action(async (ctx, [user]) => {
      const deleted = await ctx.call<UserJson>('DELETE', `/users/${encodeURIComponent(user!)}`, { query: { tailnet: ctx.globals.tailnet } });
      ctx.print(deleted, () => `deleted user "${deleted.name}" (id ${deleted.id})\n`);
    }));
}

// headway admin login-link: a short-lived, single-use sign-in link to the web console, for a
// server without OIDC (or for the operator when OIDC is down). Runs over the unix socket, so
// whoever can reach the socket can sign in: the same trust as every other admin command.
import { usageError } from './errors.js';
import type { Cli } from './program.js';

interface LoginLinkJson { url: string; path: string; expires_at: string; actor: string }

export function registerAdminCommands({ program, action }: Cli): void {
  const admin = program.command('admin').description('web console access');

  admin.command('login-link')
    .description('print a single-use link that signs a browser in to the web console (/admin)')
    .option('-u, --user <user>', 'sign in as this user of the tailnet (with the user\'s role); default: the server operator')
    .option('--ttl <duration>', 'how long the link stays valid (at most 1h)', '5m')
    .action(action(async (ctx, _args, options) => {
      ctx.fields({ 'body.user': '--user', 'body.ttl': '--ttl' });
      const ttl = options['ttl'] as string;
      const { parsePositiveDuration } = await import('../api/index.js');
      const parsed = parsePositiveDuration(ttl);
      if (!parsed.ok) throw usageError(`--ttl: ${parsed.problem}`);
      const link = await ctx.call<LoginLinkJson>('POST', '/console/login-links', {
        query: { tailnet: ctx.globals.tailnet },
        body: { ...(options['user'] !== undefined ? { user: options['user'] } : {}), ttl },
      });
      ctx.print(link, () => `${link.url}\nsigns in ${link.actor}; works once, until ${link.expires_at}\n`);
    }));
}

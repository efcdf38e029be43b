// headway nodes list|show|rename|tag|expire|delete|move|register, and nodes routes list|approve
import type { NodeJson, NodeRoutesJson } from '../api/index.js';
import { list, renderFields, renderTable, time, yesNo, type Column } from './output.js';
import { commaList, type Cli } from './program.js';
import { usageError } from './errors.js';

const NODE_COLUMNS: readonly Column<NodeJson>[] = [
  { header: 'ID', value: (n) => String(n.id) },
  { header: 'NAME', value: (n) => n.name },
  { header: 'HOSTNAME', value: (n) => n.hostname },
  { header: 'USER', value: (n) => n.user ?? '-' },
  { header: 'TAGS', value: (n) => list(n.tags) },
  { header: 'IPV4', value: (n) => n.ipv4 ?? '-' },
  { header: 'IPV6', value: (n) => n.ipv6 ?? '-' },
  { header: 'ONLINE', value: (n) => yesNo(n.online) },
  { header: 'LAST SEEN', value: (n) => time(n.last_seen) },
  { header: 'EXPIRES', value: (n) => (n.expired ? 'expired' : time(n.key_expiry)) },
];

export function renderNode(n: NodeJson): string {
  return renderFields([
    ['id', String(n.id)],
    ['name', n.name],
    ['hostname', n.hostname],
    ['user', n.user ?? '-'],
    ['tags', list(n.tags)],
    ['ipv4', n.ipv4 ?? '-'],
    ['ipv6', n.ipv6 ?? '-'],
    ['online', yesNo(n.online)],
    ['last seen', time(n.last_seen)],
    ['key expiry', n.key_expiry === null ? 'never' : `${time(n.key_expiry)}${n.expired ? ' (expired)' : ''}`],
    ['ephemeral', yesNo(n.ephemeral)],
    ['advertised routes', list(n.advertised_routes)],
    ['approved routes', list(n.approved_routes)],
    ['os', n.os || '-'],
    ['client version', n.client_version || '-'],
    ['machine key', n.machine_key],
    ['node key', n.node_key],
    ['disco key', n.disco_key ?? '-'],
    ['registered by', n.register_method],
    ['approved', n.approved ? 'yes' : 'no (waits for: headway nodes approve)'],
    ['created', time(n.created_at)],
    ['updated', time(n.updated_at)],
  ]);
}

const ROUTE_COLUMNS: readonly Column<NodeRoutesJson>[] = [
  { header: 'NODE ID', value: (r) => String(r.node_id) },
  { header: 'NODE', value: (r) => r.node },
  { header: 'ADVERTISED', value: (r) => list(r.advertised_routes) },
  { header: 'APPROVED', value: (r) => list(r.approved_routes) },
];

const nodePath = (node: string | undefined, rest = ''): string => `/nodes/${encodeURIComponent(node ?? '')}${rest}`;

export function registerNodeCommands({ program, action }: Cli): void {
  const nodes = program.command('nodes').description('manage the nodes (devices) of a tailnet');
  const nodeArg = ['<node>', 'the node: id, name, or nodekey:...'] as const;

  nodes.command('list')
    .description('list nodes')
    .option('-u, --user <user>', 'only the nodes of this user (name or id)')
    .action(action(async (ctx, _args, options) => {
      const { nodes: rows } = await ctx.call<{ nodes: NodeJson[] }>('GET', '/nodes', {
        query: { tailnet: ctx.globals.tailnet, user: options['user'] as string | undefined },
      });
      ctx.print(rows, () => renderTable(rows, NODE_COLUMNS));
    }));

  nodes.command('show')
    .description('show every detail of one node')
    .argument(...nodeArg)
    .action(action(async (ctx, [node]) => {
      const shown = await ctx.call<NodeJson>('GET', nodePath(node), { query: { tailnet: ctx.globals.tailnet } });
      ctx.print(shown, () => renderNode(shown));
    }));

  nodes.command('rename')
    .description('rename a node (its MagicDNS name)')
    .argument(...nodeArg)
    .argument('<new-name>', 'a DNS label, unique in the tailnet')
    .action(action(async (ctx, [node, name]) => {
      ctx.fields({ 'body.name': '<new-name>' });
      const renamed = await ctx.call<NodeJson>('POST', nodePath(node, '/rename'), { query: { tailnet: ctx.globals.tailnet }, body: { name } });
      ctx.print(renamed, () => `renamed node ${renamed.id} to "${renamed.name}"\n`);
    }));

  nodes.command('tag')
    .description('set the tags of a node (replacing its tags; --tags "" removes them)')
    .argument(...nodeArg)
    .requiredOption('--tags <tags>', 'comma-separated, e.g. tag:web,tag:prod')
    .action(action(async (ctx, [node], options) => {
      ctx.fields({ 'body.tags': '--tags' });
      const tagged = await ctx.call<NodeJson>('POST', nodePath(node, '/tags'), {
        query: { tailnet: ctx.globals.tailnet },
        body: { tags: commaList(options['tags'] as string) },
      });
      ctx.print(tagged, () => `node ${tagged.id} "${tagged.name}" now has tags: ${list(tagged.tags)}\n`);
    }));

  nodes.command('expire')
    .description('expire a node\'s key now (it must log in again), or set or clear when it expires')
    .argument(...nodeArg)
    .option('--at <time|duration>', 'expire at an RFC 3339 time, or after a duration from now (24h, 90d)')
    .option('--never', 'clear the expiry: the key never expires')
    .action(action(async (ctx, [node], options) => {
      if (options.at !== undefined && options.never === true) throw usageError('--at and --never exclude each other');
      const body = options.never === true ? { expiry: null } : options.at !== undefined ? { expiry: String(options.at) } : {};
      ctx.fields({ 'body.expiry': '--at' });
      const expired = await ctx.call<NodeJson>('POST', nodePath(node, '/expire'), { query: { tailnet: ctx.globals.tailnet }, body });
      ctx.print(expired, () => expired.key_expiry === null
        ? `node ${expired.id} "${expired.name}" no longer expires\n`
        : options.at === undefined ? `expired node ${expired.id} "${expired.name}"\n` : `node ${expired.id} "${expired.name}" expires at ${expired.key_expiry}\n`);
    }));

  nodes.command('approve')
    .description('approve a device that waits for approval (tailnet setting device_approval): it joins the tailnet at once')
    .argument(...nodeArg)
    .action(action(async (ctx, [node]) => {
      const approved = await ctx.call<NodeJson>('POST', nodePath(node, '/approve'), { query: { tailnet: ctx.globals.tailnet } });
      ctx.print(approved, () => `approved node ${approved.id} "${approved.name}"\n`);
    }));

  nodes.command('delete')
    .description('delete a node')
    .argument(...nodeArg)
    .action(action(async (ctx, [node]) => {
      const deleted = await ctx.call<NodeJson>('DELETE', nodePath(node), { query: { tailnet: ctx.globals.tailnet } });
      ctx.print(deleted, () => `deleted node ${deleted.id} "${deleted.name}"\n`);
    }));

  nodes.command('move')
    .description('move a node to another user')
    .argument(...nodeArg)
    .requiredOption('-u, --user <user>', 'the new owner (name or id)')
    .action(action(async (ctx, [node], options) => {
      ctx.fields({ 'body.user': '--user' });
      const moved = await ctx.call<NodeJson>('POST', nodePath(node, '/move'), {
        query: { tailnet: ctx.globals.tailnet },
        body: { user: options['user'] },
      });
      ctx.print(moved, () => `moved node ${moved.id} "${moved.name}" to user "${moved.user}"\n`);
    }));

  nodes.command('register')
    .description('approve a waiting interactive login (the key is the end of the URL `tailscale up` printed)')
    .requiredOption('-k, --key <key>', 'the registration key, or the whole login URL')
    .option('-u, --user <user>', 'register the node for this user (name or id)')
    .option('--tags <tags>', 'register it as a tagged node, e.g. tag:server')
    .action(action(async (ctx, _args, options) => {
      ctx.fields({ 'body.key': '--key', 'body.user': '--user', 'body.tags': '--tags', body: '--user/--tags' });
      const tags = commaList(options['tags'] as string | undefined);
      const node = await ctx.call<NodeJson>('POST', '/nodes/register', {
        query: { tailnet: ctx.globals.tailnet },
        body: { key: options['key'], user: options['user'], tags: options['tags'] === undefined ? undefined : tags },
      });
      ctx.print(node, () => `registered node ${node.id} "${node.name}" (${node.ipv4 ?? node.ipv6 ?? 'no address'})\n`);
    }));

  const routes = nodes.command('routes').description('subnet and exit routes of nodes');

  routes.command('list')
    .description('list the routes nodes advertise and the routes approved for them')
    .argument('[node]', 'only this node')
    .action(action(async (ctx, [node]) => {
      const query = { tailnet: ctx.globals.tailnet };
      const rows = node
        ? [await ctx.call<NodeRoutesJson>('GET', nodePath(node, '/routes'), { query })]
        : (await ctx.call<{ routes: NodeRoutesJson[] }>('GET', '/routes', { query })).routes;
      ctx.print(rows, () => renderTable(rows, ROUTE_COLUMNS));
    }));

  routes.command('approve')
    .description('set the approved routes of a node (replacing them; --routes "" withdraws all)')
    .argument(...nodeArg)
    .requiredOption('-r, --routes <routes>', 'comma-separated prefixes, e.g. 10.0.0.0/24,0.0.0.0/0,::/0')
    .action(action(async (ctx, [node], options) => {
      ctx.fields({ 'body.routes': '--routes' });
      const approved = await ctx.call<NodeRoutesJson>('POST', nodePath(node, '/routes/approve'), {
        query: { tailnet: ctx.globals.tailnet },
        body: { routes: commaList(options['routes'] as string) },
      });
      ctx.print(approved, () => renderTable([approved], ROUTE_COLUMNS));
    }));
}

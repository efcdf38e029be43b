// Nodes of a tailnet: list, show, rename, tag, expire, delete, move to another user, and
// register (approve a waiting interactive login by its registration key).
import { z } from 'zod';
import type { Node, UserId } from '../model/index.js';
import { findNode, findUser } from './lookup.js';
import { HeadwayError } from '../util/headway-error.js';
import { ApiErrors, apiError } from './errors.js';
import { defineRoute, type RouteContext, type Route, type Viewer } from './route.js';
import { expiryFromText, expiryText, nodeJsonFrom, nodeListItemJsonFrom, nodeListItemSchema, nodeSchema, tagName, userRef, type NodeJson } from './schemas.js';
import { requireTagsDefined } from './tag-owners.js';

const bulkNodes = z.array(z.union([z.string().min(1), z.number().int().positive()])).min(1).max(10_000)
  .describe('The nodes: numeric ids, names or `nodekey:`s (1 to 10000).');

const nodeParam = z.strictObject({ node: z.string().min(1).describe('The node: its numeric id, its name, or its `nodekey:`.') });

function nodeJson(ctx: RouteContext<unknown, unknown, unknown>, node: Node): NodeJson {
  return nodeJsonFrom(node, ctx.tailnet, ctx.deps.now());
}

/** Admins see every node; a console member only the untagged nodes of their own user. */
export function visibleTo(viewer: Viewer, node: Node): boolean {
  return viewer.admin || (viewer.userId !== null && node.userId === viewer.userId && node.tags.length === 0);
}

function notVisible(ref: string): HeadwayError {
  return apiError(ApiErrors.nodeNotVisible, `node "${ref}" not found`);
}

/** The registration id from what an admin may paste: the id, or the whole AuthURL. */
export function registrationIdFrom(text: string): string {
  const trimmed = text.trim().replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  return slash === -1 ? trimmed : trimmed.slice(slash + 1);
}

export const nodeRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'listNodes',
    method: 'GET',
    path: '/nodes',
    group: 'nodes',
    scope: 'tailnet',
    summary: 'List the nodes of a tailnet',
    description:
      'A console member (not an admin) gets only the untagged nodes of their own user. `view=list` answers each node ' +
      'with the fields a list shows (NodeListItem: no keys, endpoints or timestamps), about half the bytes: what the ' +
      'console\'s machine list of a big tailnet asks for.',
    members: true,
    query: z.strictObject({
      user: z.string().min(1).optional().describe('Only the nodes of this user (name or id).'),
      view: z.enum(['full', 'list']).optional().describe('`full` (default): every field; `list`: NodeListItem.'),
    }),
    response: z.object({ nodes: z.union([z.array(nodeSchema), z.array(nodeListItemSchema)]) }),
    errors: [404],
    async handle(ctx) {
      const userId = ctx.query.user === undefined ? undefined : findUser(ctx.tailnet, ctx.query.user).id;
      const nodes = [...ctx.tailnet.nodes()]
        .filter((n) => (userId === undefined || n.userId === userId) && visibleTo(ctx.viewer, n))
        .sort((a, b) => a.id - b.id);
      const now = ctx.deps.now();
      if (ctx.query.view === 'list') return { nodes: nodes.map((n) => nodeListItemJsonFrom(n, ctx.tailnet, now)) };
      return { nodes: nodes.map((n) => nodeJson(ctx, n)) };
    },
  }),
  defineRoute({
    operationId: 'getNode',
    method: 'GET',
    path: '/nodes/{node}',
    group: 'nodes',
    scope: 'tailnet',
    summary: 'Show one node',
    description: 'A console member may see only their own untagged nodes; any other is a 404 to them.',
    members: true,
    params: nodeParam,
    response: nodeSchema,
    errors: [404],
    async handle(ctx) {
      const node = findNode(ctx.tailnet, ctx.params.node, ctx.deps.state);
      if (!visibleTo(ctx.viewer, node)) throw notVisible(ctx.params.node);
      return nodeJson(ctx, node);
    },
  }),
  defineRoute({
    operationId: 'renameNode',
    method: 'POST',
    path: '/nodes/{node}/rename',
    group: 'nodes',
    scope: 'tailnet',
    summary: 'Rename a node (its MagicDNS name)',
    params: nodeParam,
    body: z.strictObject({ name: z.string().min(1).max(63).describe('A DNS label, unique in the tailnet.') }),
    response: nodeSchema,
    errors: [404, 409],
    async handle(ctx) {
      const node = findNode(ctx.tailnet, ctx.params.node, ctx.deps.state);
      return nodeJson(ctx, await ctx.tailnet.renameNode(node.id, ctx.body.name, ctx.actor));
    },
  }),
  defineRoute({
    operationId: 'tagNode',
    method: 'POST',
    path: '/nodes/{node}/tags',
    group: 'nodes',
    scope: 'tailnet',
    summary: 'Set the tags of a node',
    description: 'Replaces the node\'s tags. An empty list untags the node (it must then have a user). When the tailnet has a policy, every tag must be defined in its tagOwners.',
    params: nodeParam,
    body: z.strictObject({ tags: z.array(tagName).max(64).describe('The tags the node will carry, e.g. ["tag:web"]; [] untags it.') }),
    response: nodeSchema,
    errors: [404],
    async handle(ctx) {
      const node = findNode(ctx.tailnet, ctx.params.node, ctx.deps.state);
      requireTagsDefined(ctx.tailnet, ctx.body.tags, 'body.tags');
      return nodeJson(ctx, await ctx.tailnet.updateNode(node.id, { tags: ctx.body.tags }, ctx.actor, { action: 'node.tag' }));
    },
  }),
  defineRoute({
    operationId: 'expireNode',
    method: 'POST',
    path: '/nodes/{node}/expire',
    group: 'nodes',
    scope: 'tailnet',
    summary: 'Expire a node\'s key now, set when it expires, or clear its expiry',
    description:
      'Without a body (or with `{}`) the key expires now and the node must log in again (`tailscale up`) before it ' +
      'can reach its peers. `{"expiry": "2026-12-31T00:00:00Z"}` or `{"expiry": "90d"}` sets the expiry; ' +
      '`{"expiry": null}` clears it (the key never expires). Peers and the node itself are told.',
    params: nodeParam,
    body: z.strictObject({ expiry: z.union([expiryText, z.null()]).optional() }),
    response: nodeSchema,
    errors: [404],
    async handle(ctx) {
      const node = findNode(ctx.tailnet, ctx.params.node, ctx.deps.state);
      const now = ctx.deps.now();
      const expiry = ctx.body.expiry === undefined ? new Date(now) : ctx.body.expiry === null ? null : expiryFromText(ctx.body.expiry, now);
      return nodeJson(ctx, await ctx.tailnet.updateNode(node.id, { keyExpiry: expiry }, ctx.actor, { action: 'node.expire' }));
    },
  }),
  defineRoute({
    operationId: 'deleteNode',
    method: 'DELETE',
    path: '/nodes/{node}',
    group: 'nodes',
    scope: 'tailnet',
    summary: 'Delete a node; returns it as it was',
    params: nodeParam,
    response: nodeSchema,
    errors: [404],
    async handle(ctx) {
      const node = findNode(ctx.tailnet, ctx.params.node, ctx.deps.state);
      const before = nodeJson(ctx, node);
      await ctx.tailnet.deleteNode(node.id, ctx.actor);
      return before;
    },
  }),
  defineRoute({
    operationId: 'moveNode',
    method: 'POST',
    path: '/nodes/{node}/move',
    group: 'nodes',
    scope: 'tailnet',
    summary: 'Move a node to another user',
    params: nodeParam,
    body: z.strictObject({ user: userRef }),
    response: nodeSchema,
    errors: [404],
    async handle(ctx) {
      const node = findNode(ctx.tailnet, ctx.params.node, ctx.deps.state);
      const user = findUser(ctx.tailnet, ctx.body.user);
      return nodeJson(ctx, await ctx.tailnet.updateNode(node.id, { userId: user.id }, ctx.actor, { action: 'node.move' }));
    },
  }),
  defineRoute({
    operationId: 'registerNode',
    method: 'POST',
    path: '/nodes/register',
    group: 'nodes',
    scope: 'tailnet',
    summary: 'Approve a waiting interactive login',
    description:
      'A client that runs `tailscale up` without an auth key is shown a URL ending in a registration key; ' +
      'approving it registers the node for `user`, or as a tagged node with `tags` (then `user` is optional and ' +
      'records who registered it). A machine that logs in again keeps its node, addresses and name. Untagged ' +
      'nodes get the key expiry the client asked for, else `node_expiry` from the configuration; tagged nodes ' +
      'never expire.',
    body: z.strictObject({
      key: z.string().min(1).max(512).describe('The registration key, or the whole URL the client printed.'),
      user: userRef.optional(),
      tags: z.array(tagName).max(64).optional().describe('Register as a tagged node carrying these tags.'),
    }).refine((b) => b.user !== undefined || (b.tags !== undefined && b.tags.length > 0), { error: 'give user or tags (a node must be owned by a user or by tags)' }),
    response: nodeSchema,
    status: 201,
    errors: [404],
    async handle(ctx) {
      const { state, config } = ctx.deps;
      const id = registrationIdFrom(ctx.body.key);
      const userId: UserId | null = ctx.body.user === undefined ? null : findUser(ctx.tailnet, ctx.body.user).id;
      const tags = ctx.body.tags ?? [];
      requireTagsDefined(ctx.tailnet, tags, 'body.tags');
      const now = ctx.deps.now();
      const requested = (await state.pending.lookup(id))?.requestedExpiry ?? null;
      let keyExpiry: Date | null = null;
      if (tags.length === 0) {
        if (requested !== null && requested.getTime() > now) keyExpiry = requested;
        else if (ctx.tailnet.nodeExpiryMs(config.nodeExpiryMs) > 0) keyExpiry = new Date(now + ctx.tailnet.nodeExpiryMs(config.nodeExpiryMs));
      }
      // The admin who registers a device approves it (device approval has nothing left to wait for).
      const node = await state.approvePending(id, ctx.tailnet, { userId, tags, keyExpiry, approved: true }, ctx.actor);
      return nodeJson(ctx, node);
    },
  }),
  defineRoute({
    operationId: 'bulkUpdateNodes',
    method: 'POST',
    path: '/nodes/bulk',
    group: 'nodes',
    scope: 'tailnet',
    summary: 'Apply one action to several nodes at once: set tags, move to a user, expire keys, approve',
    description:
      'The console\'s bulk actions. `action` is `set_tags` (with `tags`; [] untags), `move` (with `user`), `expire` ' +
      '(keys expire now) or `approve` (devices waiting for approval). All named nodes change in one transaction, each ' +
      'with its audit entry, or none does: an unknown node, an undefined tag or a node left with neither user nor tags ' +
      'refuses the whole call and names the node. Deleting stays one `DELETE /nodes/{node}` per node.',
    body: z.discriminatedUnion('action', [
      z.strictObject({ action: z.literal('set_tags'), nodes: bulkNodes, tags: z.array(tagName).max(64).describe('The tags every node will carry; [] untags them.') }),
      z.strictObject({ action: z.literal('move'), nodes: bulkNodes, user: userRef.describe('The user the nodes move to.') }),
      z.strictObject({ action: z.literal('expire'), nodes: bulkNodes }),
      z.strictObject({ action: z.literal('approve'), nodes: bulkNodes }),
    ]),
    response: z.object({ nodes: z.array(nodeSchema).describe('The nodes after the change, in the order given.') }),
    errors: [404],
    async handle(ctx) {
      const { tailnet, body, actor, deps } = ctx;
      const ids = body.nodes.map((ref) => findNode(tailnet, ref, deps.state).id);
      let changed: Node[];
      switch (body.action) {
        case 'set_tags':
          requireTagsDefined(tailnet, body.tags, 'body.tags');
          changed = await tailnet.updateNodes(ids, { tags: body.tags }, actor, { action: 'node.tag' });
          break;
        case 'move':
          changed = await tailnet.updateNodes(ids, { userId: findUser(tailnet, body.user).id }, actor, { action: 'node.move' });
          break;
        case 'expire':
          changed = await tailnet.updateNodes(ids, { keyExpiry: new Date(deps.now()) }, actor, { action: 'node.expire' });
          break;
        case 'approve':
          changed = await tailnet.updateNodes(ids, { approved: true }, actor, { action: 'node.approve' });
          break;
      }
      return { nodes: changed.map((n) => nodeJson(ctx, n)) };
    },
  }),
  defineRoute({
    operationId: 'approveNode',
    method: 'POST',
    path: '/nodes/{node}/approve',
    group: 'nodes',
    scope: 'tailnet',
    summary: 'Approve a device that waits for approval',
    description:
      'With the tailnet setting `device_approval`, new devices of non-admin users are registered but wait: no peer ' +
      'sees them and they see no peer. Approving one lets it join at once. Approving an approved node changes nothing.',
    params: nodeParam,
    response: nodeSchema,
    errors: [404],
    async handle({ tailnet, params, deps, actor }) {
      const node = findNode(tailnet, params.node, deps.state);
      const after = node.approved ? node : await tailnet.approveNode(node.id, actor);
      return nodeJsonFrom(after, tailnet, deps.now());
    },
  }),
];

// Subnet routes and exit routes: what nodes advertise and what an admin approved.
import { z } from 'zod';
import { findNode } from './lookup.js';
import { defineRoute, type Route } from './route.js';
import { nodeRoutesJsonFrom, nodeRoutesSchema, routePrefix } from './schemas.js';

const nodeParam = z.strictObject({ node: z.string().min(1).describe('The node: its numeric id, its name, or its `nodekey:`.') });

export const nodeRouteRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'listRoutes',
    method: 'GET',
    path: '/routes',
    group: 'routes',
    scope: 'tailnet',
    summary: 'List the routes of every node that advertises or has approved routes',
    response: z.object({ routes: z.array(nodeRoutesSchema) }),
    errors: [404],
    async handle({ tailnet }) {
      const nodes = [...tailnet.nodes()]
        .filter((n) => n.advertisedRoutes.length > 0 || n.approvedRoutes.length > 0)
        .sort((a, b) => a.id - b.id);
      return { routes: nodes.map(nodeRoutesJsonFrom) };
    },
  }),
  defineRoute({
    operationId: 'getNodeRoutes',
    method: 'GET',
    path: '/nodes/{node}/routes',
    group: 'routes',
    scope: 'tailnet',
    summary: 'Show the routes of one node',
    params: nodeParam,
    response: nodeRoutesSchema,
    errors: [404],
    async handle({ tailnet, params, deps }) {
      return nodeRoutesJsonFrom(findNode(tailnet, params.node, deps.state));
    },
  }),
  defineRoute({
    operationId: 'approveNodeRoutes',
    method: 'POST',
    path: '/nodes/{node}/routes/approve',
    group: 'routes',
    scope: 'tailnet',
    summary: 'Set the approved routes of a node',
    description:
      'Replaces the node\'s approved routes with `routes` (an empty list withdraws every approval). A route may be ' +
      'approved before the node advertises it; the node serves a route only while it both advertises it and has it ' +
      'approved (or the policy\'s autoApprovers approve it). Exit nodes: approve `0.0.0.0/0` and `::/0`.',
    params: nodeParam,
    body: z.strictObject({ routes: z.array(routePrefix).max(1024).describe('The complete list of approved routes, e.g. ["10.0.0.0/24", "0.0.0.0/0", "::/0"].') }),
    response: nodeRoutesSchema,
    errors: [404],
    async handle({ tailnet, params, body, deps, actor }) {
      const node = findNode(tailnet, params.node, deps.state);
      const after = await tailnet.updateNode(node.id, { approvedRoutes: body.routes }, actor, { action: 'node.routes.approve' });
      return nodeRoutesJsonFrom(after);
    },
  }),
];

// Tailnets: list, create, delete. Server-wide routes; the tailnet is named in the path.
import { z } from 'zod';
import { defineRoute, type Route } from './route.js';
import { tailnetJsonFrom, tailnetSchema } from './schemas.js';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const tailnetName = z.string().superRefine((text, ctx) => {
  if (!DNS_LABEL.test(text)) {
    ctx.addIssue({ code: 'custom', input: text, message: `${JSON.stringify(text)} is not a DNS label (lower-case letters, digits and inner dashes, at most 63)` });
  }
}).describe('A DNS label: lower-case letters, digits and inner dashes, at most 63 characters.');

export const tailnetRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'listTailnets',
    method: 'GET',
    path: '/tailnets',
    group: 'tailnets',
    scope: 'server',
    summary: 'List tailnets',
    response: z.object({ tailnets: z.array(tailnetSchema) }),
    async handle({ deps }) {
      const tailnets = [...deps.state.tailnets()].sort((a, b) => a.id - b.id);
      return { tailnets: tailnets.map(tailnetJsonFrom) };
    },
  }),
  defineRoute({
    operationId: 'createTailnet',
    method: 'POST',
    path: '/tailnets',
    group: 'tailnets',
    scope: 'server',
    summary: 'Create a tailnet',
    body: z.strictObject({ name: tailnetName }),
    response: tailnetSchema,
    status: 201,
    errors: [409],
    async handle({ deps, body, actor }) {
      return tailnetJsonFrom(await deps.state.createTailnet(body.name, actor));
    },
  }),
  defineRoute({
    operationId: 'deleteTailnet',
    method: 'DELETE',
    path: '/tailnets/{tailnet}',
    group: 'tailnets',
    scope: 'server',
    summary: 'Delete a tailnet with everything in it; returns it as it was',
    description: 'Deletes its users, nodes, keys and policies. The `default` tailnet cannot be deleted (409).',
    params: z.strictObject({ tailnet: z.string().min(1) }),
    response: tailnetSchema,
    errors: [404, 409],
    async handle({ deps, params, actor }) {
      const tailnet = deps.state.requireTailnet(params.tailnet);
      const before = tailnetJsonFrom(tailnet);
      await deps.state.deleteTailnet(params.tailnet, actor);
      return before;
    },
  }),
  defineRoute({
    operationId: 'updateTailnetSettings',
    method: 'PATCH',
    path: '/tailnets/{tailnet}',
    group: 'tailnets',
    scope: 'server',
    summary: 'Change the settings of a tailnet',
    description: '`device_approval`: new devices of non-admin users wait for an admin\'s approval (`POST /nodes/{node}/approve`); keys created with `pre_approved` skip it.',
    params: z.strictObject({ tailnet: z.string().min(1) }),
    body: z.strictObject({ device_approval: z.boolean().optional() }),
    response: tailnetSchema,
    errors: [404],
    async handle({ deps, params, body, actor }) {
      const tailnet = deps.state.requireTailnet(params.tailnet);
      if (body.device_approval !== undefined && body.device_approval !== tailnet.deviceApproval) await tailnet.setDeviceApproval(body.device_approval, actor);
      return tailnetJsonFrom(tailnet);
    },
  }),
];

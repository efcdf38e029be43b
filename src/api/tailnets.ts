// Tailnets: list, create, read, change settings, delete. Server-wide routes; the tailnet is
// named in the path.
import { z } from 'zod';
import { defineRoute, type Route } from './route.js';
import { tailnetJsonFrom, tailnetSchema, tailnetSettingsSchema } from './schemas.js';

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
    operationId: 'getTailnet',
    method: 'GET',
    path: '/tailnets/{tailnet}',
    group: 'tailnets',
    scope: 'server',
    summary: 'Get a tailnet with its settings',
    params: z.strictObject({ tailnet: z.string().min(1) }),
    response: tailnetSchema,
    errors: [404],
    async handle({ deps, params }) {
      return tailnetJsonFrom(deps.state.requireTailnet(params.tailnet));
    },
  }),
  defineRoute({
    operationId: 'updateTailnet',
    method: 'PATCH',
    path: '/tailnets/{tailnet}',
    group: 'tailnets',
    scope: 'server',
    summary: 'Change a tailnet\'s settings',
    description: 'Only the settings named in `settings` change; each change reaches every node of the tailnet (as a delta of its self capabilities) and is written to the audit log.',
    params: z.strictObject({ tailnet: z.string().min(1) }),
    body: z.strictObject({ settings: tailnetSettingsSchema.partial().strict() }),
    response: tailnetSchema,
    errors: [404],
    async handle({ deps, params, body, actor }) {
      const tailnet = deps.state.requireTailnet(params.tailnet);
      const patch: { autoUpdate?: boolean } = {};
      if (body.settings.auto_update !== undefined) patch.autoUpdate = body.settings.auto_update;
      await tailnet.updateSettings(patch, actor);
      return tailnetJsonFrom(tailnet);
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
];

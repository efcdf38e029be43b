// The tailnet policy: read it (text exactly as stored, comments intact), replace it (database
// mode; validated, tests included, before it is stored), check a candidate without storing.
import { z } from 'zod';
import { defineRoute, type Route } from './route.js';

export const policySchema = z.object({
  tailnet: z.string(),
  mode: z.enum(['database', 'file']).describe('database: set through the API and CLI, every version kept; file: read from `path`.'),
  path: z.string().nullable().describe('The policy file in file mode; null in database mode.'),
  policy: z.string().nullable().describe('The HuJSON text exactly as written; null when the tailnet has no policy (every node may reach every node).'),
  version: z.object({
    id: z.number().int().positive(),
    author: z.string().describe('The actor who stored it.'),
    created_at: z.iso.datetime(),
  }).nullable().describe('The stored version (database mode); null in file mode or when none was stored.'),
});
export type PolicyJson = z.output<typeof policySchema>;

export const policyRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'getPolicy',
    method: 'GET',
    path: '/policy',
    group: 'policy',
    scope: 'tailnet',
    summary: 'Get the tailnet policy',
    response: policySchema,
    errors: [404],
    async handle({ tailnet, deps }) {
      const { mode, path } = deps.config.policy;
      if (mode === 'file') return { tailnet: tailnet.name, mode, path, policy: tailnet.policyText, version: null };
      const latest = await deps.state.store.read.policies.latest(tailnet.id);
      return {
        tailnet: tailnet.name,
        mode,
        path: null,
        policy: latest?.text ?? null,
        version: latest === undefined ? null : { id: latest.id, author: latest.author, created_at: latest.createdAt.toISOString() },
      };
    },
  }),
];

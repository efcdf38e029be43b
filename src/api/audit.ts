// The audit log: who changed what, when. Read-only.
import { z } from 'zod';
import type { TailnetId } from '../model/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { WebSessionErrors } from '../web-session/index.js';
import { defineRoute, type Route } from './route.js';
import { auditEntryJsonFrom, auditEntrySchema, queryInteger } from './schemas.js';

export const auditRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'listAudit',
    method: 'GET',
    path: '/audit',
    group: 'audit',
    scope: 'server',
    summary: 'List audit entries, newest first',
    description: 'Without `tailnet`, lists every entry (all tailnets and server-wide changes); with it, only that tailnet\'s.',
    query: z.strictObject({
      tailnet: z.string().min(1).optional().describe('Only this tailnet\'s entries.'),
      limit: queryInteger(1, 10_000).optional().describe('At most this many entries (1-10000, default 100).'),
      q: z.string().min(1).max(200).optional().describe('Only entries whose actor, action, target, from-address or details contain this text (case-insensitive), among the latest 10000.'),
    }),
    response: z.object({ audit: z.array(auditEntrySchema) }),
    errors: [404],
    async handle({ query, deps, viewer }) {
      const limit = query.limit === undefined ? 100 : Number(query.limit);
      let tailnetId: TailnetId | undefined = query.tailnet === undefined ? undefined : deps.state.requireTailnet(query.tailnet).id;
      // A console session bound to one tailnet reads that tailnet's entries only.
      if (viewer.tailnetId !== null) {
        if (tailnetId !== undefined && tailnetId !== viewer.tailnetId) throw new HeadwayError(WebSessionErrors.forbidden, `your console session belongs to another tailnet than "${query.tailnet}"`);
        tailnetId = viewer.tailnetId;
      }
      const search = query.q?.toLowerCase();
      const found = await deps.state.listAudit({ tailnetId, limit: search === undefined ? limit : 10_000 });
      const entries = search === undefined
        ? found
        : found.filter((e) => `${e.actor}\n${e.action}\n${e.target}\n${e.from ?? ''}\n${JSON.stringify(e.details)}`.toLowerCase().includes(search)).slice(0, limit);
      const name = (id: number): string | null => deps.state.tailnet(id as TailnetId)?.name ?? null;
      return { audit: entries.map((e) => auditEntryJsonFrom(e, name)) };
    },
  }),
];

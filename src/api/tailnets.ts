// Tailnets: list, create, read, change settings, delete. Server-wide routes; the tailnet is
// named in the path.
import { z } from 'zod';
import { defineRoute, type Route } from './route.js';
import type { NodeId, User } from '../model/index.js';
import { compilePolicyText, PolicyError, PolicyIndex, tailnetFactsFromModel } from '../policy/index.js';
import type { TailnetState } from '../state/index.js';
import { ApiErrors, apiError } from './errors.js';
import { findUser } from './lookup.js';
import { tailnetJsonFrom, tailnetSchema, tailnetSettingsSchema, userJsonFrom, userSchema } from './schemas.js';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const tailnetName = z.string().superRefine((text, ctx) => {
  if (!DNS_LABEL.test(text)) {
    ctx.addIssue({ code: 'custom', input: text, message: `${JSON.stringify(text)} is not a DNS label (lower-case letters, digits and inner dashes, at most 63)` });
  }
}).describe('A DNS label: lower-case letters, digits and inner dashes, at most 63 characters.');

const ownerTransferSchema = z.object({
  tailnet: z.string(),
  owner: userSchema,
  previous_owner: userSchema.nullable().describe('The former owner, now an admin; null when the tailnet had none or the user already owned it.'),
});
export type OwnerTransferJson = z.output<typeof ownerTransferSchema>;

/**
 * Binds the policy in force to the tailnet as it will be under its new owner: a policy that
 * names a domain other than the new owner's no longer binds, and ownership does not move.
 */
function checkPolicyUnderOwner(tailnet: TailnetState, usersAfter: readonly User[], newOwner: string): void {
  const text = tailnet.policyText;
  if (text === null) return;
  let compiled;
  try {
    compiled = compilePolicyText(text, { file: 'policy.hujson' });
  } catch {
    return; // A stored policy that does not compile is not in force (the tailnet denies all).
  }
  try {
    new PolicyIndex(compiled, tailnetFactsFromModel(usersAfter, tailnet.nodes(), (id) => tailnet.presence(id as NodeId).online, tailnet.settings));
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    throw apiError(ApiErrors.ownerDomain, `transferring ownership of tailnet "${tailnet.name}" to ${newOwner}: the policy in force would no longer hold: ${err.message}`, err);
  }
}

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
      await tailnet.updateSettings(patch, actor, body.settings.device_approval !== undefined ? { deviceApproval: body.settings.device_approval } : {});
      return tailnetJsonFrom(tailnet);
    },
  }),
  defineRoute({
    operationId: 'transferTailnetOwnership',
    method: 'PUT',
    path: '/tailnets/{tailnet}/owner',
    group: 'tailnets',
    scope: 'server',
    summary: 'Give the tailnet an owner, or move ownership to another user',
    description:
      'A tailnet has exactly one owner once it has one: what `autogroup:owner` selects, and whose email domain is the ' +
      'domain `localpart:*@domain` and `user:*@domain` may name. The former owner becomes an admin; both changes and the ' +
      'audit entry are one transaction. Refused (409) when the policy in force names a domain the new owner\'s is not. ' +
      'A server admin credential (API key, local socket) may give or move ownership; in the console only the owner may.',
    params: z.strictObject({ tailnet: z.string().min(1) }),
    body: z.strictObject({ user: z.union([z.string().min(1), z.number().int().positive()]).describe('The new owner: a user name or id of this tailnet.') }),
    response: ownerTransferSchema,
    errors: [404, 409],
    async handle({ deps, params, body, actor }) {
      const tailnet = deps.state.requireTailnet(params.tailnet);
      const target = findUser(tailnet, body.user);
      const { owner, previous } = await tailnet.transferOwnership(target.id, actor, {
        check: (usersAfter) => checkPolicyUnderOwner(tailnet, usersAfter, target.name),
      });
      return { tailnet: tailnet.name, owner: userJsonFrom(owner), previous_owner: previous === null ? null : userJsonFrom(previous) };
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

// The JSON shapes of the admin API, declared once with zod: the route table validates requests
// with them, the OpenAPI document and docs/api.md are generated from them, and the CLI prints
// the same objects with `--output json`. Field names are snake_case; times are RFC 3339 in UTC;
// null means "none" (never expires, never seen), never "unknown".
import { z } from 'zod';
import type { ApiKey, AuditEntry, Node, PreAuthKey, User, UserRole } from '../model/index.js';
import { ASSIGNABLE_USER_ROLES, USER_ROLES } from '../model/index.js';
import type { TailnetState } from '../state/index.js';
import { normaliseRoutes, normaliseTags } from '../state/index.js';
import { DurationParseError, parseDurationMs } from '../util/duration.js';

/**
 * Schemas registered here with an `id` become named components of the OpenAPI document. It is
 * zod's global registry, because `.describe()` writes there and toJSONSchema reads one registry.
 */
export const apiComponents = z.globalRegistry;

const time = z.iso.datetime();
const timeOrNull = time.nullable();
const id = z.number().int().positive();

// --- request field types ------------------------------------------------------------------

export const DURATION_UNITS = 'ms, s, m, h, d, w';

/** What a duration-parsing failure says, the same in the API and the CLI. */
export function durationProblem(text: string): string {
  return `${JSON.stringify(text)} is not a duration (units: ${DURATION_UNITS})`;
}

/** Parses a positive duration such as `24h` or `90d`; the message is ready for `<field>: `. */
export function parsePositiveDuration(text: string): { ok: true; ms: number } | { ok: false; problem: string } {
  let ms: number;
  try {
    ms = parseDurationMs(text);
  } catch (err) {
    if (err instanceof DurationParseError) return { ok: false, problem: durationProblem(text) };
    throw err;
  }
  if (!(ms > 0)) return { ok: false, problem: `${JSON.stringify(text)} is not a positive duration (want e.g. "24h", "90d")` };
  return { ok: true, ms };
}

export const durationText = z.string().superRefine((text, ctx) => {
  const parsed = parsePositiveDuration(text);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.problem, input: text });
}).describe(`A positive duration: a number and a unit (${DURATION_UNITS}), e.g. "24h", "90d", "1h30m".`);

/**
 * When a key expires: an RFC 3339 time, or a positive duration from now (`24h`, `90d`).
 * Parsed relative to the request's clock by `expiryFromText`.
 */
export const expiryText = z.string().superRefine((text, ctx) => {
  if (!Number.isNaN(Date.parse(text)) && /^\d{4}-\d{2}-\d{2}/.test(text)) return;
  const parsed = parsePositiveDuration(text);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text)} is neither an RFC 3339 time nor a duration (e.g. "2026-12-31T00:00:00Z", "24h", "90d")`, input: text });
}).describe('An RFC 3339 time, or a duration from now such as "24h" or "90d".');

export function expiryFromText(text: string, now: number): Date {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) return new Date(Date.parse(text));
  const parsed = parsePositiveDuration(text);
  if (!parsed.ok) throw new Error('unreachable: expiry was validated');
  return new Date(now + parsed.ms);
}

/** A `tag:` name, checked by the same rule the state layer applies. */
export const tagName = z.string().superRefine((text, ctx) => {
  try {
    normaliseTags([text]);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err), input: text });
  }
}).describe('A tag: `tag:` followed by a letter and then letters, digits or dashes.');

/** An IP prefix with no host bits set. */
export const routePrefix = z.string().superRefine((text, ctx) => {
  try {
    normaliseRoutes([text]);
  } catch (err) {
    const message = err instanceof Error ? err.message.replace(/^route "[^"]*": /, '') : String(err);
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text)} is not a route: ${message}`, input: text });
  }
}).describe('An IP prefix with no host bits set, e.g. 10.0.0.0/24 or 0.0.0.0/0.');

/** A user named by its name, or by its numeric id. */
export const userRef = z.union([z.string().min(1), id]).describe('A user: its name, or its numeric id.');

/** A whole number written in a query string, within [min, max]. */
export function queryInteger(min: number, max: number) {
  return z.string().superRefine((text, ctx) => {
    const n = /^[0-9]{1,9}$/.test(text) ? Number(text) : Number.NaN;
    if (!(n >= min && n <= max)) ctx.addIssue({ code: 'custom', input: text, message: `want a whole number from ${min} to ${max}, got ${JSON.stringify(text)}` });
  });
}

// --- response objects ---------------------------------------------------------------------

export const tailnetSettingsSchema = z.object({
  auto_update: z.boolean().describe('Tailscale\'s auto-update setting: sent to every node as `default-auto-update` (the default of its own auto-update preference).'),
  device_approval: z.boolean().describe('New devices of non-admin users wait for an admin\'s approval (`POST /nodes/{node}/approve`); keys created with `pre_approved` skip it.'),
});
apiComponents.add(tailnetSettingsSchema, { id: 'TailnetSettings', description: 'A tailnet\'s settings: one object; a change reaches every node.' });
export type TailnetSettingsJson = z.output<typeof tailnetSettingsSchema>;

export const tailnetSchema = z.object({
  id,
  name: z.string().describe('Unique per server; `default` always exists.'),
  user_count: z.number().int().nonnegative(),
  node_count: z.number().int().nonnegative(),
  created_at: time,
  settings: tailnetSettingsSchema,
});
apiComponents.add(tailnetSchema, { id: 'Tailnet', description: 'A tailnet: an isolated network of users and nodes.' });
export type TailnetJson = z.output<typeof tailnetSchema>;

export const userSchema = z.object({
  id,
  name: z.string().describe('Unique per tailnet; what policies write as `name@`.'),
  display_name: z.string(),
  email: z.string().describe('What policies write as `alice@example.com`; may be empty.'),
  role: z.enum(USER_ROLES as [UserRole, ...UserRole[]]).describe('Tailscale\'s user role: what `autogroup:admin`, `autogroup:network-admin` and the like select.'),
  created_at: time,
});
apiComponents.add(userSchema, { id: 'User' });

/** A role an admin may give (`owner` is not assignable yet; see ASSIGNABLE_USER_ROLES). */
export const assignableRole = z.enum(ASSIGNABLE_USER_ROLES as [UserRole, ...UserRole[]]).describe('One of admin, it-admin, network-admin, billing-admin, auditor, member.');
export type UserJson = z.output<typeof userSchema>;

export const nodeSchema = z.object({
  id,
  stable_id: z.string().describe('Opaque id sent to clients as StableID; never reused.'),
  name: z.string().describe('The MagicDNS name (given name), unique per tailnet.'),
  hostname: z.string().describe('The OS hostname the client reported.'),
  user: z.string().nullable().describe('Name of the owning user (for a tagged node: the user who registered it).'),
  user_id: id.nullable(),
  tags: z.array(z.string()).describe('Sorted; a tagged node is owned by its tags.'),
  ipv4: z.string().nullable(),
  ipv6: z.string().nullable(),
  online: z.boolean().describe('Holds a map session with this server now.'),
  last_seen: timeOrNull,
  key_expiry: timeOrNull.describe('null = the key never expires.'),
  expired: z.boolean().describe('key_expiry has passed: the node must log in again.'),
  ephemeral: z.boolean(),
  advertised_routes: z.array(z.string()).describe('Routes the node offers (Hostinfo.RoutableIPs).'),
  approved_routes: z.array(z.string()).describe('Routes an admin approved for the node.'),
  machine_key: z.string(),
  node_key: z.string(),
  disco_key: z.string().nullable(),
  os: z.string().describe('Hostinfo.OS; empty when unknown.'),
  client_version: z.string().describe('Hostinfo.IPNVersion; empty when unknown.'),
  endpoints: z.array(z.string()).describe('UDP endpoints (ip:port) the node reported for direct connections.'),
  derp_region: z.number().int().nullable().describe('The DERP region the node prefers as its home relay (NetInfo.PreferredDERP); null when unknown.'),
    register_method: z.enum(['authkey', 'interactive', 'cli', 'oidc']),
  approved: z.boolean().describe('False while the device waits for an admin\'s approval: no peer sees it and it sees no peer.'),
  created_at: time,
  updated_at: time,
});
apiComponents.add(nodeSchema, { id: 'Node' });
export type NodeJson = z.output<typeof nodeSchema>;

/** A node as lists show it (`GET /nodes?view=list`): no keys, endpoints or timestamps. */
export const nodeListItemSchema = nodeSchema.pick({
  id: true, name: true, hostname: true, user: true, user_id: true, tags: true, ipv4: true, ipv6: true, online: true,
  last_seen: true, key_expiry: true, expired: true, ephemeral: true, advertised_routes: true, approved_routes: true,
  os: true, client_version: true, approved: true,
});
apiComponents.add(nodeListItemSchema, { id: 'NodeListItem' });
export type NodeListItemJson = z.output<typeof nodeListItemSchema>;

export function nodeListItemJsonFrom(node: Node, tailnet: TailnetState, nowMs: number): NodeListItemJson {
  return {
    id: node.id,
    name: node.givenName,
    hostname: node.hostname,
    user: node.userId === null ? null : (tailnet.user(node.userId)?.name ?? null),
    user_id: node.userId,
    tags: node.tags as string[],
    ipv4: node.ipv4,
    ipv6: node.ipv6,
    online: tailnet.presence(node.id).online,
    last_seen: isoOrNull(node.lastSeen),
    key_expiry: isoOrNull(node.keyExpiry),
    expired: node.keyExpiry !== null && node.keyExpiry.getTime() <= nowMs,
    ephemeral: node.ephemeral,
    advertised_routes: node.advertisedRoutes as string[],
    approved_routes: node.approvedRoutes as string[],
    os: node.hostinfo.OS ?? '',
    client_version: node.hostinfo.IPNVersion ?? '',
    approved: node.approved,
  };
}

export const nodeRoutesSchema = z.object({
  node_id: id,
  node: z.string().describe('The node name.'),
  advertised_routes: z.array(z.string()),
  approved_routes: z.array(z.string()),
});
apiComponents.add(nodeRoutesSchema, { id: 'NodeRoutes', description: 'The routes one node advertises and the routes approved for it.' });
export type NodeRoutesJson = z.output<typeof nodeRoutesSchema>;

export const preAuthKeySchema = z.object({
  id,
  prefix: z.string().describe('The public part of the key (`hwkey-auth-<prefix>-...`); names the key in listings.'),
  user: z.string().nullable(),
  user_id: id.nullable(),
  reusable: z.boolean(),
  ephemeral: z.boolean(),
  tags: z.array(z.string()),
  used_count: z.number().int().nonnegative(),
  expiration: timeOrNull.describe('null = never expires.'),
  revoked_at: timeOrNull.describe('When an admin expired the key early.'),
  expired: z.boolean().describe('Revoked, or past its expiration.'),
  usable: z.boolean().describe('Not expired, and reusable or not used yet.'),
  pre_approved: z.boolean().describe('Nodes registered with it skip device approval.'),
  created_at: time,
});
apiComponents.add(preAuthKeySchema, { id: 'PreAuthKey' });
export type PreAuthKeyJson = z.output<typeof preAuthKeySchema>;

export const newPreAuthKeySchema = preAuthKeySchema.extend({
  key: z.string().describe('The whole key. Shown once: only its hash is stored.'),
});
apiComponents.add(newPreAuthKeySchema, { id: 'NewPreAuthKey', description: 'A pre-auth key just created, with its secret.' });
export type NewPreAuthKeyJson = z.output<typeof newPreAuthKeySchema>;

export const apiKeySchema = z.object({
  id,
  prefix: z.string().describe('The public part of the key (`hwk_<prefix>_...`); names the key for `expire`.'),
  expiration: timeOrNull,
  last_used_at: timeOrNull.describe('Updated at most once a minute.'),
  revoked_at: timeOrNull,
  expired: z.boolean(),
  created_at: time,
});
apiComponents.add(apiKeySchema, { id: 'ApiKey' });
export type ApiKeyJson = z.output<typeof apiKeySchema>;

export const newApiKeySchema = apiKeySchema.extend({
  key: z.string().describe('The whole key for `Authorization: Bearer`. Shown once: only its hash is stored.'),
});
apiComponents.add(newApiKeySchema, { id: 'NewApiKey', description: 'An API key just created, with its secret.' });
export type NewApiKeyJson = z.output<typeof newApiKeySchema>;

export const auditEntrySchema = z.object({
  id,
  tailnet_id: id.nullable().describe('null for server-wide changes (API keys, deleting a tailnet).'),
  tailnet: z.string().nullable().describe('The tailnet name; null for server-wide changes and deleted tailnets.'),
  actor: z.string().describe('`unix-socket`, `api-key:<prefix>`, `system`, `node:<id>`.'),
  action: z.string().describe('`user.create`, `node.delete`, `policy.set`, ...'),
  target: z.string().describe('What the action applied to, e.g. `node:12`.'),
  details: z.record(z.string(), z.unknown()),
  from: z.string().nullable().describe('Where the change came from: the client\'s address, `local` for the admin socket (the CLI); null for the server\'s own changes.'),
  created_at: time,
});
apiComponents.add(auditEntrySchema, { id: 'AuditEntry' });
export type AuditEntryJson = z.output<typeof auditEntrySchema>;

export const errorSchema = z.object({
  error: z.object({
    code: z.string().describe('Stable `HW_<PART>_<WHAT>` code; match on this, not on the message.'),
    message: z.string(),
    field: z.string().optional().describe('For validation errors: the offending field, e.g. `body.expiration`.'),
    request_id: z.string(),
  }),
});
apiComponents.add(errorSchema, { id: 'Error' });
export type ErrorJson = z.output<typeof errorSchema>;

// --- converters (one per pair: `<to>From<from>`) --------------------------------------------

const iso = (date: Date): string => date.toISOString();
const isoOrNull = (date: Date | null): string | null => (date === null ? null : date.toISOString());

export function tailnetJsonFrom(tailnet: TailnetState): TailnetJson {
  let users = 0;
  for (const _ of tailnet.users()) users++;
  return {
    id: tailnet.id,
    name: tailnet.name,
    user_count: users,
    node_count: tailnet.nodeCount,
    created_at: iso(tailnet.tailnet.createdAt),
    settings: { auto_update: tailnet.settings.autoUpdate, device_approval: tailnet.deviceApproval },
  };
}

export function userJsonFrom(user: User): UserJson {
  return { id: user.id, name: user.name, display_name: user.displayName, email: user.email, role: user.role, created_at: iso(user.createdAt) };
}

export function nodeJsonFrom(node: Node, tailnet: TailnetState, nowMs: number): NodeJson {
  return {
    ...nodeListItemJsonFrom(node, tailnet, nowMs),
    stable_id: node.stableId,
    tags: [...node.tags],
    advertised_routes: [...node.advertisedRoutes],
    approved_routes: [...node.approvedRoutes],
    machine_key: node.machineKey,
    node_key: node.nodeKey,
    disco_key: node.discoKey,
    endpoints: [...node.endpoints],
    derp_region: typeof node.hostinfo.NetInfo?.PreferredDERP === 'number' && node.hostinfo.NetInfo.PreferredDERP > 0 ? node.hostinfo.NetInfo.PreferredDERP : null,
    register_method: node.registerMethod,
    created_at: iso(node.createdAt),
    updated_at: iso(node.updatedAt),
  };
}

export function nodeRoutesJsonFrom(node: Node): NodeRoutesJson {
  return { node_id: node.id, node: node.givenName, advertised_routes: [...node.advertisedRoutes], approved_routes: [...node.approvedRoutes] };
}

export function preAuthKeyJsonFrom(key: PreAuthKey, tailnet: TailnetState, nowMs: number): PreAuthKeyJson {
  const expired = key.revokedAt !== null || (key.expiresAt !== null && key.expiresAt.getTime() <= nowMs);
  return {
    id: key.id,
    prefix: key.prefix,
    user: key.userId === null ? null : (tailnet.user(key.userId)?.name ?? null),
    user_id: key.userId,
    reusable: key.reusable,
    ephemeral: key.ephemeral,
    tags: [...key.tags],
    used_count: key.usedCount,
    expiration: isoOrNull(key.expiresAt),
    revoked_at: isoOrNull(key.revokedAt),
    expired,
    usable: !expired && (key.reusable || key.usedCount === 0),
    pre_approved: key.preApproved,
    created_at: iso(key.createdAt),
  };
}

export function apiKeyJsonFrom(key: ApiKey, nowMs: number): ApiKeyJson {
  return {
    id: key.id,
    prefix: key.prefix,
    expiration: isoOrNull(key.expiresAt),
    last_used_at: isoOrNull(key.lastUsedAt),
    revoked_at: isoOrNull(key.revokedAt),
    expired: key.revokedAt !== null || (key.expiresAt !== null && key.expiresAt.getTime() <= nowMs),
    created_at: iso(key.createdAt),
  };
}

export function auditEntryJsonFrom(entry: AuditEntry, tailnetName: (id: number) => string | null): AuditEntryJson {
  return {
    id: entry.id,
    tailnet_id: entry.tailnetId,
    tailnet: entry.tailnetId === null ? null : tailnetName(entry.tailnetId),
    actor: entry.actor,
    action: entry.action,
    target: entry.target,
    details: { ...entry.details },
    from: entry.from,
    created_at: iso(entry.createdAt),
  };
}

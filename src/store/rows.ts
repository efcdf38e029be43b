// Converters between rows and domain objects, one per pair (style: `<to>From<from>`). Rows are
// the same on both dialects except booleans (0/1 or true/false), which Boolean() evens out.
import type { DiscoPublicKey, MachinePublicKey, NodePublicKey } from '../key/index.js';
import type {
  ApiKey, ApiKeyId, AuditEntry, Node, NodeId, PolicyVersion, PolicyVersionId, PreAuthKey, PreAuthKeyId,
  RegisterMethod, Tailnet, TailnetDns, TailnetId, TailnetSettings, User, UserId, UserRole,
} from '../model/index.js';
import { DEFAULT_TAILNET_SETTINGS, USER_ROLES } from '../model/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import type {
  ApiKeyRow, AuditLogRow, NewNodeRow, NodeRow, NodeRowUpdate, PolicyRow, PreAuthKeyRow, TailnetRow, UserRow,
} from './schema.js';
import type { NewNode, NodePatch } from './types.js';

const dateOrNull = (ms: number | null): Date | null => (ms === null ? null : new Date(Number(ms)));
const msOrNull = (date: Date | null): number | null => (date === null ? null : date.getTime());
const date = (ms: number): Date => new Date(Number(ms));

function jsonArray(text: string): string[] {
  const value: unknown = JSON.parse(text);
  return Array.isArray(value) ? value.map(String) : [];
}

function jsonObject<T>(text: string): T {
  const value: unknown = JSON.parse(text);
  return (typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {}) as T;
}

export const dbBool = (value: boolean): number => (value ? 1 : 0);

export function tailnetFromRow(row: TailnetRow): Tailnet {
  return {
    id: row.id as TailnetId, name: row.name, createdAt: date(row.created_at),
    settings: tailnetSettingsFromJson(row.settings), deviceApproval: Boolean(row.device_approval),
  };
}

/** Settings as stored; keys this build does not know are dropped, missing ones take defaults. */
export function tailnetSettingsFromJson(text: string): TailnetSettings {
  const stored = jsonObject<Record<string, unknown>>(text);
  const expiry = stored['nodeExpirySeconds'];
  return {
    autoUpdate: typeof stored['autoUpdate'] === 'boolean' ? stored['autoUpdate'] : DEFAULT_TAILNET_SETTINGS.autoUpdate,
    displayName: typeof stored['displayName'] === 'string' ? stored['displayName'] : DEFAULT_TAILNET_SETTINGS.displayName,
    nodeExpirySeconds: typeof expiry === 'number' && Number.isInteger(expiry) && expiry >= 0 ? expiry : DEFAULT_TAILNET_SETTINGS.nodeExpirySeconds,
    dns: tailnetDnsFromJson(stored['dns']),
  };
}

/** The stored DNS object, or null (the config's DNS) when absent or not of the right shape. */
function tailnetDnsFromJson(value: unknown): TailnetDns | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  const strings = (x: unknown): string[] => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
  const split: Record<string, string[]> = {};
  if (typeof v['splitDns'] === 'object' && v['splitDns'] !== null) {
    for (const [domain, servers] of Object.entries(v['splitDns'] as Record<string, unknown>)) split[domain] = strings(servers);
  }
  const records = Array.isArray(v['extraRecords']) ? (v['extraRecords'] as unknown[]) : [];
  return {
    magicDns: v['magicDns'] === true,
    overrideLocalDns: v['overrideLocalDns'] === true,
    nameservers: strings(v['nameservers']),
    splitDns: split,
    searchDomains: strings(v['searchDomains']),
    extraRecords: records.filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null)
      .map((r) => ({ name: String(r['name'] ?? ''), type: String(r['type'] ?? ''), value: String(r['value'] ?? '') })),
  };
}

export function userFromRow(row: UserRow): User {
  return {
    id: row.id as UserId,
    tailnetId: row.tailnet_id as TailnetId,
    name: row.name,
    displayName: row.display_name,
    email: row.email,
    role: USER_ROLES.includes(row.role as UserRole) ? (row.role as UserRole) : 'member',
    createdAt: date(row.created_at),
    oidc: row.oidc_issuer !== null && row.oidc_subject !== null ? { issuer: row.oidc_issuer, subject: row.oidc_subject } : null,
    pictureUrl: row.picture_url,
    oidcGroups: jsonArray(row.oidc_groups),
    scimGroups: jsonArray(row.scim_groups),
    active: Boolean(row.active),
    scimExternalId: row.scim_external_id,
  };
}

export function nodeFromRow(row: NodeRow): Node {
  return {
    id: row.id as NodeId,
    tailnetId: row.tailnet_id as TailnetId,
    stableId: row.stable_id,
    machineKey: row.machine_key as MachinePublicKey,
    nodeKey: row.node_key as NodePublicKey,
    discoKey: row.disco_key as DiscoPublicKey | null,
    ipv4: row.ipv4,
    ipv6: row.ipv6,
    hostname: row.hostname,
    givenName: row.given_name,
    userId: row.user_id as UserId | null,
    tags: jsonArray(row.tags),
    advertisedRoutes: jsonArray(row.advertised_routes),
    approvedRoutes: jsonArray(row.approved_routes),
    endpoints: jsonArray(row.endpoints),
    hostinfo: jsonObject<tailcfg.Hostinfo>(row.hostinfo),
    keyExpiry: dateOrNull(row.key_expiry),
    lastSeen: dateOrNull(row.last_seen),
    ephemeral: Boolean(row.ephemeral),
    registerMethod: row.register_method as RegisterMethod,
    preAuthKeyId: row.pre_auth_key_id as PreAuthKeyId | null,
    approved: Boolean(row.approved),
    createdAt: date(row.created_at),
    updatedAt: date(row.updated_at),
  };
}

export function nodeRowFromNew(node: NewNode, stableId: string, nowMs: number): NewNodeRow {
  return {
    tailnet_id: node.tailnetId,
    stable_id: stableId,
    machine_key: node.machineKey,
    node_key: node.nodeKey,
    disco_key: node.discoKey,
    ipv4: node.ipv4,
    ipv6: node.ipv6,
    hostname: node.hostname,
    given_name: node.givenName,
    user_id: node.userId,
    tags: JSON.stringify(node.tags),
    advertised_routes: JSON.stringify(node.advertisedRoutes),
    approved_routes: JSON.stringify(node.approvedRoutes),
    endpoints: JSON.stringify(node.endpoints),
    hostinfo: JSON.stringify(node.hostinfo),
    key_expiry: msOrNull(node.keyExpiry),
    last_seen: null,
    ephemeral: dbBool(node.ephemeral),
    register_method: node.registerMethod,
    pre_auth_key_id: node.preAuthKeyId,
    approved: dbBool(node.approved ?? true),
    created_at: nowMs,
    updated_at: nowMs,
  };
}

/** Only the fields present in the patch; `undefined` means "leave as is". */
export function nodeRowUpdateFromPatch(patch: NodePatch): NodeRowUpdate {
  const row: NodeRowUpdate = {};
  if (patch.machineKey !== undefined) row.machine_key = patch.machineKey;
  if (patch.nodeKey !== undefined) row.node_key = patch.nodeKey;
  if (patch.discoKey !== undefined) row.disco_key = patch.discoKey;
  if (patch.ipv4 !== undefined) row.ipv4 = patch.ipv4;
  if (patch.ipv6 !== undefined) row.ipv6 = patch.ipv6;
  if (patch.hostname !== undefined) row.hostname = patch.hostname;
  if (patch.givenName !== undefined) row.given_name = patch.givenName;
  if (patch.userId !== undefined) row.user_id = patch.userId;
  if (patch.tags !== undefined) row.tags = JSON.stringify(patch.tags);
  if (patch.advertisedRoutes !== undefined) row.advertised_routes = JSON.stringify(patch.advertisedRoutes);
  if (patch.approvedRoutes !== undefined) row.approved_routes = JSON.stringify(patch.approvedRoutes);
  if (patch.endpoints !== undefined) row.endpoints = JSON.stringify(patch.endpoints);
  if (patch.hostinfo !== undefined) row.hostinfo = JSON.stringify(patch.hostinfo);
  if (patch.keyExpiry !== undefined) row.key_expiry = msOrNull(patch.keyExpiry);
  if (patch.lastSeen !== undefined) row.last_seen = msOrNull(patch.lastSeen);
  if (patch.ephemeral !== undefined) row.ephemeral = dbBool(patch.ephemeral);
  if (patch.registerMethod !== undefined) row.register_method = patch.registerMethod;
  if (patch.preAuthKeyId !== undefined) row.pre_auth_key_id = patch.preAuthKeyId;
  if (patch.approved !== undefined) row.approved = dbBool(patch.approved);
  return row;
}

export function preAuthKeyFromRow(row: PreAuthKeyRow): PreAuthKey {
  return {
    id: row.id as PreAuthKeyId,
    tailnetId: row.tailnet_id as TailnetId,
    userId: row.user_id as UserId | null,
    prefix: row.prefix,
    reusable: Boolean(row.reusable),
    ephemeral: Boolean(row.ephemeral),
    tags: jsonArray(row.tags),
    expiresAt: dateOrNull(row.expires_at),
    usedCount: Number(row.used_count),
    createdAt: date(row.created_at),
    revokedAt: dateOrNull(row.revoked_at),
    preApproved: Boolean(row.pre_approved),
    description: row.description ?? '',
  };
}

export function apiKeyFromRow(row: ApiKeyRow): ApiKey {
  return {
    id: row.id as ApiKeyId,
    prefix: row.prefix,
    expiresAt: dateOrNull(row.expires_at),
    lastUsedAt: dateOrNull(row.last_used_at),
    createdAt: date(row.created_at),
    revokedAt: dateOrNull(row.revoked_at),
  };
}

export function policyVersionFromRow(row: PolicyRow): PolicyVersion {
  return {
    id: row.id as PolicyVersionId,
    tailnetId: row.tailnet_id as TailnetId,
    text: row.text,
    author: row.author,
    createdAt: date(row.created_at),
  };
}

export function auditEntryFromRow(row: AuditLogRow): AuditEntry {
  return {
    id: Number(row.id),
    tailnetId: row.tailnet_id as TailnetId | null,
    actor: row.actor,
    action: row.action,
    target: row.target,
    details: jsonObject<Record<string, unknown>>(row.details),
    from: row.from_address ?? null,
    createdAt: date(row.created_at),
  };
}

export { msOrNull };

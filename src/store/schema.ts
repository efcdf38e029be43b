// Row types as kysely sees the tables. They never leave store/: repositories convert them to the
// domain types of model/ (rows.ts). Conventions, identical on SQLite and PostgreSQL:
// - timestamps are integer milliseconds since the epoch (INTEGER / BIGINT), null = never;
// - booleans are written as 0/1 (SQLite INTEGER; PostgreSQL BOOLEAN accepts '1'/'0') and read
//   back as number or boolean, so readers wrap them in Boolean();
// - lists and objects (tags, routes, endpoints, hostinfo, audit details) are JSON text;
// - addresses and keys are their canonical text (`100.64.0.1`, `nodekey:<hex>`).
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Read as 0/1 from SQLite and as true/false from PostgreSQL; always written as 0/1. */
export type DbBool = ColumnType<number | boolean, number, number>;

export interface TailnetTable {
  id: Generated<number>;
  name: string;
  created_at: number;
  /** Last address handed out per family, for the sequential allocator; null before the first. */
  last_ipv4: string | null;
  last_ipv6: string | null;
  /** The tailnet's settings (model TailnetSettings) as JSON; '{}' = every default. */
  settings: ColumnType<string, string | undefined, string>;
  /** New devices of non-admin users wait for an admin's approval. */
  device_approval: ColumnType<number | boolean, number | undefined, number>;
}

export interface UserTable {
  id: Generated<number>;
  tailnet_id: number;
  name: string;
  display_name: string;
  email: string;
  /** A UserRole; 'member' for rows from before roles existed. */
  role: ColumnType<string, string | undefined, string>;
  /** The OpenID Connect identity that signs the user in; both null for users without one. */
  oidc_issuer: ColumnType<string | null, string | null | undefined, string | null>;
  oidc_subject: ColumnType<string | null, string | null | undefined, string | null>;
  picture_url: ColumnType<string, string | undefined, string>;
  /** JSON array of synced group names (`name@domain`) from the provider's groups claim. */
  oidc_groups: ColumnType<string, string | undefined, string>;
  /** JSON array of synced group names pushed by SCIM. */
  scim_groups: ColumnType<string, string | undefined, string>;
  /** False once SCIM deactivated the user: their devices lose access. */
  active: ColumnType<number | boolean, number | undefined, number>;
  scim_external_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: number;
}

export interface NodeTable {
  id: Generated<number>;
  tailnet_id: number;
  stable_id: string;
  machine_key: string;
  node_key: string;
  disco_key: string | null;
  ipv4: string | null;
  ipv6: string | null;
  hostname: string;
  given_name: string;
  user_id: number | null;
  tags: string;
  advertised_routes: string;
  approved_routes: string;
  endpoints: string;
  hostinfo: string;
  key_expiry: number | null;
  last_seen: number | null;
  ephemeral: DbBool;
  register_method: string;
  pre_auth_key_id: number | null;
  /** False while the node waits for an admin (tailnet setting device_approval). */
  approved: ColumnType<number | boolean, number | undefined, number>;
  created_at: number;
  updated_at: number;
}

export interface PreAuthKeyTable {
  id: Generated<number>;
  tailnet_id: number;
  user_id: number | null;
  prefix: string;
  /** SHA-256 of the whole key text, hex. */
  hash: string;
  reusable: DbBool;
  ephemeral: DbBool;
  tags: string;
  expires_at: number | null;
  used_count: number;
  created_at: number;
  revoked_at: number | null;
  /** Nodes registered with the key skip device approval. */
  pre_approved: ColumnType<number | boolean, number | undefined, number>;
  /** Free text, '' for keys from before 0006_api_v2_webhooks. */
  description: ColumnType<string, string | undefined, string>;
}

export interface ApiKeyTable {
  id: Generated<number>;
  prefix: string;
  /** SHA-256 of the whole key text, hex. */
  hash: string;
  expires_at: number | null;
  last_used_at: number | null;
  created_at: number;
  revoked_at: number | null;
}

export interface PolicyTable {
  id: Generated<number>;
  tailnet_id: number;
  text: string;
  author: string;
  created_at: number;
}

export interface AuditLogTable {
  id: Generated<number>;
  /** No foreign key: entries outlive the tailnet they talk about. */
  tailnet_id: number | null;
  actor: string;
  action: string;
  target: string;
  details: string;
  created_at: number;
  /** The client address of the change (`local`: the admin socket); null for the server's own. */
  from_address: string | null;
}

export interface OAuthClientTable {
  id: Generated<number>;
  tailnet_id: number;
  /** Public; what the client sends as client_id. */
  client_id: string;
  /** SHA-256 of the secret, hex. */
  secret_hash: string;
  /** JSON list of scopes. */
  scopes: string;
  /** JSON list of tags the keys it creates must carry. */
  tags: string;
  description: string;
  created_at: number;
}

export interface OAuthTokenTable {
  id: Generated<number>;
  oauth_client_id: number;
  /** SHA-256 of the access token, hex. */
  token_hash: string;
  scopes: string;
  expires_at: number;
  created_at: number;
}

export interface WebhookTable {
  id: Generated<number>;
  tailnet_id: number;
  endpoint_id: string;
  url: string;
  provider_type: string;
  /** JSON list of event types. */
  subscriptions: string;
  secret: string;
  creator: string;
  created_at: number;
  updated_at: number;
}

export interface WebhookDeliveryTable {
  id: Generated<number>;
  webhook_id: number;
  /** The JSON array of events, exactly as it is sent and signed. */
  payload: string;
  dedupe_key: string | null;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  delivered_at: number | null;
  created_at: number;
}

/** Web console sessions (0004); the token is stored as its SHA-256 only. */
export interface ConsoleSessionTable {
  id: Generated<number>;
  token_hash: string;
  tailnet_id: number;
  user_id: number | null;
  role: string;
  actor: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  revoked_at: number | null;
}

/** Single-use sign-in links of the web console (0004); the token is stored as its SHA-256 only. */
export interface ConsoleLoginLinkTable {
  id: Generated<number>;
  token_hash: string;
  tailnet_id: number;
  user_id: number | null;
  role: string;
  actor: string;
  expires_at: number;
  used_at: number | null;
  created_at: number;
}

/** One committed write that changed state other instances hold in memory (docs/ha.md). */
export interface HaChangeLogTable {
  position: Generated<number>;
  instance_id: string;
  /** JSON list of [entity, id] pairs. */
  changes: string;
  created_at: number;
}

export interface HaInstanceTable {
  instance_id: string;
  advertise_url: string;
  started_at: number;
  /** Database clock, milliseconds: the instance is alive until then. */
  lease_expires_at: number;
}

export interface HaPresenceTable {
  node_id: number;
  instance_id: string;
  cap_version: number;
  since: number;
}

export interface HaKeyTable {
  name: string;
  /** base64 of iv(12) | tag(16) | AES-256-GCM ciphertext. */
  ciphertext: string;
  created_at: number;
}

export interface HaPendingLoginTable {
  seq: Generated<number>;
  id: string;
  /** JSON of the PendingRegistration (keys as text, dates as ms). */
  registration: string;
  node_id: number | null;
  expires_at: number;
}

/** A sign-in in flight, shared by every instance (docs/ha.md). */
export interface HaSignInTable {
  /** Names an outcome in the change log (entity 'signInOutcome'). */
  seq: Generated<number>;
  /** 'handle' | 'flight' | 'outcome'. */
  kind: string;
  /** SHA-256 (hex) of the handle id, OIDC state or waiter id: the database holds no usable link. */
  key: string;
  /** The record sealed with AES-256-GCM under a key derived from ha.secret (PKCE verifier, nonce). */
  body: string;
  /** Milliseconds on the database's clock. */
  expires_at: number;
}

export interface SshCheckPassTable {
  tailnet_id: number;
  user_id: number;
  checked_at: number;
}

export interface Database {
  ha_pending_logins: HaPendingLoginTable;
  ha_sign_ins: HaSignInTable;
  ssh_check_passes: SshCheckPassTable;
  ha_change_log: HaChangeLogTable;
  ha_instances: HaInstanceTable;
  ha_presence: HaPresenceTable;
  ha_keys: HaKeyTable;
  tailnets: TailnetTable;
  users: UserTable;
  nodes: NodeTable;
  pre_auth_keys: PreAuthKeyTable;
  api_keys: ApiKeyTable;
  policies: PolicyTable;
  audit_log: AuditLogTable;
  console_sessions: ConsoleSessionTable;
  console_login_links: ConsoleLoginLinkTable;
  oauth_clients: OAuthClientTable;
  oauth_tokens: OAuthTokenTable;
  webhooks: WebhookTable;
  webhook_deliveries: WebhookDeliveryTable;
  scim_groups: ScimGroupTable;
}

export interface ScimGroupTable {
  /** A random UUID: SCIM clients keep it as the group's id. */
  id: string;
  tailnet_id: number;
  display_name: string;
  external_id: string | null;
  /** JSON array of user ids. */
  members: string;
  created_at: number;
}

export type TailnetRow = Selectable<TailnetTable>;
export type UserRow = Selectable<UserTable>;
export type NodeRow = Selectable<NodeTable>;
export type NewNodeRow = Insertable<NodeTable>;
export type NodeRowUpdate = Updateable<NodeTable>;
export type PreAuthKeyRow = Selectable<PreAuthKeyTable>;
export type ApiKeyRow = Selectable<ApiKeyTable>;
export type PolicyRow = Selectable<PolicyTable>;
export type AuditLogRow = Selectable<AuditLogTable>;
export type ScimGroupRow = Selectable<ScimGroupTable>;
export type ConsoleSessionRow = Selectable<ConsoleSessionTable>;
export type ConsoleLoginLinkRow = Selectable<ConsoleLoginLinkTable>;

/**
 * Every unique constraint, by the name PostgreSQL reports and the `table.column` list SQLite
 * reports, so one table maps both dialects' violations to the same meaning.
 */
export const UNIQUE_CONSTRAINTS = {
  tailnets_name_key: { table: 'tailnets', columns: ['name'] },
  users_tailnet_name_key: { table: 'users', columns: ['tailnet_id', 'name'] },
  nodes_node_key_key: { table: 'nodes', columns: ['node_key'] },
  nodes_stable_id_key: { table: 'nodes', columns: ['stable_id'] },
  nodes_tailnet_ipv4_key: { table: 'nodes', columns: ['tailnet_id', 'ipv4'] },
  nodes_tailnet_ipv6_key: { table: 'nodes', columns: ['tailnet_id', 'ipv6'] },
  nodes_tailnet_given_name_key: { table: 'nodes', columns: ['tailnet_id', 'given_name'] },
  pre_auth_keys_prefix_key: { table: 'pre_auth_keys', columns: ['prefix'] },
  api_keys_prefix_key: { table: 'api_keys', columns: ['prefix'] },
  users_tailnet_oidc_key: { table: 'users', columns: ['tailnet_id', 'oidc_issuer', 'oidc_subject'] },
  scim_groups_tailnet_name_key: { table: 'scim_groups', columns: ['tailnet_id', 'display_name'] },
  console_sessions_token_hash_key: { table: 'console_sessions', columns: ['token_hash'] },
  console_login_links_token_hash_key: { table: 'console_login_links', columns: ['token_hash'] },
} as const satisfies Record<string, { table: keyof Database; columns: readonly string[] }>;

export type UniqueConstraint = keyof typeof UNIQUE_CONSTRAINTS;

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
}

export interface UserTable {
  id: Generated<number>;
  tailnet_id: number;
  name: string;
  display_name: string;
  email: string;
  /** A UserRole; 'member' for rows from before roles existed. */
  role: ColumnType<string, string | undefined, string>;
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

export interface Database {
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
} as const satisfies Record<string, { table: keyof Database; columns: readonly string[] }>;

export type UniqueConstraint = keyof typeof UNIQUE_CONSTRAINTS;

// Test support (never imported by production code): headscale databases built from headscale's
// own schema at three releases, on SQLite and PostgreSQL. The DDL is written by us from the
// migrations in juanfont/headscale hscontrol/db/db.go (v0.23.0 and v0.26.1, gorm AutoMigrate
// column order and types) and hscontrol/db/schema.sql (v0.29.2). On PostgreSQL gorm makes
// bigserial ids, timestamptz times, boolean bools and bytea blobs; on SQLite integer
// AUTOINCREMENT, datetime text, numeric 0/1 and blob.
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import type { Dialect } from '../../store/index.js';
import { migrationIdsOf } from './versions.js';

export type FixtureRelease = '0.23' | '0.26' | '0.29';

export interface FixtureUser { id: number; name: string; email?: string }
export interface FixtureNode {
  id: number;
  machineKey: string;
  nodeKey: string;
  discoKey?: string;
  ipv4: string;
  ipv6: string;
  hostname: string;
  givenName: string;
  userId: number | null;
  tags?: string[];
  routes?: string[];
  authKeyId?: number | null;
  expiry?: string | null;
}
export interface FixtureKey { id: number; userId: number | null; key?: string; prefix?: string; reusable: boolean; ephemeral?: boolean; used?: boolean; tags?: string[]; expiration?: string | null }
export interface FixtureData { users: FixtureUser[]; nodes: FixtureNode[]; keys: FixtureKey[]; apiKeys?: number; policy?: string | null; extraMigrations?: string[] }

const TYPES: Record<Dialect, Record<string, string>> = {
  sqlite: { ID: 'integer PRIMARY KEY AUTOINCREMENT', TIME: 'datetime', BOOL: 'numeric', BLOB: 'blob', INT: 'integer' },
  postgres: { ID: 'bigserial PRIMARY KEY', TIME: 'timestamptz', BOOL: 'boolean', BLOB: 'bytea', INT: 'bigint' },
};

const SCHEMAS: Record<FixtureRelease, string[]> = {
  '0.23': [
    'CREATE TABLE migrations (id text, PRIMARY KEY (id))',
    'CREATE TABLE users (id {ID}, created_at {TIME}, updated_at {TIME}, deleted_at {TIME}, name text UNIQUE)',
    'CREATE TABLE pre_auth_keys (id {ID}, key text, user_id {INT}, reusable {BOOL}, ephemeral {BOOL} DEFAULT false, used {BOOL} DEFAULT false, created_at {TIME}, expiration {TIME}, CONSTRAINT fk_pre_auth_keys_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE)',
    'CREATE TABLE pre_auth_key_acl_tags (id {ID}, pre_auth_key_id {INT}, tag text, CONSTRAINT fk_pre_auth_keys_acl_tags FOREIGN KEY (pre_auth_key_id) REFERENCES pre_auth_keys(id) ON DELETE CASCADE)',
    'CREATE TABLE nodes (id {ID}, machine_key text, node_key text, disco_key text, endpoints text, host_info text, ipv4 text, ipv6 text, hostname text, given_name varchar(63), user_id {INT}, register_method text, forced_tags text, auth_key_id {INT}, last_seen {TIME}, expiry {TIME}, created_at {TIME}, updated_at {TIME}, deleted_at {TIME}, CONSTRAINT fk_nodes_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE, CONSTRAINT fk_nodes_auth_key FOREIGN KEY (auth_key_id) REFERENCES pre_auth_keys(id) ON DELETE SET NULL)',
    'CREATE TABLE routes (id {ID}, created_at {TIME}, updated_at {TIME}, deleted_at {TIME}, node_id {INT}, prefix text, advertised {BOOL}, enabled {BOOL}, is_primary {BOOL}, CONSTRAINT fk_nodes_routes FOREIGN KEY (node_id) REFERENCES nodes(id) ON DELETE CASCADE)',
    'CREATE TABLE api_keys (id {ID}, prefix text UNIQUE, hash {BLOB}, created_at {TIME}, expiration {TIME}, last_seen {TIME})',
    'CREATE TABLE policies (id {ID}, created_at {TIME}, updated_at {TIME}, deleted_at {TIME}, data text)',
  ],
  '0.26': [
    'CREATE TABLE migrations (id text, PRIMARY KEY (id))',
    'CREATE TABLE users (id {ID}, created_at {TIME}, updated_at {TIME}, deleted_at {TIME}, name text, display_name text, email text, provider_identifier text, provider text, profile_pic_url text)',
    'CREATE UNIQUE INDEX idx_name_no_provider_identifier ON users (name) WHERE provider_identifier IS NULL',
    'CREATE TABLE pre_auth_keys (id {ID}, key text, user_id {INT}, reusable {BOOL}, ephemeral {BOOL} DEFAULT false, used {BOOL} DEFAULT false, tags text, created_at {TIME}, expiration {TIME}, CONSTRAINT fk_pre_auth_keys_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL)',
    'CREATE TABLE api_keys (id {ID}, prefix text, hash {BLOB}, created_at {TIME}, expiration {TIME}, last_seen {TIME})',
    'CREATE TABLE nodes (id {ID}, machine_key text, node_key text, disco_key text, endpoints text, host_info text, ipv4 text, ipv6 text, hostname text, given_name varchar(63), user_id {INT}, register_method text, forced_tags text, auth_key_id {INT}, expiry {TIME}, last_seen {TIME}, approved_routes text, created_at {TIME}, updated_at {TIME}, deleted_at {TIME}, CONSTRAINT fk_nodes_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE, CONSTRAINT fk_nodes_auth_key FOREIGN KEY (auth_key_id) REFERENCES pre_auth_keys(id))',
    'CREATE TABLE policies (id {ID}, created_at {TIME}, updated_at {TIME}, deleted_at {TIME}, data text)',
  ],
  '0.29': [
    'CREATE TABLE migrations (id text, PRIMARY KEY (id))',
    'CREATE TABLE users (id {ID}, name text, display_name text, email text, provider_identifier text, provider text, profile_pic_url text, created_at {TIME}, updated_at {TIME}, deleted_at {TIME})',
    'CREATE UNIQUE INDEX idx_name_no_provider_identifier ON users (name) WHERE provider_identifier IS NULL',
    'CREATE TABLE pre_auth_keys (id {ID}, key text, prefix text, hash {BLOB}, user_id {INT}, reusable {BOOL}, ephemeral {BOOL} DEFAULT false, used {BOOL} DEFAULT false, tags text, expiration {TIME}, created_at {TIME}, CONSTRAINT fk_pre_auth_keys_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL)',
    'CREATE TABLE api_keys (id {ID}, prefix text, hash {BLOB}, expiration {TIME}, last_seen {TIME}, created_at {TIME})',
    'CREATE TABLE nodes (id {ID}, machine_key text, node_key text, disco_key text, endpoints text, host_info text, ipv4 text, ipv6 text, hostname text, given_name varchar(63), user_id {INT}, register_method text, tags text, auth_key_id {INT}, last_seen {TIME}, expiry {TIME}, approved_routes text, created_at {TIME}, updated_at {TIME}, deleted_at {TIME}, CONSTRAINT fk_nodes_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE, CONSTRAINT fk_nodes_auth_key FOREIGN KEY (auth_key_id) REFERENCES pre_auth_keys(id))',
    'CREATE TABLE policies (id {ID}, data text, created_at {TIME}, updated_at {TIME}, deleted_at {TIME})',
    'CREATE TABLE database_versions (id integer PRIMARY KEY, version text NOT NULL, updated_at {TIME})',
  ],
};

const NOW = '2026-01-02 03:04:05.123456789+00:00';

type Value = string | number | boolean | null;

function literal(dialect: Dialect, value: Value): string {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return dialect === 'sqlite' ? (value ? '1' : '0') : (value ? 'true' : 'false');
  if (typeof value === 'number') return String(value);
  return `'${value.replaceAll("'", "''")}'`;
}

function insert(dialect: Dialect, table: string, row: Record<string, Value>): string {
  const columns = Object.keys(row);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((c) => literal(dialect, row[c]!)).join(', ')})`;
}

/** The statements that build a headscale database of `release` holding `data`. */
export function headscaleFixtureSql(dialect: Dialect, release: FixtureRelease, data: FixtureData): string[] {
  const types = TYPES[dialect];
  const out = SCHEMAS[release].map((statement) => statement.replace(/\{(\w+)\}/g, (_m, name: string) => types[name]!));
  for (const id of [...migrationIdsOf(release), ...(data.extraMigrations ?? [])]) out.push(insert(dialect, 'migrations', { id }));
  for (const user of data.users) {
    out.push(insert(dialect, 'users', {
      id: user.id, name: user.name, created_at: NOW, updated_at: NOW,
      ...(release === '0.23' ? {} : { display_name: user.name.toUpperCase(), email: user.email ?? '' }),
    }));
  }
  for (const key of data.keys) {
    const row: Record<string, Value> = {
      id: key.id, key: key.key ?? null, user_id: key.userId, reusable: key.reusable, ephemeral: key.ephemeral ?? false,
      used: key.used ?? false, created_at: NOW, expiration: key.expiration ?? null,
    };
    if (release !== '0.23') row['tags'] = JSON.stringify(key.tags ?? []);
    if (release === '0.29') {
      row['prefix'] = key.prefix ?? null;
      if (key.prefix !== undefined) row['hash'] = dialect === 'sqlite' ? '$2a$10$notarealbcrypthash' : null;
    }
    out.push(insert(dialect, 'pre_auth_keys', row));
    if (release === '0.23') {
      for (const [index, tag] of (key.tags ?? []).entries()) out.push(insert(dialect, 'pre_auth_key_acl_tags', { id: key.id * 100 + index, pre_auth_key_id: key.id, tag }));
    }
  }
  let routeId = 1;
  for (const node of data.nodes) {
    const hostinfo = { Hostname: node.hostname, OS: 'linux', ...(node.routes !== undefined ? { RoutableIPs: node.routes } : {}) };
    const row: Record<string, Value> = {
      id: node.id, machine_key: node.machineKey, node_key: node.nodeKey, disco_key: node.discoKey ?? '',
      endpoints: JSON.stringify(['192.0.2.10:41641']), host_info: JSON.stringify(hostinfo),
      ipv4: node.ipv4, ipv6: node.ipv6, hostname: node.hostname, given_name: node.givenName,
      user_id: release === '0.29' && (node.tags ?? []).length > 0 ? null : node.userId,
      register_method: node.authKeyId != null ? 'authkey' : 'cli', auth_key_id: node.authKeyId ?? null,
      last_seen: NOW, expiry: node.expiry ?? '0001-01-01 00:00:00+00:00', created_at: NOW, updated_at: NOW,
    };
    row[release === '0.29' ? 'tags' : 'forced_tags'] = JSON.stringify(node.tags ?? []);
    if (release !== '0.23') row['approved_routes'] = JSON.stringify(node.routes ?? []);
    out.push(insert(dialect, 'nodes', row));
    if (release === '0.23') {
      for (const prefix of node.routes ?? []) {
        out.push(insert(dialect, 'routes', { id: routeId++, created_at: NOW, updated_at: NOW, node_id: node.id, prefix, advertised: true, enabled: true, is_primary: true }));
      }
    }
  }
  for (let i = 1; i <= (data.apiKeys ?? 0); i++) out.push(insert(dialect, 'api_keys', { id: i, prefix: `apikey${i}`, created_at: NOW }));
  if (data.policy != null) out.push(insert(dialect, 'policies', { id: 1, data: data.policy, created_at: NOW, updated_at: NOW }));
  if (dialect === 'postgres') {
    for (const table of ['users', 'pre_auth_keys', 'nodes']) out.push(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), 1000)`);
  }
  return out;
}

/** Creates the database: a SQLite file at `location`, or tables in the PostgreSQL database at the URL. */
export async function createHeadscaleFixture(dialect: Dialect, location: string, release: FixtureRelease, data: FixtureData): Promise<void> {
  const statements = headscaleFixtureSql(dialect, release, data);
  if (dialect === 'sqlite') {
    const db = new BetterSqlite3(location);
    try {
      db.exec(`BEGIN;\n${statements.join(';\n')};\nCOMMIT;`);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: location });
  await client.connect();
  try {
    await client.query(`BEGIN;\n${statements.join(';\n')};\nCOMMIT;`);
  } finally {
    await client.end();
  }
}

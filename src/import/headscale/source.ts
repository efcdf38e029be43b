// Reading a headscale database (SQLite file or PostgreSQL URL) into plain records. Read-only:
// the SQLite file is opened read-only and PostgreSQL is read inside one READ ONLY transaction, so
// the import never changes headscale's data and sees one consistent snapshot of it.
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { parsePublicKey, type DiscoPublicKey, type MachinePublicKey, type NodePublicKey } from '../../key/index.js';
import type * as tailcfg from '../../tailcfg/index.js';
import { formatIP, formatPrefix, tryParseIP, tryParsePrefix } from '../../util/ip.js';
import { ImportErrors, importError } from '../errors.js';
import { schemaVersion } from './versions.js';

export interface HeadscaleUser {
  id: number;
  name: string;
  displayName: string;
  email: string;
}

export interface HeadscaleNode {
  id: number;
  machineKey: MachinePublicKey;
  nodeKey: NodePublicKey;
  discoKey: DiscoPublicKey | null;
  ipv4: string | null;
  ipv6: string | null;
  hostname: string;
  givenName: string;
  userId: number | null;
  tags: string[];
  advertisedRoutes: string[];
  approvedRoutes: string[];
  endpoints: string[];
  hostinfo: tailcfg.Hostinfo;
  expiry: Date | null;
  lastSeen: Date | null;
  registerMethod: string;
  authKeyId: number | null;
}

export interface HeadscalePreAuthKey {
  id: number;
  userId: number | null;
  /** The key in the clear (headscale before 0.28, and older keys after), else null. */
  secret: string | null;
  /** The public prefix of a bcrypt-hashed key (headscale 0.28+), else null. */
  prefix: string | null;
  reusable: boolean;
  ephemeral: boolean;
  used: boolean;
  tags: string[];
  expiration: Date | null;
  createdAt: Date | null;
}

export interface HeadscaleSnapshot {
  /** `sqlite <path>` or `postgres host:port/db`. */
  where: string;
  release: string;
  lastMigration: string;
  users: HeadscaleUser[];
  nodes: HeadscaleNode[];
  preAuthKeys: HeadscalePreAuthKey[];
  apiKeyCount: number;
  /** The newest policy of database mode, or null. */
  databasePolicy: string | null;
}

type Row = Record<string, unknown>;

/** The few queries the reader needs, over either database. */
interface SourceDb {
  readonly where: string;
  tables(): Promise<Set<string>>;
  columns(table: string): Promise<Set<string>>;
  all(text: string): Promise<Row[]>;
  close(): Promise<void>;
}

function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

function openSqliteSource(path: string): SourceDb {
  let db: BetterSqlite3.Database;
  try {
    db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
    db.pragma('query_only = ON');
  } catch (err) {
    throw importError(ImportErrors.sourceUnreadable, `headscale database ${path}: cannot open it read-only: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const where = `sqlite ${path}`;
  const run = (text: string): Row[] => {
    try {
      return db.prepare(text).all() as Row[];
    } catch (err) {
      throw importError(ImportErrors.sourceUnreadable, `${where}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  };
  return {
    where,
    async tables() {
      return new Set(run(`select name from sqlite_master where type = 'table'`).map((r) => String(r['name'])));
    },
    async columns(table) {
      return new Set(run(`pragma table_info(${JSON.stringify(table)})`).map((r) => String(r['name'])));
    },
    async all(text) {
      return run(text);
    },
    async close() {
      db.close();
    },
  };
}

async function openPostgresSource(url: string): Promise<SourceDb> {
  let where = 'postgres (url)';
  try {
    const parsed = new URL(url);
    where = `postgres ${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    // Keep the vague name: the URL itself may hold a password.
  }
  const client = new pg.Client({ connectionString: url, application_name: 'headway-import' });
  // A connection lost after connect() is reported on the next query; this keeps it from ending the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('begin transaction isolation level repeatable read read only');
  } catch (err) {
    await client.end().catch(() => undefined);
    throw importError(ImportErrors.sourceUnreadable, `headscale database ${where}: cannot connect: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const run = async (text: string, values: unknown[] = []): Promise<Row[]> => {
    try {
      return (await client.query(text, values)).rows as Row[];
    } catch (err) {
      throw importError(ImportErrors.sourceUnreadable, `${where}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  };
  return {
    where,
    async tables() {
      return new Set((await run(`select table_name from information_schema.tables where table_schema = current_schema()`)).map((r) => String(r['table_name'])));
    },
    async columns(table) {
      return new Set((await run(`select column_name from information_schema.columns where table_schema = current_schema() and table_name = $1`, [table])).map((r) => String(r['column_name'])));
    },
    all: (text) => run(text),
    async close() {
      await client.query('rollback').catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}

/** Reads everything the import carries from a headscale database. */
export async function readHeadscaleDatabase(location: string): Promise<HeadscaleSnapshot> {
  if (location.trim() === '') throw importError(ImportErrors.sourceUnreadable, '--database: give the headscale SQLite file or a postgres:// URL');
  const db = isPostgresUrl(location) ? await openPostgresSource(location) : openSqliteSource(location);
  try {
    return await readSnapshot(db);
  } finally {
    await db.close();
  }
}

async function readSnapshot(db: SourceDb): Promise<HeadscaleSnapshot> {
  const tables = await db.tables();
  if (!tables.has('migrations') || !tables.has('nodes') || !tables.has('users')) {
    throw importError(ImportErrors.unknownSchema, `${db.where}: not a headscale database (no migrations, users or nodes table)`);
  }
  const verdict = schemaVersion((await db.all('select id from migrations')).map((r) => String(r['id'])));
  if (!verdict.ok) throw importError(ImportErrors.unknownSchema, `${db.where}: unsupported headscale schema: ${verdict.reason}`);

  const reader = new RowReader(db.where);
  const userColumns = await db.columns('users');
  const live = (columns: Set<string>) => (columns.has('deleted_at') ? ' where deleted_at is null' : '');
  const users = (await db.all(`select * from users${live(userColumns)} order by id`)).map((row) => reader.user(row));

  const nodeColumns = await db.columns('nodes');
  const routes = new Map<number, { advertised: string[]; approved: string[] }>();
  if (tables.has('routes') && !nodeColumns.has('approved_routes')) {
    const routeColumns = await db.columns('routes');
    for (const row of await db.all(`select * from routes${live(routeColumns)} order by id`)) {
      const nodeId = reader.int(row, 'node_id', 'routes');
      const prefix = reader.prefix(row['prefix'], `routes row ${String(row['id'])}`);
      const entry = routes.get(nodeId) ?? { advertised: [], approved: [] };
      if (reader.bool(row['advertised'])) entry.advertised.push(prefix);
      if (reader.bool(row['enabled'])) entry.approved.push(prefix);
      routes.set(nodeId, entry);
    }
  }
  const nodes = (await db.all(`select * from nodes${live(nodeColumns)} order by id`)).map((row) => reader.node(row, routes));

  const keyColumns = tables.has('pre_auth_keys') ? await db.columns('pre_auth_keys') : new Set<string>();
  const aclTags = new Map<number, string[]>();
  if (tables.has('pre_auth_key_acl_tags') && !keyColumns.has('tags')) {
    for (const row of await db.all('select * from pre_auth_key_acl_tags order by id')) {
      const keyId = reader.int(row, 'pre_auth_key_id', 'pre_auth_key_acl_tags');
      aclTags.set(keyId, [...(aclTags.get(keyId) ?? []), String(row['tag'])]);
    }
  }
  const preAuthKeys = keyColumns.size === 0 ? [] : (await db.all('select * from pre_auth_keys order by id')).map((row) => reader.preAuthKey(row, aclTags));

  const apiKeyCount = tables.has('api_keys') ? (await db.all('select id from api_keys')).length : 0;
  let databasePolicy: string | null = null;
  if (tables.has('policies')) {
    const policyColumns = await db.columns('policies');
    const rows = await db.all(`select data from policies${live(policyColumns)} order by id desc limit 1`);
    const data = rows[0]?.['data'];
    if (typeof data === 'string' && data.trim() !== '') databasePolicy = data;
  }
  return { where: db.where, release: verdict.release, lastMigration: verdict.lastMigration, users, nodes, preAuthKeys, apiKeyCount, databasePolicy };
}

/** Turns loosely typed rows of either dialect into records, naming the row on bad values. */
class RowReader {
  readonly #where: string;

  constructor(where: string) {
    this.#where = where;
  }

  #bad(what: string, message: string): never {
    throw importError(ImportErrors.badSourceRow, `${this.#where}: ${what}: ${message}`);
  }

  int(row: Row, column: string, table: string): number {
    const value = Number(row[column]);
    if (!Number.isSafeInteger(value)) this.#bad(`${table} row ${String(row['id'])}`, `${column} is not an integer`);
    return value;
  }

  optionalInt(value: unknown): number | null {
    if (value === null || value === undefined) return null;
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : null;
  }

  text(value: unknown): string {
    if (value === null || value === undefined) return '';
    return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
  }

  /** SQLite keeps gorm's bools as 0/1 numerics, PostgreSQL as booleans. */
  bool(value: unknown): boolean {
    if (typeof value === 'boolean') return value;
    if (typeof value === 'number' || typeof value === 'bigint') return Number(value) !== 0;
    if (typeof value === 'string') return value === '1' || value.toLowerCase() === 'true' || value === 't';
    return false;
  }

  /**
   * gorm writes SQLite datetimes as `2006-01-02 15:04:05.999999999-07:00`; PostgreSQL gives Date
   * objects. Go's zero time (year 1) means "none" in headscale.
   */
  time(value: unknown, what: string): Date | null {
    if (value === null || value === undefined || value === '') return null;
    let date: Date;
    if (value instanceof Date) {
      date = value;
    } else {
      const match = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?/.exec(String(value));
      if (match === null) this.#bad(what, `${JSON.stringify(String(value))} is not a time`);
      const fraction = (match[3] ?? '').slice(0, 4);
      date = new Date(`${match[1]}T${match[2]}${fraction}${match[4] ?? 'Z'}`);
    }
    if (Number.isNaN(date.getTime())) this.#bad(what, `${JSON.stringify(String(value))} is not a time`);
    return date.getUTCFullYear() <= 1 ? null : date;
  }

  json(value: unknown, what: string): unknown {
    const text = this.text(value).trim();
    if (text === '' || text === 'null') return null;
    try {
      return JSON.parse(text);
    } catch {
      return this.#bad(what, 'holds malformed JSON');
    }
  }

  stringList(value: unknown, what: string): string[] {
    const parsed = this.json(value, what);
    if (parsed === null) return [];
    if (!Array.isArray(parsed) || parsed.some((item) => typeof item !== 'string')) this.#bad(what, 'is not a JSON list of strings');
    return parsed as string[];
  }

  address(value: unknown, family: 4 | 6, what: string): string | null {
    const text = this.text(value).trim();
    if (text === '') return null;
    const addr = tryParseIP(text);
    if (addr === null || addr.family !== family) this.#bad(what, `${JSON.stringify(text)} is not an IPv${family} address`);
    return formatIP(addr);
  }

  prefix(value: unknown, what: string): string {
    const text = this.text(value).trim();
    const prefix = tryParsePrefix(text);
    if (prefix === null) this.#bad(what, `${JSON.stringify(text)} is not an IP prefix`);
    return formatPrefix(prefix);
  }

  user(row: Row): HeadscaleUser {
    const id = this.int(row, 'id', 'users');
    const name = this.text(row['name']).trim();
    if (name === '') this.#bad(`users row ${id}`, 'has no name');
    return { id, name, displayName: this.text(row['display_name']), email: this.text(row['email']) };
  }

  node(row: Row, routes: Map<number, { advertised: string[]; approved: string[] }>): HeadscaleNode {
    const id = this.int(row, 'id', 'nodes');
    const what = `nodes row ${id}`;
    const key = <R extends 'machine' | 'node' | 'disco'>(role: R, column: string) => {
      const text = this.text(row[column]).trim();
      const parsed = text === '' ? null : parsePublicKey(role, text);
      if (parsed === null && role !== 'disco') this.#bad(what, `${column} ${JSON.stringify(text.slice(0, 16))}... is not a ${role} key`);
      return parsed;
    };
    const hostinfoValue = this.json(row['host_info'], `${what} host_info`);
    const hostinfo = (typeof hostinfoValue === 'object' && hostinfoValue !== null && !Array.isArray(hostinfoValue) ? hostinfoValue : {}) as tailcfg.Hostinfo;
    const tagColumn = 'tags' in row ? 'tags' : 'forced_tags';
    const requestTags = Array.isArray(hostinfo.RequestTags) ? hostinfo.RequestTags.filter((t): t is string => typeof t === 'string') : [];
    const tags = [...new Set([...this.stringList(row[tagColumn], `${what} ${tagColumn}`), ...requestTags])].sort();
    const routableIps = Array.isArray(hostinfo.RoutableIPs) ? hostinfo.RoutableIPs.map((p) => this.prefix(p, `${what} host_info.RoutableIPs`)) : [];
    const fromTable = routes.get(id);
    const approved = 'approved_routes' in row
      ? this.stringList(row['approved_routes'], `${what} approved_routes`).map((p) => this.prefix(p, `${what} approved_routes`))
      : fromTable?.approved ?? [];
    const advertised = [...new Set([...routableIps, ...(fromTable?.advertised ?? [])])].sort();
    return {
      id,
      machineKey: key('machine', 'machine_key')!,
      nodeKey: key('node', 'node_key')!,
      discoKey: key('disco', 'disco_key'),
      ipv4: this.address(row['ipv4'], 4, `${what} ipv4`),
      ipv6: this.address(row['ipv6'], 6, `${what} ipv6`),
      hostname: this.text(row['hostname']),
      givenName: this.text(row['given_name']).trim() || `node-${id}`,
      userId: this.optionalInt(row['user_id']),
      tags,
      advertisedRoutes: advertised,
      approvedRoutes: [...new Set(approved)].sort(),
      endpoints: this.stringList(row['endpoints'], `${what} endpoints`),
      hostinfo,
      expiry: this.time(row['expiry'], `${what} expiry`),
      lastSeen: this.time(row['last_seen'], `${what} last_seen`),
      registerMethod: this.text(row['register_method']),
      authKeyId: this.optionalInt(row['auth_key_id']),
    };
  }

  preAuthKey(row: Row, aclTags: Map<number, string[]>): HeadscalePreAuthKey {
    const id = this.int(row, 'id', 'pre_auth_keys');
    const what = `pre_auth_keys row ${id}`;
    const secret = this.text(row['key']).trim();
    const prefix = this.text(row['prefix']).trim();
    return {
      id,
      userId: this.optionalInt(row['user_id']),
      secret: secret === '' ? null : secret,
      prefix: prefix === '' ? null : prefix,
      reusable: this.bool(row['reusable']),
      ephemeral: this.bool(row['ephemeral']),
      used: this.bool(row['used']),
      tags: 'tags' in row ? this.stringList(row['tags'], `${what} tags`) : aclTags.get(id) ?? [],
      expiration: this.time(row['expiration'], `${what} expiration`),
      createdAt: this.time(row['created_at'], `${what} created_at`),
    };
  }
}

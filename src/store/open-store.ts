// Opening the database (SQLite file or PostgreSQL pool), migrating it, and the Store that hands
// out repositories. SQLite has one connection and kysely queues every query and transaction on
// it, so transactions serialise; PostgreSQL runs up to max_open_conns transactions at once.
import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  Kysely, Migrator, PostgresDialect, SqliteDialect, sql,
  type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryResult, type RootOperationNode,
  type UnknownRow,
} from 'kysely';
import pg from 'pg';
import type { Config, PostgresConfig, SqliteConfig } from '../config/index.js';
import { F, silentLogger, type Logger } from '../log/index.js';
import { DEFAULT_TAILNET_NAME } from '../model/index.js';
import { SqlAddressAllocator } from './address-allocator.js';
import { AddressPool } from './address-pool.js';
import { SqlApiKeyRepo } from './api-key-repo.js';
import { SqlAuditRepo } from './audit-repo.js';
import { SqlConsoleSessionRepo } from './console-session-repo.js';
import { ChangeBuffer, appendChanges, type ChangeLogOptions } from './change-log.js';
import { SqlHaRepo } from './ha-repo.js';
import { SqlSshCheckRepo } from './ssh-check-repo.js';
import { StoreErrors, storeError } from './errors.js';
import { classifyStorageFailure } from './db-errors.js';
import { HeadwayError } from '../util/headway-error.js';
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, migrationProvider } from './migrations.js';
import { SqlNodeRepo } from './node-repo.js';
import { SqlOAuthRepo } from './oauth-repo.js';
import { SqlPolicyRepo } from './policy-repo.js';
import { SqlPreAuthKeyRepo } from './pre-auth-key-repo.js';
import type { AddressPools, RepoContext } from './repo-context.js';
import type { Database } from './schema.js';
import { SqlTailnetRepo } from './tailnet-repo.js';
import type { Dialect, Store, StoreTx } from './types.js';
import { SqlScimGroupRepo } from './scim-group-repo.js';
import { SqlUserRepo } from './user-repo.js';
import { SqlWebhookRepo } from './webhook-repo.js';

/** The parts of Config the store reads; a whole Config fits. */
export type StoreConfig = Pick<Config, 'database' | 'prefixes'>;

export interface StoreOptions {
  logger?: Logger;
  /** The clock for created_at and friends; tests inject one. Default: Date.now. */
  now?: () => number;
  /** SQLite: how long a statement waits for another process's lock. Default 5000 ms. */
  busyTimeoutMs?: number;
  /**
   * Refuse `store.read` and nested `transaction()` inside a transaction callback (on SQLite
   * they would deadlock). The check needs AsyncLocalStorage, whose hooks slow every promise
   * and async write in the process, so it is a development aid: the tests turn it on.
   * Default false.
   */
  detectMisuse?: boolean;
  /**
   * High availability: every transaction that wrote rows other instances hold in memory appends
   * them to the change log before COMMIT (docs/ha.md). PostgreSQL only. Default: off.
   */
  changeLog?: ChangeLogOptions | null;
}

/** Opens the database, creating it (SQLite) and migrating it to this build's schema. */
export async function openStore(config: StoreConfig, options: StoreOptions = {}): Promise<Store> {
  const logger = (options.logger ?? silentLogger()).child({ [F.part]: 'store' });
  const pools: AddressPools = {
    v4: config.prefixes.v4 === null ? null : new AddressPool(config.prefixes.v4),
    v6: config.prefixes.v6 === null ? null : new AddressPool(config.prefixes.v6),
    allocation: config.prefixes.allocation,
  };
  const database = config.database;
  const { db, where } = database.type === 'sqlite'
    ? openSqlite(database.sqlite, options.busyTimeoutMs ?? 5000)
    : openPostgres(database.postgres, logger);
  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    await db.destroy().catch(() => undefined);
    // The pool already labels a refused connection; report the driver's own words once.
    const cause = err instanceof HeadwayError && err.cause !== undefined ? err.cause : err;
    throw storeError(StoreErrors.unavailable, `${where}: cannot connect: ${errorText(cause)}`, cause);
  }
  try {
    const applied = await migrate(db, database.type, where);
    await db.insertInto('tailnets')
      .values({ name: DEFAULT_TAILNET_NAME, created_at: (options.now ?? Date.now)(), last_ipv4: null, last_ipv6: null })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    if (applied > 0) logger.info({ [F.path]: where }, `schema migrated (${applied} migration${applied === 1 ? '' : 's'} applied)`);
    logger.info({ [F.path]: where }, 'store opened');
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
  const changeLog = options.changeLog ?? null;
  if (changeLog !== null && database.type !== 'postgres') {
    await db.destroy().catch(() => undefined);
    throw storeError(StoreErrors.unavailable, `${where}: the high-availability change log needs PostgreSQL`);
  }
  return new SqlStore(db, database.type, pools, options.now ?? Date.now, options.detectMisuse ?? false, changeLog);
}

function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorText(err.errors[0]);
  return err instanceof Error ? err.message : String(err);
}

// --- SQLite ----------------------------------------------------------------------------------

const STATEMENT_CACHE_SIZE = 256;

/**
 * better-sqlite3 with prepared statements reused by SQL text. kysely prepares every query anew;
 * preparing costs about as much as running a simple indexed statement.
 */
class CachedStatementDatabase {
  readonly #db: BetterSqlite3.Database;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();

  constructor(db: BetterSqlite3.Database) {
    this.#db = db;
  }

  prepare(text: string): BetterSqlite3.Statement {
    let statement = this.#statements.get(text);
    if (statement !== undefined) {
      // Re-insert to keep the map in least-recently-used order.
      this.#statements.delete(text);
    } else {
      statement = this.#db.prepare(text);
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) {
        const oldest = this.#statements.keys().next().value;
        if (oldest !== undefined) this.#statements.delete(oldest);
      }
    }
    this.#statements.set(text, statement);
    return statement;
  }

  close(): void {
    this.#statements.clear();
    this.#db.close();
  }
}

function openSqlite(config: SqliteConfig, busyTimeoutMs: number): { db: Kysely<Database>; where: string } {
  const where = `sqlite ${config.path}`;
  let raw: BetterSqlite3.Database;
  try {
    if (config.path !== ':memory:') {
      mkdirSync(dirname(config.path), { recursive: true, mode: 0o700 });
      // Create the file ourselves so it is private from the start; SQLite gives the -wal and
      // -shm files the same mode.
      closeSync(openSync(config.path, 'a', 0o600));
    }
    raw = new BetterSqlite3(config.path, { timeout: busyTimeoutMs });
    if (config.writeAheadLog) raw.pragma('journal_mode = WAL');
    raw.pragma('foreign_keys = ON');
    raw.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    // FULL: a committed transaction survives a power cut, not only a crash of the process.
    raw.pragma('synchronous = FULL');
    // Up to 64 MiB of page cache (the default is 2 MiB): a 50,000-node tailnet's tables and
    // indexes stay in memory, which halves the time to list them at start-up.
    raw.pragma('cache_size = -65536');
  } catch (err) {
    throw storeError(StoreErrors.unavailable, `${where}: cannot open: ${errorText(err)}`, err);
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new CachedStatementDatabase(raw) }) });
  return { db, where };
}

// --- PostgreSQL ------------------------------------------------------------------------------

const PG_INT8_OID = 20;

function pgSsl(config: PostgresConfig): pg.PoolConfig['ssl'] {
  switch (config.ssl) {
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return true;
  }
}

export function postgresLocation(config: PostgresConfig): string {
  if (config.url !== null) {
    try {
      const url = new URL(config.url);
      return `postgres ${url.hostname}:${url.port || '5432'}${url.pathname}`;
    } catch {
      return 'postgres (url)';
    }
  }
  return `postgres ${config.host}:${config.port}/${config.name}`;
}

/**
 * Connection settings for one PostgreSQL connection of our own (high availability's LISTEN and
 * advisory-lock sessions), the same as the pool's.
 */
export function postgresClientConfig(config: PostgresConfig): pg.ClientConfig {
  return {
    application_name: 'headway',
    // Timestamps are BIGINT milliseconds, well inside Number's exact range.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === PG_INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
    },
    ...(config.url !== null
      ? { connectionString: config.url }
      : { host: config.host, port: config.port, database: config.name, user: config.user || undefined, password: config.pass || undefined, ssl: pgSsl(config) }),
  };
}

function openPostgres(config: PostgresConfig, logger: Logger): { db: Kysely<Database>; where: string } {
  const where = postgresLocation(config);
  const poolConfig: pg.PoolConfig = { ...postgresClientConfig(config), max: config.maxOpenConns };
  const pool = new pg.Pool(poolConfig);
  // An idle client losing its connection emits 'error' on the pool; unhandled, it would end the
  // process. The pool replaces the client on next use.
  pool.on('error', (err) => logger.warn({ [F.path]: where, [F.err]: err }, 'postgres connection lost'));
  // pg-pool removes its error listener from a client while it is checked out (inside a
  // transaction, between statements); a FATAL from the server then (a PostgreSQL restart sends
  // "terminating connection due to administrator command" to every session) would be an
  // unhandled 'error' event and end the process. The statement in flight still fails.
  pool.on('connect', (client) => {
    client.on('error', (err) => logger.warn({ [F.path]: where, [F.err]: err }, 'postgres connection lost while in use'));
  });
  // Reads outside transactions fail at connect when the database is down: say so (503) there
  // too, not only in transaction().
  const reportingPool = {
    connect: async () => {
      try {
        return await pool.connect();
      } catch (err) {
        throw storageFailureOr(err, 'postgres');
      }
    },
    end: () => pool.end(),
  };
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: reportingPool }) });
  return { db, where };
}

// --- migrations ------------------------------------------------------------------------------

async function migrate(db: Kysely<Database>, dialect: Dialect, where: string): Promise<number> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider(dialect),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const text = errorText(error);
    if (text.includes('corrupted migrations')) {
      throw storeError(StoreErrors.schemaTooNew, `${where}: the schema was migrated by a newer Headway (${text.replace(/^corrupted migrations: /, '')})`, error);
    }
    const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? 'unknown';
    throw storeError(StoreErrors.migrationFailed, `${where}: migration ${failed} failed: ${text}`, error);
  }
  return results?.filter((result) => result.status === 'Success').length ?? 0;
}

// --- the store -------------------------------------------------------------------------------

interface TransactionScope {
  active: boolean;
}

/**
 * Checks every query run through `store.read`: refused after close(), and refused inside a
 * transaction callback, where on SQLite it would wait for the transaction forever.
 */
class ReadGuardPlugin implements KyselyPlugin {
  readonly #check: () => void;

  constructor(check: () => void) {
    this.#check = check;
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.#check();
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

function repositories(ctx: RepoContext): StoreTx {
  return Object.freeze({
    tailnets: new SqlTailnetRepo(ctx),
    users: new SqlUserRepo(ctx),
    nodes: new SqlNodeRepo(ctx),
    preAuthKeys: new SqlPreAuthKeyRepo(ctx),
    apiKeys: new SqlApiKeyRepo(ctx),
    policies: new SqlPolicyRepo(ctx),
    audit: new SqlAuditRepo(ctx),
    addresses: new SqlAddressAllocator(ctx),
    scimGroups: new SqlScimGroupRepo(ctx),
    oauth: new SqlOAuthRepo(ctx),
    webhooks: new SqlWebhookRepo(ctx),
    consoleSessions: new SqlConsoleSessionRepo(ctx),
    ha: new SqlHaRepo(ctx),
    sshChecks: new SqlSshCheckRepo(ctx),
  });
}

class SqlStore implements Store {
  readonly dialect: Dialect;
  readonly read: StoreTx;
  readonly #db: Kysely<Database>;
  readonly #pools: AddressPools;
  readonly #nowMs: () => number;
  readonly #scope: AsyncLocalStorage<TransactionScope> | null;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #changeLog: ChangeLogOptions | null;
  #closing: Promise<void> | undefined;

  constructor(db: Kysely<Database>, dialect: Dialect, pools: AddressPools, nowMs: () => number, detectMisuse: boolean, changeLog: ChangeLogOptions | null) {
    this.#changeLog = changeLog;
    this.#scope = detectMisuse ? new AsyncLocalStorage<TransactionScope>() : null;
    this.#db = db;
    this.dialect = dialect;
    this.#pools = pools;
    this.#nowMs = nowMs;
    const guarded = db.withPlugin(new ReadGuardPlugin(() => this.#assertUsable('store.read')));
    this.read = repositories({ db: guarded, dialect, nowMs, inTransaction: false, pools, changes: null });
  }

  #assertUsable(what: string): void {
    if (this.#closing !== undefined) throw storeError(StoreErrors.closed, `${what}: the store is closed`);
    if (this.#scope?.getStore()?.active === true) {
      throw storeError(StoreErrors.nestedTransaction, `${what} used inside a transaction callback; use the callback's tx`);
    }
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    this.#assertUsable('store.transaction()');
    const scope: TransactionScope = { active: true };
    const changeLog = this.#changeLog;
    const body = async (trx: Kysely<Database>): Promise<T> => {
      const changes = changeLog === null ? null : new ChangeBuffer();
      let result: T;
      try {
        result = await fn(repositories({ db: trx, dialect: this.dialect, nowMs: this.#nowMs, inTransaction: true, pools: this.#pools, changes }));
      } finally {
        // Once the callback has returned, work it left running is no longer inside it, even
        // while the commit (a network round trip on PostgreSQL) is still under way.
        scope.active = false;
      }
      // The log row commits with the writes it describes, or not at all.
      if (changes !== null && changes.size > 0) await appendChanges(trx, changeLog!.instanceId, changes.records());
      return result;
    };
    const guard = this.#scope;
    const run = this.#db.transaction().execute((trx) => (guard === null ? body(trx) : guard.run(scope, () => body(trx))));
    this.#inFlight.add(run);
    try {
      return await run;
    } catch (err) {
      throw storageFailureOr(err, this.dialect);
    } finally {
      // Work the callback left running must not be mistaken for being inside it later.
      scope.active = false;
      this.#inFlight.delete(run);
    }
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      await this.#db.destroy();
    })();
    return this.#closing;
  }
}

/** A disk-full or lost-database failure as a HeadwayError that says so; anything else unchanged. */
function storageFailureOr(err: unknown, dialect: string): unknown {
  if (err instanceof HeadwayError) return err;
  const kind = classifyStorageFailure(err);
  if (kind === undefined) return err;
  const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return kind === 'diskFull'
    ? storeError(StoreErrors.diskFull, `${dialect}: write failed, the disk is full: ${detail}`, err)
    : storeError(StoreErrors.unavailable, `${dialect}: the database is unreachable: ${detail}`, err);
}

// Test helpers: run one suite against SQLite (a file in a fresh temporary directory) and against
// PostgreSQL (a freshly created, uniquely named database, dropped afterwards), the way kysely's
// own tests loop over DIALECTS. Tests only: production code never imports this file (a guard
// test checks), and the store's index does not export it.
//
// HEADWAY_TEST_DB=sqlite (or =postgres) narrows the run to one dialect. Otherwise an unreachable
// PostgreSQL makes the PostgreSQL tests FAIL, never skip: CI must not go green without it.
// HEADWAY_TEST_POSTGRES_URL overrides the maintenance connection
// (default postgres://postgres@127.0.0.1:5432/test).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe } from 'node:test';
import pg from 'pg';
import type { DatabaseConfig, PrefixesConfig } from '../config/index.js';
import { openStore, type StoreConfig, type StoreOptions } from './open-store.js';
import type { Dialect, Store } from './types.js';

export const TEST_DB_ENV = 'HEADWAY_TEST_DB';
export const TEST_POSTGRES_URL_ENV = 'HEADWAY_TEST_POSTGRES_URL';
const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

export const DEFAULT_TEST_PREFIXES: PrefixesConfig = Object.freeze({
  v4: '100.64.0.0/10',
  v6: 'fd7a:115c:a1e0::/48',
  allocation: 'sequential',
});

/** The dialects this run covers, from HEADWAY_TEST_DB. */
export function selectedDialects(env: NodeJS.ProcessEnv = process.env): Dialect[] {
  const wanted = env[TEST_DB_ENV];
  if (wanted === 'sqlite') return ['sqlite'];
  if (wanted === 'postgres') return ['postgres'];
  if (wanted !== undefined && wanted !== '') throw new Error(`${TEST_DB_ENV}=${wanted}: want sqlite or postgres (or unset for both)`);
  return ['sqlite', 'postgres'];
}

export interface TestDatabase {
  readonly dialect: Dialect;
  readonly database: DatabaseConfig;
  /** A scratch directory for this database's test (SQLite keeps its file here). */
  readonly dataDir: string;
  /** Drops the database (PostgreSQL) and removes the directory. Idempotent. */
  cleanup(): Promise<void>;
}

let databaseCounter = 0;

function postgresUrl(): string {
  return process.env[TEST_POSTGRES_URL_ENV] || DEFAULT_POSTGRES_URL;
}

async function withMaintenanceClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const url = postgresUrl();
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `PostgreSQL for tests is unreachable at ${url.replace(/:[^:@/]*@/, ':***@')} (${reason}); start it, or set ${TEST_DB_ENV}=sqlite to test SQLite only`,
      { cause: err },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database of the dialect. */
export async function createTestDatabase(dialect: Dialect): Promise<TestDatabase> {
  const dataDir = await mkdtemp(join(tmpdir(), 'headway-store-'));
  let cleaned = false;
  if (dialect === 'sqlite') {
    return {
      dialect,
      dataDir,
      database: { type: 'sqlite', sqlite: { path: join(dataDir, 'headway.sqlite'), writeAheadLog: true } },
      async cleanup() {
        if (cleaned) return;
        cleaned = true;
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  }
  databaseCounter += 1;
  const name = `headway_test_${process.pid}_${databaseCounter}_${randomBytes(3).toString('hex')}`;
  try {
    await withMaintenanceClient((client) => client.query(`CREATE DATABASE "${name}"`));
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const url = new URL(postgresUrl());
  url.pathname = `/${name}`;
  return {
    dialect,
    dataDir,
    database: {
      type: 'postgres',
      postgres: { url: url.toString(), host: '', port: 5432, name, user: '', pass: '', ssl: 'disable', maxOpenConns: 10 },
    },
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      await withMaintenanceClient((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestStoreOptions extends StoreOptions {
  prefixes?: Partial<PrefixesConfig>;
}

export interface TestStore {
  /** The store most recently opened (reopen() replaces it). */
  readonly store: Store;
  readonly config: StoreConfig;
  readonly testDatabase: TestDatabase;
  /** Closes the store and opens a new one on the same database: a server restart. */
  reopen(): Promise<Store>;
  /** Closes every store opened here and drops the database. */
  cleanup(): Promise<void>;
}

/** A store on a fresh database of the dialect. */
export async function openTestStore(dialect: Dialect, options: TestStoreOptions = {}): Promise<TestStore> {
  const testDatabase = await createTestDatabase(dialect);
  const config: StoreConfig = {
    database: testDatabase.database,
    prefixes: { ...DEFAULT_TEST_PREFIXES, ...options.prefixes },
  };
  const opened: Store[] = [];
  try {
    opened.push(await openStore(config, { detectMisuse: true, ...options }));
  } catch (err) {
    await testDatabase.cleanup();
    throw err;
  }
  return {
    get store() {
      return opened[opened.length - 1]!;
    },
    config,
    testDatabase,
    async reopen() {
      await opened[opened.length - 1]!.close();
      opened.push(await openStore(config, { detectMisuse: true, ...options }));
      return opened[opened.length - 1]!;
    },
    async cleanup() {
      for (const store of opened) await store.close();
      await testDatabase.cleanup();
    },
  };
}

/**
 * Declares `describe('<name> (<dialect>)')` once per selected dialect; the suite opens fresh
 * stores with `open()` and cleans each up.
 */
export function forEachDialect(
  name: string,
  suite: (open: (options?: TestStoreOptions) => Promise<TestStore>, dialect: Dialect) => void,
): void {
  for (const dialect of selectedDialects()) {
    describe(`${name} (${dialect})`, () => suite((options) => openTestStore(dialect, options), dialect));
  }
}

// Test support (never imported by production code): a real Headway server on port 0 in a
// temporary data directory, on SQLite or on a fresh PostgreSQL database, with helpers to make
// users and pre-auth keys and to restart it on the same data.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject, type Config } from '../config/index.js';
import { silentLogger, type Logger } from '../log/index.js';
import type { User } from '../model/index.js';
import { createTestDatabase, type TestDatabase } from '../store/testing.js';
import type { Dialect } from '../store/index.js';
import type { TailnetState } from '../state/index.js';
import { startServer, type AdminApiFactory, type RunningServer, type StartOptions } from './headway-server.js';

export interface TestServerOptions {
  dialect?: Dialect;
  /** snake_case config keys merged over the test defaults. */
  config?: Record<string, unknown>;
  start?: StartOptions;
  api?: AdminApiFactory;
  logger?: Logger;
  /** Runs once on the final config before the first start (e.g. to import data into the store). */
  beforeStart?: (config: Config) => Promise<void>;
}

export interface TestServer {
  /** The server currently running (restart() replaces it). */
  readonly server: RunningServer;
  readonly config: Config;
  readonly dataDir: string;
  readonly defaultTailnet: TailnetState;
  createUser(name: string, email?: string): Promise<User>;
  /** A pre-auth key secret for `user` in the default tailnet. */
  authKey(user: User | null, options?: { reusable?: boolean; ephemeral?: boolean; tags?: string[]; expiresAt?: Date | null; preApproved?: boolean }): Promise<string>;
  /** Stops the server and starts a new one on the same data (and the same port). */
  restart(): Promise<RunningServer>;
  cleanup(): Promise<void>;
}

const admin = { name: 'test' };

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A server on loopback for tests and benchmarks: every port chosen by the OS, no logs. */
export function loopbackServerConfig(dataDir: string): Record<string, unknown> {
  return {
    listen_addr: '127.0.0.1:0',
    metrics_listen_addr: '127.0.0.1:0',
    data_dir: dataDir,
    log: { level: 'silent' },
    derp: { server: { stun_listen_addr: '127.0.0.1:0' } },
  };
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dialect = options.dialect ?? 'sqlite';
  const database: TestDatabase = await createTestDatabase(dialect);
  const dataDir = await mkdtemp(join(tmpdir(), 'headway-server-'));
  const base: Record<string, unknown> = {
    ...loopbackServerConfig(dataDir),
    map: { coalesce_window: '5ms' },
    // Tests register and call the API far faster than people do; test/e2e/limits.test.ts
    // checks these limits with their own values.
    limits: { registrations_per_minute_per_address: 0, registrations_per_minute_per_key: 0, api_requests_per_minute_per_key: 0 },
  };
  const parsed = configFromObject(deepMerge(base, options.config ?? {}), { source: 'test config', baseDir: dataDir });
  let config: Config = { ...parsed, database: database.database };
  const logger = options.logger ?? silentLogger();
  const startOptions: StartOptions & { api?: AdminApiFactory } = { logger, offlineGraceMs: 50, presenceWindowMs: 50, detectStoreMisuse: true, ...options.start, ...(options.api ? { api: options.api } : {}) };
  await options.beforeStart?.(config);
  let server = await startServer(config, startOptions);
  // A restart must come back on the same port: clients keep their server URL.
  const port = Number(new URL(server.url).port);
  config = { ...config, listenAddr: { host: '127.0.0.1', port }, serverUrl: server.url };

  const harness: TestServer = {
    get server() { return server; },
    get config() { return config; },
    dataDir,
    get defaultTailnet() { return server.state.defaultTailnet; },
    createUser: (name, email) => server.state.defaultTailnet.createUser({ name, email: email ?? `${name}@example.com` }, admin),
    async authKey(user, keyOptions = {}) {
      const created = await server.state.createPreAuthKey(server.state.defaultTailnet, {
        userId: user?.id ?? null,
        reusable: keyOptions.reusable ?? true,
        ephemeral: keyOptions.ephemeral ?? false,
        tags: keyOptions.tags ?? [],
        expiresAt: keyOptions.expiresAt ?? null,
        preApproved: keyOptions.preApproved ?? false,
      }, admin);
      return created.secret;
    },
    async restart() {
      await server.close();
      server = await startServer(config, startOptions);
      return server;
    },
    async cleanup() {
      await server.close();
      await database.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}

// Test support (never imported by production code): several Headway instances in this process
// on one fresh PostgreSQL database with ha.enabled, each on its own port and data directory.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject, type Config } from '../config/index.js';
import { silentLogger } from '../log/index.js';
import { startServer, type AdminApiFactory, type RunningServer, type StartOptions } from '../server/headway-server.js';
import { loopbackServerConfig } from '../server/testing.js';
import { createTestDatabase, type TestDatabase } from '../store/testing.js';

/** Polls `predicate` until it holds; fails the test with `what` after `timeoutMs`. */
export async function waitUntil(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export const TEST_HA_SECRET = 'test-secret-0123456789abcdef';

export interface TestCluster {
  readonly database: TestDatabase;
  readonly instances: RunningServer[];
  readonly configs: Config[];
  /** Stops instance `index` in order (it leaves the instance set). */
  stop(index: number): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startTestCluster(count: number, options: {
  config?: Record<string, unknown>;
  /** Configuration for one instance (by index), over `config`: its own listen_addr, server_url... */
  perInstance?: (index: number) => Record<string, unknown>;
  /** Start options of every instance; `api` serves the admin API (and the console's session). */
  start?: StartOptions & { api?: AdminApiFactory };
} = {}): Promise<TestCluster> {
  const database = await createTestDatabase('postgres');
  const dirs: string[] = [];
  const instances: RunningServer[] = [];
  const configs: Config[] = [];
  const stopped = new Set<number>();
  try {
    for (let i = 0; i < count; i++) {
      const dataDir = await mkdtemp(join(tmpdir(), `headway-ha-${i}-`));
      dirs.push(dataDir);
      const raw = {
        ...loopbackServerConfig(dataDir),
        map: { coalesce_window: '5ms' },
        database: { type: 'postgres', postgres: { host: '127.0.0.1', name: 'unused' } },
        ha: { enabled: true, instance_id: `hw-${i + 1}`, secret: TEST_HA_SECRET, lease_duration: '2s', heartbeat_interval: '500ms' },
        ...options.config,
        ...options.perInstance?.(i),
      };
      const parsed = configFromObject(raw, { source: `instance ${i + 1}`, baseDir: dataDir });
      const config: Config = { ...parsed, database: database.database };
      configs.push(config);
      instances.push(await startServer(config, { logger: silentLogger(), offlineGraceMs: 50, presenceWindowMs: 50, detectStoreMisuse: true, ...options.start }));
    }
  } catch (err) {
    for (const instance of instances) await instance.close().catch(() => undefined);
    await database.cleanup();
    throw err;
  }
  return {
    database,
    instances,
    configs,
    async stop(index) {
      if (stopped.has(index)) return;
      stopped.add(index);
      await instances[index]!.close();
    },
    async cleanup() {
      for (let i = 0; i < instances.length; i++) if (!stopped.has(i)) await instances[i]!.close().catch(() => undefined);
      await database.cleanup();
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    },
  };
}

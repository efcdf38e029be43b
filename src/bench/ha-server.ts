// One instance of the high-availability benchmark, in its own process: Headway with ha.enabled
// on the benchmark's PostgreSQL database, on a loopback port. Prints one JSON line {url, pid};
// stops on SIGTERM. HEADWAY_BENCH_HA_OFF=1 runs it without HA (the same PostgreSQL, no change
// log): the baseline the cost of the log is measured against.
import { parseArgs } from 'node:util';
import { configFromObject } from '../config/index.js';
import { silentLogger } from '../log/index.js';
import { startServer } from '../server/index.js';
import { loopbackServerConfig } from '../server/testing.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { db: { type: 'string' }, dir: { type: 'string' }, instance: { type: 'string' }, secret: { type: 'string' } } });
  const dir = values.dir!;
  const config = configFromObject({
    ...loopbackServerConfig(dir),
    map: { coalesce_window: '50ms' },
    database: { type: 'postgres', postgres: { url: values.db, max_open_conns: 10 } },
    ha: { enabled: process.env['HEADWAY_BENCH_HA_OFF'] !== '1', instance_id: values.instance, secret: values.secret },
  }, { source: 'ha bench', baseDir: dir });
  const server = await startServer(config, { logger: silentLogger() });
  process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
  const stop = () => { void server.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1]?.endsWith('ha-server.js')) {
  main().catch((err: unknown) => {
    process.stderr.write(`ha-server: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

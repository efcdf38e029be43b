// A PostgreSQL cluster of the test's own, made with initdb on a free port, that the test may
// stop and start without disturbing the shared server other tests use. initdb refuses to run as
// root, so as root it runs as the `postgres` user. Needs initdb and pg_ctl on PATH.
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const run = promisify(execFile);

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/headway */
  readonly url: string;
  start(): Promise<void>;
  /** A fast shutdown: open connections are cut, as when the database host goes away. */
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

/** Why a private cluster cannot be made here, or null when it can. */
export async function privatePostgresUnavailable(): Promise<string | null> {
  try {
    await run('initdb', ['--version']);
    await run('pg_ctl', ['--version']);
  } catch {
    return 'initdb and pg_ctl are not on PATH';
  }
  if (process.getuid?.() === 0) {
    try {
      await run('id', ['-u', 'postgres']);
    } catch {
      return 'running as root and there is no postgres user for initdb';
    }
  }
  return null;
}

export async function createPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'headway-pg-'));
  const asRoot = process.getuid?.() === 0;
  const pgCommand = async (command: string, args: string[]): Promise<void> => {
    if (asRoot) await run('runuser', ['-u', 'postgres', '--', command, ...args]);
    else await run(command, args);
  };
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    await chown(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const port = await freePort();
  await pgCommand('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions']);
  const start = () => pgCommand('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  await start();
  await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-c', 'CREATE DATABASE headway']).catch(async () => {
    // Without psql, the pg client (a dependency) creates it.
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await client.connect();
    await client.query('CREATE DATABASE headway');
    await client.end();
  });
  let running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/headway`,
    async start() {
      await start();
      running = true;
    },
    async stop() {
      await pgCommand('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      running = false;
    },
    async cleanup() {
      if (running) await pgCommand('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

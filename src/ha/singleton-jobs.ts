// Jobs that must run on one instance at a time (docs/ha.md): each job is a session-level
// PostgreSQL advisory lock held on a dedicated connection. The instance that holds the lock
// runs the job; the others try again every period. When the holder dies its connection closes
// and PostgreSQL releases the lock, so the job moves within one period.
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../log/index.js';

/** A stable 63-bit lock key per job name, so every instance agrees without a registry. */
export function jobLockKey(name: string): string {
  const digest = createHash('sha256').update(`headway-job:${name}`).digest();
  return (digest.readBigUInt64BE(0) & 0x7fff_ffff_ffff_ffffn).toString();
}

export class SingletonJobs {
  readonly #connect: () => pg.Client;
  readonly #logger: Logger;
  readonly #names: readonly string[];
  readonly #held = new Set<string>();
  #client: pg.Client | null = null;
  #closed = false;

  constructor(options: { connect: () => pg.Client; names: readonly string[]; logger: Logger }) {
    this.#connect = options.connect;
    this.#names = options.names;
    this.#logger = options.logger;
  }

  /** True while this instance holds the job's lock. */
  isLeader(name: string): boolean {
    return this.#held.has(name);
  }

  /** Tries to take the locks this instance does not hold; called every heartbeat. */
  async tick(): Promise<void> {
    if (this.#closed) return;
    try {
      const client = await this.#ensureClient();
      for (const name of this.#names) {
        if (this.#held.has(name)) continue;
        const result = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [jobLockKey(name)]);
        if (result.rows[0]?.locked === true) {
          this.#held.add(name);
          this.#logger.info({ job: name }, 'this instance now runs the singleton job');
        }
      }
    } catch (err) {
      this.#lose(err);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = null;
    this.#held.clear();
    if (client !== null) await client.end().catch(() => undefined);
  }

  async #ensureClient(): Promise<pg.Client> {
    if (this.#client !== null) return this.#client;
    const client = this.#connect();
    client.on('error', (err) => this.#lose(err));
    await client.connect();
    this.#client = client;
    return client;
  }

  /** The connection is gone, and with it every lock: stop running the jobs at once. */
  #lose(err: unknown): void {
    if (this.#held.size > 0) this.#logger.warn({ err, jobs: [...this.#held] }, 'lost the singleton job locks');
    this.#held.clear();
    const client = this.#client;
    this.#client = null;
    if (client !== null) void client.end().catch(() => undefined);
  }
}

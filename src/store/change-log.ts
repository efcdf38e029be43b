// The ordered change log of high availability (docs/ha.md). Repositories record which rows a
// transaction wrote that other instances hold in memory; Store.transaction() appends them as one
// log row, the transaction's last statement, and NOTIFYs its position (PostgreSQL delivers the
// notification at COMMIT). With HA off nothing is recorded and nothing is appended.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from './schema.js';

/**
 * What changed. The built-in entities are applied by src/ha; a part that adds a table feeding the
 * in-memory state records its own entity name and registers an applier there.
 */
export type ChangeEntity = 'tailnet' | 'user' | 'node' | 'policy' | 'presence' | (string & {});

/** [entity, id]; for 'policy' the id is the tailnet's, for 'presence' the node's. */
export type ChangeRecord = readonly [entity: ChangeEntity, id: number];

export interface ChangeSink {
  record(entity: ChangeEntity, id: number): void;
}

/** The changes of one transaction, each once, in the order first recorded. */
export class ChangeBuffer implements ChangeSink {
  readonly #seen = new Set<string>();
  readonly #records: ChangeRecord[] = [];

  record(entity: ChangeEntity, id: number): void {
    const key = `${entity}:${id}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.#records.push([entity, id]);
  }

  get size(): number {
    return this.#records.length;
  }

  records(): readonly ChangeRecord[] {
    return this.#records;
  }
}

/** The NOTIFY channel; the payload is the appended position. */
export const CHANGE_CHANNEL = 'headway_change';

/**
 * Key of the transaction-scoped advisory lock every append takes. Positions come from a
 * sequence, so without it two transactions could commit out of position order and a reader
 * that has seen position n+1 would never read n. The lock is taken by the last statement before
 * COMMIT, so it is held only for the commit itself.
 */
export const CHANGE_LOG_LOCK = 0x4877_4c6f; // "HwLo"

export interface ChangeLogOptions {
  /** Written into every appended row: which instance wrote it (diagnostics, the writer's own rows). */
  readonly instanceId: string;
}

/**
 * Milliseconds on the database's clock (clock_timestamp, not the transaction's start: leases need
 * the present). Every instance shares it, so one instance's wall clock jumping moves no lease and
 * no log row's age.
 */
export function dbNowMs(): RawBuilder<number> {
  return sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;
}

/**
 * Appends one log row inside the caller's transaction; returns its position. The row is dated by
 * the database's clock, which the log prune also reads.
 */
export async function appendChanges(db: Kysely<Database>, instanceId: string, records: readonly ChangeRecord[]): Promise<number> {
  await sql`select pg_advisory_xact_lock(${CHANGE_LOG_LOCK})`.execute(db);
  const row = await db.insertInto('ha_change_log')
    .values({ instance_id: instanceId, changes: JSON.stringify(records), created_at: dbNowMs() })
    .returning('position')
    .executeTakeFirstOrThrow();
  await sql`select pg_notify(${CHANGE_CHANNEL}, ${String(row.position)})`.execute(db);
  return row.position;
}

/** Reads a stored `changes` column; entries of the wrong shape are dropped, never thrown. */
export function parseChangeRecords(text: string): ChangeRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(value)) return [];
  const out: ChangeRecord[] = [];
  for (const item of value) {
    if (Array.isArray(item) && typeof item[0] === 'string' && typeof item[1] === 'number') out.push([item[0], item[1]]);
  }
  return out;
}

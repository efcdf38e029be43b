// Hands out addresses inside the caller's transaction. Allocations in one tailnet serialise: on
// SQLite every transaction does, on PostgreSQL a transaction-scoped advisory lock per tailnet
// does (held until commit or rollback), and the unique indexes on (tailnet_id, ipv4/ipv6) are
// the backstop. Cost per allocation does not grow with the tailnet:
// - sequential: start after the last address handed out (kept on the tailnet row), probe a batch
//   of candidates with one indexed IN query; the first free one wins;
// - random: probe a batch of random candidates the same way.
// Only when several batches find nothing free (a nearly full prefix) does it read every address
// in use, which also tells exhaustion apart from bad luck.
import { sql } from 'kysely';
import type { TailnetId } from '../model/index.js';
import type { AddressPool } from './address-pool.js';
import { StoreErrors, storeError } from './errors.js';
import { notFound, type RepoContext } from './repo-context.js';
import type { AddressAllocator } from './types.js';

/** Advisory-lock namespace for address allocation (the key pair is (this, tailnet id)). */
const PG_ADDRESS_LOCK_CLASS = 0x48570001;
const SEQUENTIAL_BATCH = 32;
const RANDOM_BATCH = 16;
const PROBE_ROUNDS = 4;

type AddressColumn = 'ipv4' | 'ipv6';

export class SqlAddressAllocator implements AddressAllocator {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async allocate(tailnetId: TailnetId): Promise<{ ipv4: string | null; ipv6: string | null }> {
    if (!this.#ctx.inTransaction) {
      throw storeError(StoreErrors.needsTransaction, `tailnet ${tailnetId}: addresses must be allocated inside store.transaction(), with the node insert`);
    }
    const { db, dialect, pools } = this.#ctx;
    if (dialect === 'postgres') {
      await sql`select pg_advisory_xact_lock(${PG_ADDRESS_LOCK_CLASS}::int4, ${tailnetId}::int4)`.execute(db);
    }
    const cursor = await db.selectFrom('tailnets').select(['last_ipv4', 'last_ipv6']).where('id', '=', tailnetId).executeTakeFirst();
    if (cursor === undefined) throw notFound(`tailnet ${tailnetId}`);

    const ipv4 = pools.v4 === null ? null : await this.#allocateFrom(pools.v4, 'ipv4', tailnetId, cursor.last_ipv4);
    const ipv6 = pools.v6 === null ? null : await this.#allocateFrom(pools.v6, 'ipv6', tailnetId, cursor.last_ipv6);
    if (pools.allocation === 'sequential') {
      await db.updateTable('tailnets').set({ last_ipv4: ipv4 ?? cursor.last_ipv4, last_ipv6: ipv6 ?? cursor.last_ipv6 }).where('id', '=', tailnetId).execute();
    }
    return { ipv4, ipv6 };
  }

  async #allocateFrom(pool: AddressPool, column: AddressColumn, tailnetId: TailnetId, lastText: string | null): Promise<string> {
    if (pool.capacity <= 0n) throw exhausted(tailnetId, pool, column);
    const sequential = this.#ctx.pools.allocation === 'sequential';
    const last = lastText === null ? undefined : pool.parse(lastText);
    const start = sequential
      ? pool.nextUsable(last === undefined || !pool.contains(last) ? pool.first : last + 1n)
      : pool.randomUsable();

    let next = start;
    let wrapped = false;
    for (let round = 0; round < PROBE_ROUNDS && !wrapped; round++) {
      const candidates: bigint[] = [];
      if (sequential) {
        while (candidates.length < SEQUENTIAL_BATCH) {
          candidates.push(next);
          next = pool.nextUsable(next + 1n);
          if (next === start) { wrapped = true; break; }
        }
      } else {
        const distinct = new Set<bigint>([pool.randomUsable()]);
        for (let i = 1; i < RANDOM_BATCH; i++) distinct.add(pool.randomUsable());
        candidates.push(...distinct);
      }
      const used = await this.#usedAmong(column, tailnetId, candidates.map((value) => pool.format(value)));
      const free = candidates.find((value) => !used.has(pool.format(value)));
      if (free !== undefined) return pool.format(free);
    }
    if (wrapped) throw exhausted(tailnetId, pool, column);
    return this.#allocateDense(pool, column, tailnetId, sequential ? next : pool.randomUsable());
  }

  /** The nearly-full path: read every address in use once, then walk to a free one. */
  async #allocateDense(pool: AddressPool, column: AddressColumn, tailnetId: TailnetId, from: bigint): Promise<string> {
    const rows = await this.#ctx.db.selectFrom('nodes').select(column).where('tailnet_id', '=', tailnetId).where(column, 'is not', null).execute();
    const used = new Set<bigint>();
    for (const row of rows) {
      const value = row[column] === null ? undefined : pool.parse(row[column]);
      if (value !== undefined && pool.isUsable(value)) used.add(value);
    }
    if (BigInt(used.size) >= pool.capacity) throw exhausted(tailnetId, pool, column);
    // At most used.size + (reserved ranges) steps: each step skips a used address or a range.
    let candidate = pool.nextUsable(from);
    while (used.has(candidate)) candidate = pool.nextUsable(candidate + 1n);
    return pool.format(candidate);
  }

  async #usedAmong(column: AddressColumn, tailnetId: TailnetId, texts: readonly string[]): Promise<Set<string>> {
    const rows = await this.#ctx.db.selectFrom('nodes').select(column)
      .where('tailnet_id', '=', tailnetId).where(column, 'in', texts).execute();
    const used = new Set<string>();
    for (const row of rows) {
      const text = row[column];
      if (text !== null) used.add(text);
    }
    return used;
  }
}

function exhausted(tailnetId: TailnetId, pool: AddressPool, column: AddressColumn) {
  return storeError(
    StoreErrors.addressesExhausted,
    `tailnet ${tailnetId}: every address of ${pool.text} is in use (${pool.capacity} usable); delete unused nodes or widen prefixes.${column === 'ipv4' ? 'v4' : 'v6'}`,
  );
}

// The tables of high availability (docs/ha.md): reading the change log, instance leases,
// cross-instance presence, the shared private keys and the sign-ins in flight. Lease and expiry
// times use the database's clock, so instances with skewed clocks still agree on who is alive.
// PostgreSQL only: HA is refused on SQLite by the configuration.
import { sql, type Selectable } from 'kysely';
import type { Node, NodeId, User, UserId } from '../model/index.js';
import { dbNowMs, parseChangeRecords, type ChangeRecord } from './change-log.js';
import type { RepoContext } from './repo-context.js';
import { nodeFromRow, userFromRow } from './rows.js';
import type { HaPendingLoginTable } from './schema.js';

export interface ChangeLogEntry {
  readonly position: number;
  readonly instanceId: string;
  readonly changes: readonly ChangeRecord[];
}

export interface InstanceLease {
  readonly instanceId: string;
  readonly advertiseUrl: string;
  readonly leaseExpiresAt: number;
  readonly alive: boolean;
}

/** An interactive login waiting for approval, as every instance can read it. */
export interface StoredPendingLogin {
  /** Names the row in the change log (entity 'pendingLogin'). */
  readonly seq: number;
  readonly id: string;
  /** JSON written and read by the state layer. */
  readonly registration: string;
  /** The node the login became once approved. */
  readonly nodeId: NodeId | null;
  readonly expiresAt: number;
}

export interface HaRepo {
  /** Stores a new pending login (logged, so every instance learns it); drops expired ones. */
  putPendingLogin(id: string, registration: string, expiresAt: number): Promise<void>;
  pendingLogin(id: string): Promise<StoredPendingLogin | undefined>;
  pendingLoginsBySeq(seqs: readonly number[]): Promise<StoredPendingLogin[]>;
  /** Records the approval (logged: the instance where the client waits wakes it). */
  approvePendingLogin(id: string, nodeId: NodeId): Promise<void>;
  /** Log rows after `position`, in order. */
  readLog(after: number, limit: number): Promise<ChangeLogEntry[]>;
  /** The newest position (0 when empty) and the oldest kept (null when empty). */
  logBounds(): Promise<{ oldest: number | null; newest: number }>;
  /**
   * Deletes log rows older than `retentionMs` by the database's clock (an instance's wall clock
   * jumping must not prune rows others still need) but always keeps the newest. Returns how many.
   */
  pruneLog(retentionMs: number): Promise<number>;
  /** Creates or renews an instance's lease for `leaseMs` from now (database clock). */
  renewLease(instanceId: string, advertiseUrl: string, leaseMs: number): Promise<void>;
  /** Every instance that has a lease row. */
  instances(): Promise<InstanceLease[]>;
  /** Ends an instance's lease and deletes its presence (an orderly shutdown). */
  dropInstance(instanceId: string): Promise<NodeId[]>;
  /**
   * Deletes the presence rows of instances whose lease has expired, and those instances; the
   * nodes whose presence may have changed are recorded in the change log.
   */
  reapExpired(): Promise<NodeId[]>;
  setPresence(nodeId: NodeId, instanceId: string, capVersion: number): Promise<void>;
  clearPresence(nodeId: NodeId, instanceId: string): Promise<void>;
  /** Highest capability version per node among live instances' sessions; absent = offline. */
  livePresence(nodeIds: readonly NodeId[]): Promise<Map<NodeId, number>>;
  /** Every node with a live session somewhere (a full resynchronisation). */
  allLivePresence(): Promise<Map<NodeId, number>>;
  nodesByIds(ids: readonly NodeId[]): Promise<Map<NodeId, Node>>;
  usersByIds(ids: readonly UserId[]): Promise<Map<UserId, User>>;
  getKey(name: string): Promise<string | undefined>;
  /** Stores `ciphertext` unless a key of that name exists; returns the stored one. */
  putKeyIfAbsent(name: string, ciphertext: string): Promise<string>;
  /**
   * Stores a sign-in record for `ttlMs` (database clock), replacing one of the same kind and key,
   * and deletes lapsed ones. An outcome is logged, so the instance where its caller waits learns it.
   */
  putSignIn(kind: string, key: string, body: string, ttlMs: number): Promise<void>;
  /** Deletes and returns an unlapsed sign-in record: one caller gets it, whoever else asks. */
  takeSignIn(kind: string, key: string): Promise<string | undefined>;
}

/** An approved or expired login's row stays this long, for a client's late follow-up. */
const PENDING_LINGER_MS = 60_000;

function pendingLoginFromRow(row: Selectable<HaPendingLoginTable>): StoredPendingLogin {
  return { seq: row.seq, id: row.id, registration: row.registration, nodeId: row.node_id as NodeId | null, expiresAt: Number(row.expires_at) };
}

export class SqlHaRepo implements HaRepo {
  readonly #ctx: RepoContext;

  constructor(ctx: RepoContext) {
    this.#ctx = ctx;
  }

  async readLog(after: number, limit: number): Promise<ChangeLogEntry[]> {
    const rows = await this.#ctx.db.selectFrom('ha_change_log').selectAll()
      .where('position', '>', after).orderBy('position').limit(limit).execute();
    return rows.map((row) => ({ position: Number(row.position), instanceId: row.instance_id, changes: parseChangeRecords(row.changes) }));
  }

  async logBounds(): Promise<{ oldest: number | null; newest: number }> {
    const row = await this.#ctx.db.selectFrom('ha_change_log')
      .select((eb) => [eb.fn.min('position').as('oldest'), eb.fn.max('position').as('newest')])
      .executeTakeFirst();
    const oldest = row?.oldest ?? null;
    const newest = row?.newest ?? null;
    return { oldest: oldest === null ? null : Number(oldest), newest: newest === null ? 0 : Number(newest) };
  }

  async pruneLog(retentionMs: number): Promise<number> {
    const { newest } = await this.logBounds();
    const result = await this.#ctx.db.deleteFrom('ha_change_log')
      .where('created_at', '<', sql<number>`${dbNowMs()} - ${retentionMs}`).where('position', '<', newest).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async renewLease(instanceId: string, advertiseUrl: string, leaseMs: number): Promise<void> {
    await this.#ctx.db.insertInto('ha_instances')
      .values({ instance_id: instanceId, advertise_url: advertiseUrl, started_at: dbNowMs(), lease_expires_at: sql<number>`${dbNowMs()} + ${leaseMs}` })
      .onConflict((oc) => oc.column('instance_id').doUpdateSet({
        advertise_url: advertiseUrl,
        lease_expires_at: sql<number>`${dbNowMs()} + ${leaseMs}`,
      }))
      .execute();
  }

  async instances(): Promise<InstanceLease[]> {
    const rows = await this.#ctx.db.selectFrom('ha_instances')
      .select(['instance_id', 'advertise_url', 'lease_expires_at', sql<boolean>`lease_expires_at > ${dbNowMs()}`.as('alive')])
      .orderBy('instance_id').execute();
    return rows.map((row) => ({ instanceId: row.instance_id, advertiseUrl: row.advertise_url, leaseExpiresAt: Number(row.lease_expires_at), alive: Boolean(row.alive) }));
  }

  async dropInstance(instanceId: string): Promise<NodeId[]> {
    const rows = await this.#ctx.db.deleteFrom('ha_presence').where('instance_id', '=', instanceId).returning('node_id').execute();
    await this.#ctx.db.deleteFrom('ha_instances').where('instance_id', '=', instanceId).execute();
    return this.#recordPresence(rows.map((row) => row.node_id as NodeId));
  }

  async reapExpired(): Promise<NodeId[]> {
    const expired = this.#ctx.db.selectFrom('ha_instances').select('instance_id').where('lease_expires_at', '<=', dbNowMs());
    const rows = await this.#ctx.db.deleteFrom('ha_presence').where('instance_id', 'in', expired).returning('node_id').execute();
    await this.#ctx.db.deleteFrom('ha_instances').where('lease_expires_at', '<=', dbNowMs()).execute();
    return this.#recordPresence(rows.map((row) => row.node_id as NodeId));
  }

  async setPresence(nodeId: NodeId, instanceId: string, capVersion: number): Promise<void> {
    await this.#ctx.db.insertInto('ha_presence')
      .values({ node_id: nodeId, instance_id: instanceId, cap_version: capVersion, since: this.#ctx.nowMs() })
      .onConflict((oc) => oc.columns(['node_id', 'instance_id']).doUpdateSet({ cap_version: capVersion }))
      .execute();
    this.#ctx.changes?.record('presence', nodeId);
  }

  async clearPresence(nodeId: NodeId, instanceId: string): Promise<void> {
    await this.#ctx.db.deleteFrom('ha_presence').where('node_id', '=', nodeId).where('instance_id', '=', instanceId).execute();
    this.#ctx.changes?.record('presence', nodeId);
  }

  async livePresence(nodeIds: readonly NodeId[]): Promise<Map<NodeId, number>> {
    if (nodeIds.length === 0) return new Map();
    return this.#presence(nodeIds);
  }

  allLivePresence(): Promise<Map<NodeId, number>> {
    return this.#presence(null);
  }

  async #presence(nodeIds: readonly NodeId[] | null): Promise<Map<NodeId, number>> {
    let query = this.#ctx.db.selectFrom('ha_presence')
      .innerJoin('ha_instances', 'ha_instances.instance_id', 'ha_presence.instance_id')
      .select(['ha_presence.node_id as node_id', (eb) => eb.fn.max('ha_presence.cap_version').as('cap_version')])
      .where('ha_instances.lease_expires_at', '>', dbNowMs())
      .groupBy('ha_presence.node_id');
    if (nodeIds !== null) query = query.where('ha_presence.node_id', 'in', [...nodeIds]);
    const rows = await query.execute();
    return new Map(rows.map((row) => [row.node_id as NodeId, Number(row.cap_version)]));
  }

  async nodesByIds(ids: readonly NodeId[]): Promise<Map<NodeId, Node>> {
    if (ids.length === 0) return new Map();
    const rows = await this.#ctx.db.selectFrom('nodes').selectAll().where('id', 'in', [...ids]).execute();
    return new Map(rows.map((row) => [row.id as NodeId, nodeFromRow(row)]));
  }

  async usersByIds(ids: readonly UserId[]): Promise<Map<UserId, User>> {
    if (ids.length === 0) return new Map();
    const rows = await this.#ctx.db.selectFrom('users').selectAll().where('id', 'in', [...ids]).execute();
    return new Map(rows.map((row) => [row.id as UserId, userFromRow(row)]));
  }

  async getKey(name: string): Promise<string | undefined> {
    const row = await this.#ctx.db.selectFrom('ha_keys').select('ciphertext').where('name', '=', name).executeTakeFirst();
    return row?.ciphertext;
  }

  async putKeyIfAbsent(name: string, ciphertext: string): Promise<string> {
    await this.#ctx.db.insertInto('ha_keys').values({ name, ciphertext, created_at: this.#ctx.nowMs() })
      .onConflict((oc) => oc.column('name').doNothing()).execute();
    const stored = await this.getKey(name);
    if (stored === undefined) throw new Error(`ha_keys: key "${name}" vanished after insert`);
    return stored;
  }

  async putPendingLogin(id: string, registration: string, expiresAt: number): Promise<void> {
    await this.#ctx.db.deleteFrom('ha_pending_logins').where('expires_at', '<', this.#ctx.nowMs() - PENDING_LINGER_MS).execute();
    const row = await this.#ctx.db.insertInto('ha_pending_logins')
      .values({ id, registration, node_id: null, expires_at: expiresAt })
      .returning('seq').executeTakeFirstOrThrow();
    this.#ctx.changes?.record('pendingLogin', row.seq);
  }

  async pendingLogin(id: string): Promise<StoredPendingLogin | undefined> {
    const row = await this.#ctx.db.selectFrom('ha_pending_logins').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : pendingLoginFromRow(row);
  }

  async pendingLoginsBySeq(seqs: readonly number[]): Promise<StoredPendingLogin[]> {
    if (seqs.length === 0) return [];
    const rows = await this.#ctx.db.selectFrom('ha_pending_logins').selectAll().where('seq', 'in', [...seqs]).orderBy('seq').execute();
    return rows.map(pendingLoginFromRow);
  }

  async approvePendingLogin(id: string, nodeId: NodeId): Promise<void> {
    const row = await this.#ctx.db.updateTable('ha_pending_logins').set({ node_id: nodeId }).where('id', '=', id)
      .returning('seq').executeTakeFirst();
    if (row !== undefined) this.#ctx.changes?.record('pendingLogin', row.seq);
  }

  async putSignIn(kind: string, key: string, body: string, ttlMs: number): Promise<void> {
    await this.#ctx.db.deleteFrom('ha_sign_ins').where('expires_at', '<=', dbNowMs()).execute();
    const expiresAt = sql<number>`${dbNowMs()} + ${ttlMs}`;
    const row = await this.#ctx.db.insertInto('ha_sign_ins')
      .values({ kind, key, body, expires_at: expiresAt })
      .onConflict((oc) => oc.columns(['kind', 'key']).doUpdateSet({ body, expires_at: expiresAt }))
      .returning('seq').executeTakeFirstOrThrow();
    if (kind === 'outcome') this.#ctx.changes?.record('signInOutcome', row.seq);
  }

  async takeSignIn(kind: string, key: string): Promise<string | undefined> {
    const row = await this.#ctx.db.deleteFrom('ha_sign_ins')
      .where('kind', '=', kind).where('key', '=', key).where('expires_at', '>', dbNowMs())
      .returning('body').executeTakeFirst();
    return row?.body;
  }

  #recordPresence(ids: NodeId[]): NodeId[] {
    const unique = [...new Set(ids)];
    for (const id of unique) this.#ctx.changes?.record('presence', id);
    return unique;
  }
}

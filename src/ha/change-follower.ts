// Applies the change log to this instance's memory (docs/ha.md). Woken by NOTIFY and by a poll
// (which heals a missed notification or a lost LISTEN connection), it reads the rows after the
// last applied position, in order, re-reads the rows they name and hands them to the state,
// which publishes the same events a local write does: policy index, mapper and sessions have
// one code path for local and remote changes. Rows this instance wrote are applied too: applying
// is a diff against memory, so a write already applied at commit publishes nothing, and a write
// whose COMMIT succeeded while its acknowledgement was lost (the connection died at that moment)
// still reaches this instance's memory.
import pg from 'pg';
import type { Logger } from '../log/index.js';
import type { NodeId, TailnetId, UserId } from '../model/index.js';
import type { ServerState } from '../state/index.js';
import { CHANGE_CHANNEL, type ChangeLogEntry, type Store } from '../store/index.js';

const BATCH = 500;

export interface ChangeFollowerOptions {
  readonly store: Store;
  readonly state: ServerState;
  readonly instanceId: string;
  /** The position the loaded state already reflects (read before the state was loaded). */
  readonly startPosition: number;
  /** True when this instance holds the node's map session: its live fields and presence win. */
  readonly holdsSession: (tailnetId: TailnetId, nodeId: NodeId) => boolean;
  /** A new, unconnected connection for LISTEN. */
  readonly connect: () => pg.Client;
  readonly pollIntervalMs: number;
  readonly logger: Logger;
  /**
   * Told, after a batch is applied, which other entities it named: records that feed no state
   * in memory but wake something waiting on this instance (a re-authentication's outcome).
   */
  readonly notify?: (entities: ReadonlySet<string>) => void;
}

export class ChangeFollower {
  readonly #options: ChangeFollowerOptions;
  #position: number;
  #draining: Promise<void> | null = null;
  #again = false;
  #listener: pg.Client | null = null;
  #pollTimer: NodeJS.Timeout | null = null;
  #closed = false;
  #paused = false;
  /** Counters for tests and metrics. */
  readonly stats = { entriesApplied: 0, resyncs: 0, listenReconnects: 0 };

  constructor(options: ChangeFollowerOptions) {
    this.#options = options;
    this.#position = options.startPosition;
  }

  get position(): number {
    return this.#position;
  }

  start(): void {
    this.#pollTimer = setInterval(() => void this.catchUp().catch(() => undefined), this.#options.pollIntervalMs);
    this.#pollTimer.unref();
    void this.#listen();
  }

  /**
   * Stops applying the log until resume() (an instance that falls behind: tests of the
   * reload, and an operator's diagnosis). Notifications and polls are ignored meanwhile.
   */
  pause(): void {
    this.#paused = true;
  }

  resume(): Promise<void> {
    this.#paused = false;
    return this.catchUp();
  }

  /** Applies everything committed so far; concurrent calls share one pass (plus one more). */
  catchUp(): Promise<void> {
    if (this.#paused) return Promise.resolve();
    if (this.#draining !== null) {
      this.#again = true;
      return this.#draining;
    }
    this.#draining = (async () => {
      try {
        do {
          this.#again = false;
          await this.#drain();
        } while (this.#again && !this.#closed);
      } catch (err) {
        this.#options.logger.warn({ err }, 'applying the change log failed; retrying on the next poll');
        throw err;
      } finally {
        this.#draining = null;
      }
    })();
    return this.#draining;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pollTimer !== null) clearInterval(this.#pollTimer);
    const listener = this.#listener;
    this.#listener = null;
    if (listener !== null) await listener.end().catch(() => undefined);
    await this.#draining?.catch(() => undefined);
  }

  async #listen(): Promise<void> {
    if (this.#closed) return;
    const client = this.#options.connect();
    let lost = false;
    const reconnect = (err: unknown) => {
      if (lost || this.#closed) return;
      lost = true;
      this.#options.logger.warn({ err }, 'change log LISTEN connection lost; reconnecting');
      if (this.#listener === client) this.#listener = null;
      void client.end().catch(() => undefined);
      this.stats.listenReconnects++;
      const retry = setTimeout(() => void this.#listen(), this.#options.pollIntervalMs);
      retry.unref();
    };
    client.on('error', reconnect);
    client.on('end', () => reconnect(new Error('connection ended')));
    client.on('notification', (message) => {
      if (message.channel === CHANGE_CHANNEL) void this.catchUp().catch(() => undefined);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
      if (this.#closed) { await client.end(); return; }
      this.#listener = client;
      // Whatever committed while we were not listening.
      void this.catchUp().catch(() => undefined);
    } catch (err) {
      reconnect(err);
    }
  }

  async #drain(): Promise<void> {
    const { store } = this.#options;
    for (;;) {
      const entries = await store.read.ha.readLog(this.#position, BATCH);
      if (entries.length === 0) return;
      if (entries[0]!.position > this.#position + 1) {
        // Positions skip numbers after a rolled-back append; a gap is a problem only when the
        // rows we missed were pruned, i.e. we are behind the oldest row kept.
        const { oldest } = await store.read.ha.logBounds();
        if (oldest !== null && oldest > this.#position + 1 && this.#position > 0) {
          this.#options.logger.warn({ position: this.#position, oldest }, 'too far behind the change log; reloading from the database');
          await this.resync();
          this.#position = entries.at(-1)!.position;
          continue;
        }
      }
      await this.#apply(entries);
      this.#position = entries.at(-1)!.position;
      this.stats.entriesApplied += entries.length;
    }
  }

  async #apply(entries: readonly ChangeLogEntry[]): Promise<void> {
    const tailnets = new Set<number>();
    const users = new Set<UserId>();
    const nodes = new Set<NodeId>();
    const policies = new Set<TailnetId>();
    const presence = new Set<NodeId>();
    const logins = new Set<number>();
    const others = new Set<string>();
    for (const entry of entries) {
      for (const [entity, id] of entry.changes) {
        if (entity === 'presence') presence.add(id as NodeId);
        else if (entity === 'node') nodes.add(id as NodeId);
        else if (entity === 'user') users.add(id as UserId);
        else if (entity === 'policy') policies.add(id as TailnetId);
        else if (entity === 'tailnet') tailnets.add(id);
        else if (entity === 'pendingLogin') logins.add(id);
        else others.add(entity);
      }
    }
    await this.#applyRows([...tailnets] as TailnetId[], [...users], [...nodes], [...policies], [...presence]);
    // After the nodes: an approved login wakes its client with the node it became.
    if (logins.size > 0) {
      for (const row of await this.#options.store.read.ha.pendingLoginsBySeq([...logins])) this.#options.state.pending.applyStored(row);
    }
    if (others.size > 0) this.#options.notify?.(others);
  }

  /**
   * Phases follow the references: tailnets appear before their users, users before their nodes,
   * nodes go before their users, and a tailnet's removal comes last.
   */
  async #applyRows(tailnetIds: TailnetId[], userIds: UserId[], nodeIds: NodeId[], policyTailnets: TailnetId[], presenceIds: NodeId[]): Promise<void> {
    const { store, state } = this.#options;
    const tailnetRows = new Map(await Promise.all(tailnetIds.map(async (id) => [id, await store.read.tailnets.get(id)] as const)));
    for (const [id, row] of tailnetRows) if (row !== undefined) await state.applyStoredTailnet(id, row);

    const userRows = await store.read.ha.usersByIds(userIds);
    for (const [id, row] of userRows) await state.tailnet(row.tailnetId)?.applyStoredUser(id, row);

    const nodeRows = await store.read.ha.nodesByIds(nodeIds);
    for (const id of nodeIds) {
      const row = nodeRows.get(id);
      const tailnet = row !== undefined ? state.tailnet(row.tailnetId) : state.tailnetOfNode(id);
      if (tailnet === undefined) continue;
      await tailnet.applyStoredNode(id, row, { keepLive: this.#options.holdsSession(tailnet.id, id) });
    }

    for (const id of userIds) if (!userRows.has(id)) await state.tailnetOfUser(id)?.applyStoredUser(id, undefined);

    if (!state.policyFromFile) {
      for (const id of policyTailnets) {
        const tailnet = state.tailnet(id);
        if (tailnet === undefined) continue;
        await tailnet.applyStoredPolicy((await store.read.policies.latest(id))?.text ?? null);
      }
    }

    if (presenceIds.length > 0) {
      const live = await store.read.ha.livePresence(presenceIds);
      for (const id of presenceIds) this.#applyPresence(id, live.get(id));
    }

    for (const [id, row] of tailnetRows) if (row === undefined) await state.applyStoredTailnet(id, undefined);
  }

  #applyPresence(id: NodeId, liveCapVersion: number | undefined): void {
    const tailnet = this.#options.state.tailnetOfNode(id);
    if (tailnet === undefined) return;
    // A session held here (or in its offline grace period here) is this instance's own truth.
    if (this.#options.holdsSession(tailnet.id, id)) return;
    const current = tailnet.presence(id);
    tailnet.applyStoredPresence(id, liveCapVersion === undefined
      ? { online: false, capVersion: current.capVersion }
      : { online: true, capVersion: liveCapVersion });
  }

  /** Reloads everything from the database (after falling behind the pruned log). */
  async resync(): Promise<void> {
    const { store, state } = this.#options;
    this.stats.resyncs++;
    const stored = await store.read.tailnets.list();
    const storedIds = new Set(stored.map((t) => t.id));
    for (const row of stored) await state.applyStoredTailnet(row.id, row);
    const gone = [...state.tailnets()].filter((t) => !storedIds.has(t.id)).map((t) => t.id);
    for (const tailnet of [...state.tailnets()]) {
      const userIds = new Set<UserId>((await store.read.users.list(tailnet.id)).map((u) => u.id));
      for (const user of tailnet.users()) userIds.add(user.id);
      const nodeIds = new Set<NodeId>((await store.read.nodes.list(tailnet.id)).map((n) => n.id));
      for (const node of tailnet.nodes()) nodeIds.add(node.id);
      await this.#applyRows([], [...userIds], [...nodeIds], [tailnet.id], [...nodeIds]);
    }
    for (const id of gone) await state.applyStoredTailnet(id, undefined);
    // After the nodes: an approval made while we were behind wakes its waiting client.
    await state.pending.reloadWaiting();
  }
}

// One instance's membership of an HA deployment (docs/ha.md): its lease (renewed every
// heartbeat), its presence rows, the change-log follower, and the singleton jobs it may hold
// (the lease reaper, log pruning, ephemeral clean-up). Joining happens before the state loads,
// so the follower starts from a position the loaded state already covers.
import pg from 'pg';
import type { HaConfig, PostgresConfig } from '../config/index.js';
import type { Logger } from '../log/index.js';
import type { NodeId, TailnetId } from '../model/index.js';
import type { ServerState } from '../state/index.js';
import { postgresClientConfig, type Store } from '../store/index.js';
import { ChangeFollower } from './change-follower.js';
import { HaErrors, haError } from './errors.js';
import { PresenceLedger } from './presence-ledger.js';
import { SingletonJobs } from './singleton-jobs.js';

export const SINGLETON_JOBS = ['lease-reaper', 'change-log-prune', 'ephemeral-cleanup'] as const;
export type SingletonJob = (typeof SINGLETON_JOBS)[number];

/** Log rows older than this are pruned; an instance away longer reloads instead. */
const LOG_RETENTION_MS = 3_600_000;
const PRUNE_EVERY_MS = 60_000;

export interface HaInstanceOptions {
  readonly store: Store;
  readonly ha: HaConfig;
  readonly postgres: PostgresConfig;
  /** Where the other instances reach this one (ha.advertise_url, or the bound URL). */
  readonly advertiseUrl: string;
  readonly logger: Logger;
  /** How often the log is read without a notification (default 1 s). */
  readonly pollIntervalMs?: number;
}

export class HaInstance {
  readonly instanceId: string;
  readonly presence: PresenceLedger;
  readonly jobs: SingletonJobs;
  /** Counters for tests: how often this instance ran each singleton job with effect. */
  readonly jobRuns = { reaped: 0, pruned: 0 };
  readonly #options: HaInstanceOptions;
  readonly #logger: Logger;
  readonly #startPosition: number;
  #follower: ChangeFollower | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  #advertiseUrl: string;
  // Elapsed times here are monotonic (performance.now): a wall clock set forward or back must
  // neither fake a lapsed lease nor stall the reaper or the log prune. Leases and the log rows'
  // ages are timed by the database's clock, which every instance shares.
  #lastRenewal = 0;
  /** Start of the current run of successful renewals (0 while renewals fail). */
  #connectedSince = 0;
  #lastPrune = -Infinity;
  #closed = false;
  readonly #changeListeners = new Map<string, Array<() => void>>();

  private constructor(options: HaInstanceOptions, startPosition: number) {
    this.#options = options;
    this.instanceId = options.ha.instanceId;
    this.#logger = options.logger.child({ part: 'ha', instance: options.ha.instanceId });
    this.#startPosition = startPosition;
    this.#advertiseUrl = options.advertiseUrl;
    this.presence = new PresenceLedger({ store: options.store, instanceId: this.instanceId, logger: this.#logger });
    const clientConfig = postgresClientConfig(options.postgres);
    this.jobs = new SingletonJobs({ connect: () => new pg.Client(clientConfig), names: SINGLETON_JOBS, logger: this.#logger });
  }

  /**
   * Takes this instance's lease (dropping presence rows a previous run under the same id left)
   * and notes the log position; call before loading the state.
   */
  static async join(options: HaInstanceOptions): Promise<HaInstance> {
    const { store, ha } = options;
    try {
      const { newest } = await store.read.ha.logBounds();
      await store.transaction(async (tx) => {
        await tx.ha.dropInstance(ha.instanceId);
        await tx.ha.renewLease(ha.instanceId, options.advertiseUrl, ha.leaseDurationMs);
      });
      const instance = new HaInstance(options, newest);
      instance.#lastRenewal = performance.now();
      instance.#connectedSince = instance.#lastRenewal;
      return instance;
    } catch (err) {
      throw haError(HaErrors.UNAVAILABLE, `instance "${ha.instanceId}" could not join: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }

  /** The URL the other instances reach this one by, once the listener is bound. */
  setAdvertiseUrl(url: string): void {
    this.#advertiseUrl = url;
  }

  get advertiseUrl(): string {
    return this.#advertiseUrl;
  }

  get follower(): ChangeFollower | null {
    return this.#follower;
  }

  /** Calls `listener` whenever the change log names `entity` (an entity no state applies). */
  onChange(entity: string, listener: () => void): void {
    const listeners = this.#changeListeners.get(entity) ?? [];
    listeners.push(listener);
    this.#changeListeners.set(entity, listeners);
  }

  isLeader(job: SingletonJob): boolean {
    return this.jobs.isLeader(job);
  }

  /** Starts following the log and the heartbeat, once the state is loaded. */
  attach(deps: { state: ServerState; holdsSession: (tailnetId: TailnetId, nodeId: NodeId) => boolean }): void {
    const clientConfig = postgresClientConfig(this.#options.postgres);
    this.#follower = new ChangeFollower({
      store: this.#options.store,
      state: deps.state,
      instanceId: this.instanceId,
      startPosition: this.#startPosition,
      holdsSession: deps.holdsSession,
      connect: () => new pg.Client(clientConfig),
      pollIntervalMs: this.#options.pollIntervalMs ?? 1_000,
      logger: this.#logger,
      notify: (entities) => {
        for (const entity of entities) for (const listener of this.#changeListeners.get(entity) ?? []) listener();
      },
    });
    this.#follower.start();
    this.#heartbeat = setInterval(() => void this.tick(), this.#options.ha.heartbeatIntervalMs);
    this.#heartbeat.unref();
    void this.tick();
  }

  /** One heartbeat: renew the lease, contend for the jobs, run the ones held. */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => { this.#ticking = null; });
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    const { store, ha } = this.#options;
    try {
      await store.transaction((tx) => tx.ha.renewLease(this.instanceId, this.#advertiseUrl, ha.leaseDurationMs));
      // The lease lapsed (PostgreSQL was away): the others may have reaped our rows.
      if (performance.now() - this.#lastRenewal >= ha.leaseDurationMs) {
        this.#logger.warn('the lease lapsed; writing this instance\'s sessions again');
        this.presence.reassertAll();
      }
      this.#lastRenewal = performance.now();
      if (this.#connectedSince === 0) this.#connectedSince = this.#lastRenewal;
    } catch (err) {
      this.#connectedSince = 0;
      this.#logger.warn({ err }, 'renewing the lease failed');
    }
    await this.jobs.tick();
    try {
      // After an outage of our own, the others were probably cut off too: give them one lease
      // period to renew before calling them dead, so a database restart takes no node offline.
      const settled = this.#connectedSince !== 0 && performance.now() - this.#connectedSince >= ha.leaseDurationMs;
      if (this.jobs.isLeader('lease-reaper') && settled) {
        const reaped = await store.transaction((tx) => tx.ha.reapExpired());
        if (reaped.length > 0) {
          this.jobRuns.reaped += reaped.length;
          this.#logger.info({ nodes: reaped.length }, 'took presence away from instances whose lease expired');
        }
      }
      if (this.jobs.isLeader('change-log-prune') && performance.now() - this.#lastPrune >= PRUNE_EVERY_MS) {
        this.#lastPrune = performance.now();
        this.jobRuns.pruned += await store.read.ha.pruneLog(LOG_RETENTION_MS);
      }
    } catch (err) {
      this.#logger.warn({ err }, 'a singleton job failed; retrying on the next heartbeat');
    }
  }

  /** Leaves in order: our sessions go offline everywhere at once instead of after the lease. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    await this.#ticking?.catch(() => undefined);
    await this.presence.close();
    await this.#follower?.close();
    await this.jobs.close();
    await this.#options.store.transaction((tx) => tx.ha.dropInstance(this.instanceId))
      .catch((err: unknown) => this.#logger.warn({ err }, 'leaving the instance set failed; the lease will expire'));
  }
}

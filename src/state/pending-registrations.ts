// Interactive logins waiting for an admin. A client without an auth key gets an AuthURL that
// names a registration id; its follow-up request waits here until `headway nodes register
// --key <id>` approves it (or the entry expires). With one instance, memory only: after a
// restart the client simply asks again and gets a new URL. With high availability (docs/ha.md)
// each login is also a row in ha_pending_logins, written through the change log: every instance
// learns it (so the AuthURL page, the admin's approval and the client's follow-up may each reach
// a different instance), and the approval wakes the client's wait wherever it is held.
import { randomBytes } from 'node:crypto';
import type { DiscoPublicKey, MachinePublicKey, NodePublicKey } from '../key/index.js';
import type { Node, NodeId } from '../model/index.js';
import type { StoredPendingLogin, Store } from '../store/index.js';
import type * as tailcfg from '../tailcfg/index.js';

export interface PendingRegistration {
  /** Random id, shown in the AuthURL and typed by the admin. */
  readonly id: string;
  readonly machineKey: MachinePublicKey;
  readonly nodeKey: NodePublicKey;
  readonly oldNodeKey: NodePublicKey | null;
  readonly discoKey: DiscoPublicKey | null;
  readonly hostinfo: tailcfg.Hostinfo;
  readonly ephemeral: boolean;
  /** Expiry the client asked for, if any. */
  readonly requestedExpiry: Date | null;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

export type PendingOutcome = { kind: 'approved'; node: Node } | { kind: 'expired' };

interface Entry {
  registration: PendingRegistration;
  outcome: PendingOutcome | null;
  waiters: Set<(outcome: PendingOutcome) => void>;
  timer: NodeJS.Timeout;
}

export const PENDING_TTL_MS = 15 * 60_000;

/** The database behind the logins when several instances share them. */
export interface SharedPendingLogins {
  readonly store: Store;
  /** The approved node, once this instance's state has it. */
  readonly nodeOf: (id: NodeId) => Node | undefined;
}

export class PendingRegistrations {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #shared: SharedPendingLogins | null;

  constructor(options: { ttlMs?: number; shared?: SharedPendingLogins } = {}) {
    this.#ttlMs = options.ttlMs ?? PENDING_TTL_MS;
    this.#shared = options.shared ?? null;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Opens a login; shared, it is stored (and logged) before the AuthURL can be handed out. */
  async create(input: Omit<PendingRegistration, 'id' | 'createdAt' | 'expiresAt'>): Promise<PendingRegistration> {
    const now = Date.now();
    const registration: PendingRegistration = {
      ...input,
      id: randomBytes(18).toString('base64url'),
      createdAt: new Date(now),
      expiresAt: new Date(now + this.#ttlMs),
    };
    if (this.#shared !== null) {
      const text = serialiseRegistration(registration);
      await this.#shared.store.transaction((tx) => tx.ha.putPendingLogin(registration.id, text, registration.expiresAt.getTime()));
    }
    this.#add(registration);
    return registration;
  }

  #add(registration: PendingRegistration): Entry {
    const existing = this.#entries.get(registration.id);
    if (existing !== undefined) return existing;
    const timer = setTimeout(() => this.#settle(registration.id, { kind: 'expired' }, true), Math.max(0, registration.expiresAt.getTime() - Date.now()));
    timer.unref();
    const entry: Entry = { registration, outcome: null, waiters: new Set(), timer };
    this.#entries.set(registration.id, entry);
    return entry;
  }

  /**
   * Like get, but when shared and not yet in memory (the change log has not reached this
   * instance yet) reads the database.
   */
  async lookup(id: string): Promise<PendingRegistration | undefined> {
    if (this.#shared === null || this.#entries.has(id)) return this.get(id);
    const row = await this.#shared.store.read.ha.pendingLogin(id);
    if (row !== undefined) this.applyStored(row);
    return this.get(id);
  }

  /**
   * A login row another instance (or this one) committed, from the change log: learn it, and
   * wake the waiters once it is approved and its node is in this instance's state.
   */
  applyStored(row: StoredPendingLogin): void {
    if (this.#shared === null || row.expiresAt <= Date.now()) return;
    const registration = parseRegistration(row.id, row.registration, row.expiresAt);
    if (registration === null) return;
    const entry = this.#add(registration);
    if (row.nodeId === null || entry.outcome !== null) return;
    const node = this.#shared.nodeOf(row.nodeId);
    if (node !== undefined) this.#settle(row.id, { kind: 'approved', node }, false);
  }

  /**
   * Re-reads every login still waiting here (after this instance fell behind the pruned change
   * log, an approval made meanwhile reached no follower).
   */
  async reloadWaiting(): Promise<void> {
    if (this.#shared === null) return;
    const waiting = [...this.#entries.values()].filter((entry) => entry.outcome === null).map((entry) => entry.registration.id);
    for (const id of waiting) {
      const row = await this.#shared.store.read.ha.pendingLogin(id);
      if (row !== undefined) this.applyStored(row);
    }
  }

  get(id: string): PendingRegistration | undefined {
    const entry = this.#entries.get(id);
    return entry && entry.outcome === null ? entry.registration : undefined;
  }

  /** The newest open registration of a node key, so a client's retry reuses its URL. */
  findByNodeKey(nodeKey: NodePublicKey): PendingRegistration | undefined {
    let found: PendingRegistration | undefined;
    for (const entry of this.#entries.values()) {
      if (entry.outcome === null && entry.registration.nodeKey === nodeKey) found = entry.registration;
    }
    return found;
  }

  /**
   * Waits for the registration's outcome; resolves `expired` for an unknown id. The signal
   * (the client's cancelled HTTP/2 stream) stops the wait without touching the entry.
   */
  wait(id: string, signal?: AbortSignal): Promise<PendingOutcome | 'aborted'> {
    const entry = this.#entries.get(id);
    if (entry === undefined) return Promise.resolve({ kind: 'expired' });
    if (entry.outcome !== null) return Promise.resolve(entry.outcome);
    return new Promise((resolve) => {
      const onAbort = () => {
        entry.waiters.delete(done);
        resolve('aborted');
      };
      const done = (outcome: PendingOutcome) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      if (signal?.aborted) return resolve('aborted');
      signal?.addEventListener('abort', onAbort, { once: true });
      entry.waiters.add(done);
    });
  }

  /**
   * Resolves every waiter with the approved node; the entry lingers briefly for late followups.
   * Shared, the node's registration marked the row approved in its own transaction
   * (`completesLogin`), which wakes a wait held by another instance through the change log.
   */
  approve(id: string, node: Node): void {
    this.#settle(id, { kind: 'approved', node }, false);
  }

  /** Drops everything (server shutdown); waiters see `expired`. */
  clear(): void {
    for (const id of [...this.#entries.keys()]) this.#settle(id, { kind: 'expired' }, true);
  }

  #settle(id: string, outcome: PendingOutcome, remove: boolean): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    entry.outcome = outcome;
    for (const waiter of entry.waiters) waiter(outcome);
    entry.waiters.clear();
    if (remove) {
      this.#entries.delete(id);
    } else {
      // A client may re-send its followup just after approval; answer it from the outcome.
      const linger = setTimeout(() => this.#entries.delete(id), 60_000);
      linger.unref();
    }
  }
}

function serialiseRegistration(r: PendingRegistration): string {
  return JSON.stringify({
    machineKey: r.machineKey, nodeKey: r.nodeKey, oldNodeKey: r.oldNodeKey, discoKey: r.discoKey, hostinfo: r.hostinfo,
    ephemeral: r.ephemeral, requestedExpiry: r.requestedExpiry?.getTime() ?? null, createdAt: r.createdAt.getTime(),
  });
}

/** A stored login; null (ignored) when the row is not what serialiseRegistration wrote. */
function parseRegistration(id: string, text: string, expiresAt: number): PendingRegistration | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const optionalString = (x: unknown): x is string | null => x === null || typeof x === 'string';
  if (typeof v['machineKey'] !== 'string' || typeof v['nodeKey'] !== 'string' || !optionalString(v['oldNodeKey']) || !optionalString(v['discoKey'])) return null;
  if (typeof v['hostinfo'] !== 'object' || v['hostinfo'] === null || typeof v['ephemeral'] !== 'boolean' || typeof v['createdAt'] !== 'number') return null;
  const requested = v['requestedExpiry'];
  if (requested !== null && typeof requested !== 'number') return null;
  return {
    id,
    machineKey: v['machineKey'] as MachinePublicKey,
    nodeKey: v['nodeKey'] as NodePublicKey,
    oldNodeKey: v['oldNodeKey'] as NodePublicKey | null,
    discoKey: v['discoKey'] as DiscoPublicKey | null,
    hostinfo: v['hostinfo'] as tailcfg.Hostinfo,
    ephemeral: v['ephemeral'],
    requestedExpiry: requested === null ? null : new Date(requested),
    createdAt: new Date(v['createdAt']),
    expiresAt: new Date(expiresAt),
  };
}

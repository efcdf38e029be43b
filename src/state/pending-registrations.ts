// Interactive logins waiting for an admin. A client without an auth key gets an AuthURL that
// names a registration id; its follow-up request waits here until `headway nodes register
// --key <id>` approves it (or the entry expires). Memory only: after a restart the client simply
// asks again and gets a new URL.
import { randomBytes } from 'node:crypto';
import type { DiscoPublicKey, MachinePublicKey, NodePublicKey } from '../key/index.js';
import type { Node } from '../model/index.js';
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

export class PendingRegistrations {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;

  constructor(options: { ttlMs?: number } = {}) {
    this.#ttlMs = options.ttlMs ?? PENDING_TTL_MS;
  }

  get size(): number {
    return this.#entries.size;
  }

  create(input: Omit<PendingRegistration, 'id' | 'createdAt' | 'expiresAt'>): PendingRegistration {
    const now = Date.now();
    const registration: PendingRegistration = {
      ...input,
      id: randomBytes(18).toString('base64url'),
      createdAt: new Date(now),
      expiresAt: new Date(now + this.#ttlMs),
    };
    const timer = setTimeout(() => this.#settle(registration.id, { kind: 'expired' }, true), this.#ttlMs);
    timer.unref();
    this.#entries.set(registration.id, { registration, outcome: null, waiters: new Set(), timer });
    return registration;
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

  /** Resolves every waiter with the approved node; the entry lingers briefly for late followups. */
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

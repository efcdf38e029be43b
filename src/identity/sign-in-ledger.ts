// Where sign-ins in flight are kept between the link, the redirect to the provider and its
// callback: in this process's memory (one instance), or with high availability in the database
// (src/ha/shared-sign-ins.ts), so that the callback, which comes back through the load balancer,
// may reach any instance. The ledger stores text the sign-in service writes and reads; every
// record is single use (taken once) and lapses after its time to live.

/**
 * A sign-in link not yet opened (by its id), a sign-in at the provider (by its OIDC state), or the
 * outcome of a re-authentication completed where its waiting caller is not (by the caller's id).
 */
export type SignInRecordKind = 'handle' | 'flight' | 'outcome';

export interface SignInLedger {
  /** Keeps `body` under (kind, key) for `ttlMs`; drops records that have lapsed. */
  put(kind: SignInRecordKind, key: string, body: string, ttlMs: number): Promise<void>;
  /** Removes and returns the record; undefined when unknown, already taken or lapsed. */
  take(kind: SignInRecordKind, key: string): Promise<string | undefined>;
  /**
   * Calls `listener` whenever another instance may have put an outcome, so the waiting caller
   * can take it. A ledger of one process never calls it: its outcomes are settled in memory.
   */
  onOutcome(listener: () => void): void;
}

/** The ledger of a single instance: a map, pruned at every put. */
export class MemorySignInLedger implements SignInLedger {
  readonly #records = new Map<string, { readonly body: string; readonly expiresAt: number }>();

  put(kind: SignInRecordKind, key: string, body: string, ttlMs: number): Promise<void> {
    const now = Date.now();
    for (const [id, record] of this.#records) if (record.expiresAt <= now) this.#records.delete(id);
    this.#records.set(`${kind}:${key}`, { body, expiresAt: now + ttlMs });
    return Promise.resolve();
  }

  take(kind: SignInRecordKind, key: string): Promise<string | undefined> {
    const id = `${kind}:${key}`;
    const record = this.#records.get(id);
    this.#records.delete(id);
    return Promise.resolve(record !== undefined && record.expiresAt > Date.now() ? record.body : undefined);
  }

  onOutcome(): void {
    // Nothing is put by anyone else.
  }
}

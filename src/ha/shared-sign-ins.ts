// Sign-ins in flight shared by every instance (docs/ha.md): the identity part's ledger kept in
// ha_sign_ins, so a sign-in link opened on one instance, and the provider's callback received by
// another (both come through the load balancer), complete it. Bodies hold the PKCE verifier and
// nonce, so they are sealed under a key derived from ha.secret, and rows are found by a hash of
// the link id or state: reading the table yields neither a usable link nor a verifier. A
// re-authentication's outcome is logged, and the instance where its caller waits takes it when
// its change follower sees the entry.
import { createHash } from 'node:crypto';
import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';
import type { HaInstance } from './ha-instance.js';
import { encryptionKey, openText, sealText } from './shared-keys.js';

/** The change-log entity of an outcome row (src/store/ha-repo.ts records it). */
const OUTCOME_ENTITY = 'signInOutcome';

/** Structurally the identity part's SignInLedger (ha does not import identity). */
export class SharedSignInLedger {
  readonly #store: Store;
  readonly #key: Buffer;
  readonly #logger: Logger;
  readonly #listeners: Array<() => void> = [];

  constructor(deps: { store: Store; secret: string; ha: HaInstance; logger: Logger }) {
    this.#store = deps.store;
    this.#key = encryptionKey(deps.secret);
    this.#logger = deps.logger;
    deps.ha.onChange(OUTCOME_ENTITY, () => {
      for (const listener of this.#listeners) listener();
    });
  }

  async put(kind: 'handle' | 'flight' | 'outcome', key: string, body: string, ttlMs: number): Promise<void> {
    const sealed = sealText(this.#key, body);
    await this.#store.transaction((tx) => tx.ha.putSignIn(kind, digest(key), sealed, ttlMs));
  }

  async take(kind: 'handle' | 'flight' | 'outcome', key: string): Promise<string | undefined> {
    const sealed = await this.#store.read.ha.takeSignIn(kind, digest(key));
    if (sealed === undefined) return undefined;
    const body = openText(this.#key, sealed);
    // Another instance with another secret is refused at start; a damaged row is a stale link.
    if (body === undefined) this.#logger.warn({ kind }, 'a shared sign-in record does not open with this instance\'s ha.secret; refused');
    return body;
  }

  onOutcome(listener: () => void): void {
    this.#listeners.push(listener);
  }
}

function digest(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

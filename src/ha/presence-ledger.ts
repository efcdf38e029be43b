// This instance's share of cross-instance presence (docs/ha.md): a row in ha_presence per map
// session it holds, written in batches through the change log so every instance re-reads the
// node's presence. Failed writes (PostgreSQL away) are kept and retried; after this instance's
// lease lapsed (the others may have reaped its rows) every session is written again.
import type { Logger } from '../log/index.js';
import type { NodeId } from '../model/index.js';
import type { Store } from '../store/index.js';

type PendingOp = { readonly kind: 'set'; readonly capVersion: number } | { readonly kind: 'clear' };

export class PresenceLedger {
  readonly #store: Store;
  readonly #instanceId: string;
  readonly #logger: Logger;
  readonly #batchMs: number;
  /** Sessions held here, with their capability version: the rows this instance should have. */
  readonly #local = new Map<NodeId, number>();
  #pending = new Map<NodeId, PendingOp>();
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: { store: Store; instanceId: string; logger: Logger; batchMs?: number }) {
    this.#store = options.store;
    this.#instanceId = options.instanceId;
    this.#logger = options.logger;
    this.#batchMs = options.batchMs ?? 20;
  }

  get localSessions(): number {
    return this.#local.size;
  }

  started(nodeId: NodeId, capVersion: number): void {
    this.#local.set(nodeId, capVersion);
    this.#queue(nodeId, { kind: 'set', capVersion });
  }

  stopped(nodeId: NodeId): void {
    this.#local.delete(nodeId);
    this.#queue(nodeId, { kind: 'clear' });
  }

  /** Writes every local session again (the lease lapsed while PostgreSQL was away). */
  reassertAll(): void {
    for (const [nodeId, capVersion] of this.#local) this.#queue(nodeId, { kind: 'set', capVersion });
  }

  /** Writes what is queued now. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write());
    return this.#flushing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#flushing.catch(() => undefined);
  }

  #queue(nodeId: NodeId, op: PendingOp): void {
    if (this.#closed) return;
    this.#pending.set(nodeId, op);
    this.#schedule(this.#batchMs);
  }

  #schedule(delayMs: number): void {
    if (this.#timer !== null || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, delayMs);
    this.#timer.unref();
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    try {
      await this.#store.transaction(async (tx) => {
        for (const [nodeId, op] of batch) {
          if (op.kind === 'set') await tx.ha.setPresence(nodeId, this.#instanceId, op.capVersion);
          else await tx.ha.clearPresence(nodeId, this.#instanceId);
        }
      });
    } catch (err) {
      // Keep what was not superseded meanwhile and try again; a node whose row is missing
      // (deleted meanwhile) fails the batch, so drop sets for nodes that no longer exist.
      this.#logger.warn({ err, sessions: batch.size }, 'writing presence failed; retrying');
      const existing = await this.#store.read.ha.nodesByIds([...batch.keys()]).catch(() => null);
      for (const [nodeId, op] of batch) {
        if (existing !== null && !existing.has(nodeId)) continue;
        if (!this.#pending.has(nodeId)) this.#pending.set(nodeId, op);
      }
      this.#schedule(1_000);
    }
  }
}

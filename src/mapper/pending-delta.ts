// What one session still owes its client, as a bounded summary rather than a queue: per peer
// the strongest pending change (removed > full > patch fields), plus flags for the netmap-wide
// parts. Content is read from the current state when the message is built, so merging two
// changes is just merging their marks, and a slow client's backlog never grows beyond one mark
// per peer. Past `maxPeers` marks the session falls back to a full resync.
import type { NodeId } from '../model/index.js';
import type { PatchFields } from './tail-node.js';

export const MARK_FULL = -1;
export const MARK_REMOVED = -2;
const FULL = MARK_FULL;
const REMOVED = MARK_REMOVED;

export type PeerMark = { kind: 'patch'; fields: PatchFields } | { kind: 'full' } | { kind: 'removed' };

export class PendingDelta {
  readonly #peers = new Map<NodeId, number>();
  readonly #maxPeers: number;
  selfChanged = false;
  filterChanged = false;
  sshChanged = false;
  dnsChanged = false;
  derpMapChanged = false;
  /** Everything must be sent again as a complete netmap. */
  resync = false;

  constructor(maxPeers: number) {
    this.#maxPeers = maxPeers;
  }

  get empty(): boolean {
    return !this.resync && this.#peers.size === 0 && !this.selfChanged && !this.filterChanged && !this.sshChanged && !this.dnsChanged && !this.derpMapChanged;
  }

  get peerCount(): number {
    return this.#peers.size;
  }

  markPatch(peer: NodeId, fields: PatchFields): void {
    if (this.resync) return;
    const current = this.#peers.get(peer);
    if (current === undefined) this.#set(peer, fields);
    else if (current > 0) this.#peers.set(peer, current | fields);
  }

  markFull(peer: NodeId): void {
    if (this.resync) return;
    this.#set(peer, FULL);
  }

  markRemoved(peer: NodeId): void {
    if (this.resync) return;
    this.#set(peer, REMOVED);
  }

  markResync(): void {
    this.resync = true;
    this.#peers.clear();
  }

  /** The raw marks: a positive number is patch fields, FULL and REMOVED are the others. */
  get rawPeers(): ReadonlyMap<NodeId, number> {
    return this.#peers;
  }

  /** Whether the only pending things are peer marks (no netmap-wide part). */
  get onlyPeers(): boolean {
    return !this.resync && !this.selfChanged && !this.filterChanged && !this.sshChanged && !this.dnsChanged && !this.derpMapChanged;
  }

  *peers(): IterableIterator<[NodeId, PeerMark]> {
    for (const [peer, value] of this.#peers) {
      if (value === FULL) yield [peer, { kind: 'full' }];
      else if (value === REMOVED) yield [peer, { kind: 'removed' }];
      else yield [peer, { kind: 'patch', fields: value }];
    }
  }

  clear(): void {
    if (this.#peers.size > 0) this.#peers.clear();
    this.selfChanged = this.filterChanged = this.sshChanged = this.dnsChanged = this.derpMapChanged = this.resync = false;
  }

  #set(peer: NodeId, value: number): void {
    this.#peers.set(peer, value);
    if (this.#peers.size > this.#maxPeers) this.markResync();
  }
}

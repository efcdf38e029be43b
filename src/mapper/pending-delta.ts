// What one session still owes its client, as a bounded summary rather than a queue: per peer
// the strongest pending change (removed > full > patch fields), plus flags for the netmap-wide
// parts. Content is read from the current state when the message is built, so merging two
// changes is just merging their marks, and a slow client's backlog never grows beyond one mark
// per peer. Past `maxPeers` marks the session falls back to a full resync.
//
// Most flushes carry one peer's mark to thousands of sessions at once, so a single mark lives
// in two fields and the map is used only from the second peer on: clearing a Map allocates a
// fresh table, which for a full mesh of 10,000 was a quarter of an endpoint change's cost.
//
// A peer coming online or going offline marks every one of its viewers, and in a reconnect
// storm every arrival does: N² marks spread over N sessions' maps, a cache miss each. Such a
// mark only ORs the Online bit into what is there (a full or removed mark already covers it),
// so the order of marks does not matter: it is appended to a plain list and merged into the
// map when the session reads its marks, one session at a time.
import type { NodeId } from '../model/index.js';
import { PatchField, type PatchFields } from './tail-node.js';

export const MARK_FULL = -1;
export const MARK_REMOVED = -2;
const FULL = MARK_FULL;
const REMOVED = MARK_REMOVED;
const NO_PEER = -1;

export type PeerMark = { kind: 'patch'; fields: PatchFields } | { kind: 'full' } | { kind: 'removed' };

export interface UnmergedPresence {
  readonly online: readonly NodeId[];
  /** The one other mark's peer, or null. */
  readonly peer: NodeId | null;
  /** Its patch fields, or 0. */
  readonly mark: number;
}

export class PendingDelta {
  /** The marks while there are two or more (then #onePeer is unused); made on first need. */
  #peers: Map<NodeId, number> | null = null;
  #many = false;
  /** The only mark while there is at most one: NO_PEER when none. */
  #onePeer: NodeId | typeof NO_PEER = NO_PEER;
  #oneValue = 0;
  /** Peers marked Online since the marks were last read, not yet merged (duplicates allowed). */
  #online: NodeId[] | null = null;
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
    return !this.resync && this.#online === null && this.peerCount === 0 && !this.selfChanged && !this.filterChanged && !this.sshChanged && !this.dnsChanged && !this.derpMapChanged;
  }

  get peerCount(): number {
    this.#settle();
    if (this.#many) return this.#peers!.size;
    return this.#onePeer === NO_PEER ? 0 : 1;
  }

  /** With peerCount 1: the peer of the only mark; null otherwise. */
  get onlyPeerId(): NodeId | null {
    this.#settle();
    return this.#many || this.#onePeer === NO_PEER ? null : this.#onePeer;
  }

  /** With peerCount 1: the only raw mark (positive = patch fields, or MARK_FULL, MARK_REMOVED). */
  get onlyPeerMark(): number {
    this.#settle();
    return this.#oneValue;
  }

  markPatch(peer: NodeId, fields: PatchFields): void {
    if (this.resync) return;
    if (fields === PatchField.Online) {
      const online = (this.#online ??= []);
      online.push(peer);
      if (online.length > this.#maxPeers) this.#settle();
      return;
    }
    this.#orInto(peer, fields);
  }

  /** ORs patch fields into the peer's mark; a full or removed mark already covers them. */
  #orInto(peer: NodeId, fields: PatchFields): void {
    const current = this.#get(peer);
    if (current === undefined) this.#set(peer, fields);
    else if (current > 0 && (current | fields) !== current) this.#set(peer, current | fields);
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
    this.#clearPeers();
  }

  /**
   * The marks as they were given, when they are Online marks (in order, repeats kept) and at
   * most one other mark, a patch; null otherwise. Every viewer of a peer gets its marks in the
   * same order, so sessions given the same changes hold equal lists: the mapper compares them
   * instead of merging and serialising each one. The list is never changed once handed out.
   */
  unmergedPresence(): UnmergedPresence | null {
    if (this.#online === null || this.#many || this.resync) return null;
    if (this.#onePeer === NO_PEER) return { online: this.#online, peer: null, mark: 0 };
    if (this.#oneValue <= 0) return null;
    return { online: this.#online, peer: this.#onePeer, mark: this.#oneValue };
  }

  /** Whether the only pending things are peer marks (no netmap-wide part). */
  get onlyPeers(): boolean {
    return !this.resync && !this.selfChanged && !this.filterChanged && !this.sshChanged && !this.dnsChanged && !this.derpMapChanged;
  }

  /**
   * Calls `visit` with each peer and its raw mark (positive = patch fields, or MARK_FULL,
   * MARK_REMOVED). Allocates nothing per mark: a presence storm leaves hundreds of marks in
   * each of thousands of sessions at once.
   */
  forEachMark(visit: (peer: NodeId, mark: number) => void): void {
    this.#settle();
    if (this.#many) this.#peers!.forEach((mark, peer) => visit(peer, mark));
    else if (this.#onePeer !== NO_PEER) visit(this.#onePeer, this.#oneValue);
  }

  *peers(): IterableIterator<[NodeId, PeerMark]> {
    this.#settle();
    const marks: Iterable<[NodeId, number]> = this.#many ? this.#peers! : this.#onePeer === NO_PEER ? [] : [[this.#onePeer, this.#oneValue]];
    for (const [peer, value] of marks) {
      if (value === FULL) yield [peer, { kind: 'full' }];
      else if (value === REMOVED) yield [peer, { kind: 'removed' }];
      else yield [peer, { kind: 'patch', fields: value }];
    }
  }

  clear(): void {
    this.#clearPeers();
    this.selfChanged = this.filterChanged = this.sshChanged = this.dnsChanged = this.derpMapChanged = this.resync = false;
  }

  /** Merges the pending Online marks into the per-peer marks. */
  #settle(): void {
    const online = this.#online;
    if (online === null) return;
    this.#online = null;
    for (const peer of online) {
      if (this.resync) return;
      this.#orInto(peer, PatchField.Online);
    }
  }

  #clearPeers(): void {
    this.#online = null;
    if (this.#many) {
      this.#peers!.clear();
      this.#many = false;
    }
    this.#onePeer = NO_PEER;
  }

  #get(peer: NodeId): number | undefined {
    if (this.#many) return this.#peers!.get(peer);
    return this.#onePeer === peer ? this.#oneValue : undefined;
  }

  #set(peer: NodeId, value: number): void {
    if (!this.#many) {
      if (this.#onePeer === NO_PEER || this.#onePeer === peer) {
        this.#onePeer = peer;
        this.#oneValue = value;
        if (this.#maxPeers < 1) this.markResync();
        return;
      }
      this.#peers ??= new Map();
      this.#peers.set(this.#onePeer, this.#oneValue);
      this.#onePeer = NO_PEER;
      this.#many = true;
    }
    this.#peers!.set(peer, value);
    if (this.#peers!.size > this.#maxPeers) this.markResync();
  }
}

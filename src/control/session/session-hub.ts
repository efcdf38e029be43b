// The map sessions of one tailnet. It receives the mapper's per-recipient marks, holds dirty
// sessions until the coalescing window closes (one timer per tailnet, not one per session),
// then flushes them in one cycle so that identical messages are built and compressed once.
// Keep-alives run on a wheel: each tick visits only the sessions due in that slot.
import type { NodeId } from '../../model/index.js';
import type { PeerMark, RecipientSink, TailnetMapper } from '../../mapper/index.js';
import { PatchField } from '../../mapper/index.js';
import { MapSession, type FrameSink, type SessionScheduler } from './map-session.js';

export interface SessionHubOptions {
  /** How long changes gather before a session's message is written. */
  coalesceMs: number;
  /** Keep-alive period; the client's watchdog fires after 120 s without a message. */
  keepAliveMs: number;
  /** Pending peer marks per session before it falls back to a full resync. */
  maxPendingPeers?: number;
  /** A session whose transport stays full this long is closed (the client will reconnect). */
  stalledCloseMs?: number;
  now?: () => number;
}

const WHEEL_TICK_MS = 1_000;

export class SessionHub implements SessionScheduler, RecipientSink {
  readonly mapper: TailnetMapper;
  readonly #byNode = new Map<NodeId, Set<MapSession>>();
  readonly #dirty = new Set<MapSession>();
  readonly #wheel: Array<Set<MapSession>>;
  readonly #slotOf = new Map<MapSession, number>();
  readonly #options: Required<SessionHubOptions>;
  #flushTimer: NodeJS.Timeout | null = null;
  #wheelTimer: NodeJS.Timeout | null = null;
  #tick = 0;
  #count = 0;

  constructor(mapper: TailnetMapper, options: SessionHubOptions) {
    this.mapper = mapper;
    this.#options = {
      maxPendingPeers: 4096,
      stalledCloseMs: Math.max(2 * options.keepAliveMs, 10_000),
      now: Date.now,
      ...options,
    };
    const slots = Math.max(1, Math.ceil(this.#options.keepAliveMs / WHEEL_TICK_MS));
    this.#wheel = Array.from({ length: slots }, () => new Set<MapSession>());
  }

  get sessionCount(): number {
    return this.#count;
  }

  now(): number {
    return this.#options.now();
  }

  /** Opens a session for `nodeId` and sends its complete netmap. */
  open(nodeId: NodeId, capVersion: number, sink: FrameSink): MapSession {
    const session = this.attach(nodeId, capVersion, sink);
    session.start();
    return session;
  }

  /**
   * Registers a session whose client already holds its netmap, without sending one: the engine
   * benchmark attaches tens of thousands of sessions this way to measure deltas alone.
   */
  attach(nodeId: NodeId, capVersion: number, sink: FrameSink): MapSession {
    const session = new MapSession(this, nodeId, capVersion, sink, { maxPendingPeers: this.#options.maxPendingPeers });
    let set = this.#byNode.get(nodeId);
    if (set === undefined) this.#byNode.set(nodeId, (set = new Set()));
    set.add(session);
    this.#count++;
    // Spread sessions over the wheel so keep-alives do not arrive in bursts.
    const slot = (this.#tick + 1 + (session.id % this.#wheel.length)) % this.#wheel.length;
    this.#wheel[slot]!.add(session);
    this.#slotOf.set(session, slot);
    this.#startWheel();
    return session;
  }

  /** Forgets a session (its stream ended); does not write anything. */
  remove(session: MapSession): void {
    const set = this.#byNode.get(session.nodeId);
    if (set === undefined || !set.delete(session)) return;
    if (set.size === 0) this.#byNode.delete(session.nodeId);
    this.#dirty.delete(session);
    const slot = this.#slotOf.get(session);
    if (slot !== undefined) this.#wheel[slot]!.delete(session);
    this.#slotOf.delete(session);
    this.#count--;
    if (this.#count === 0) this.#stopWheel();
  }

  sessionsOf(nodeId: NodeId): ReadonlySet<MapSession> | undefined {
    return this.#byNode.get(nodeId);
  }

  hasSession(nodeId: NodeId): boolean {
    return this.#byNode.has(nodeId);
  }

  /** Ends every session of a node (it was deleted or logged out). */
  closeNode(nodeId: NodeId): void {
    const set = this.#byNode.get(nodeId);
    if (set === undefined) return;
    for (const session of [...set]) {
      session.close();
      this.remove(session);
    }
  }

  closeAll(): void {
    for (const nodeId of [...this.#byNode.keys()]) this.closeNode(nodeId);
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    this.#stopWheel();
  }

  // --- RecipientSink: marks from the mapper's change router ----------------------------------

  markPeer(recipient: NodeId, peer: NodeId, mark: PeerMark): void {
    const set = this.#byNode.get(recipient);
    if (set === undefined) return;
    for (const session of set) {
      if (mark.kind === 'removed') session.pending.markRemoved(peer);
      else if (mark.kind === 'full') session.pending.markFull(peer);
      else session.pending.markPatch(peer, mark.fields);
      this.schedule(session);
    }
  }

  markSelf(recipient: NodeId, part: 'self' | 'filter' | 'ssh' | 'dns' | 'derpMap' | 'resync'): void {
    const set = this.#byNode.get(recipient);
    if (set === undefined) return;
    for (const session of set) {
      const pending = session.pending;
      if (part === 'self') pending.selfChanged = true;
      else if (part === 'filter') pending.filterChanged = true;
      else if (part === 'ssh') pending.sshChanged = true;
      else if (part === 'dns') pending.dnsChanged = true;
      else if (part === 'derpMap') pending.derpMapChanged = true;
      else pending.markResync();
      this.schedule(session);
    }
  }

  forgetUserProfile(user: number): void {
    for (const set of this.#byNode.values()) for (const session of set) session.memory.sentUsers.delete(user);
  }

  /** Nodes that hold at least one session. */
  connectedNodes(): IterableIterator<NodeId> {
    return this.#byNode.keys();
  }

  // --- scheduling ----------------------------------------------------------------------------

  schedule(session: MapSession): void {
    this.#dirty.add(session);
    if (this.#flushTimer === null) {
      this.#flushTimer = setTimeout(() => this.flushNow(), this.#options.coalesceMs);
    }
  }

  /** Flushes every dirty session now, in one cycle (frames shared across recipients). */
  flushNow(): void {
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#dirty.size === 0) return;
    this.mapper.beginCycle();
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    for (const session of dirty) session.flush();
    this.mapper.beginCycle();
  }

  get dirtyCount(): number {
    return this.#dirty.size;
  }

  #startWheel(): void {
    if (this.#wheelTimer !== null) return;
    this.#wheelTimer = setInterval(() => this.#turnWheel(), WHEEL_TICK_MS);
    this.#wheelTimer.unref();
  }

  #stopWheel(): void {
    if (this.#wheelTimer !== null) clearInterval(this.#wheelTimer);
    this.#wheelTimer = null;
  }

  #turnWheel(): void {
    this.#tick = (this.#tick + 1) % this.#wheel.length;
    const now = this.now();
    // A session is visited once per period; it gets a keep-alive unless it wrote in the last
    // half period, so the longest silence is 1.5 periods (75 s at 50 s), inside the 120 s watchdog.
    const due = this.#options.keepAliveMs / 2;
    for (const session of [...this.#wheel[this.#tick]!]) {
      if (session.blockedForMs(now) >= this.#options.stalledCloseMs) {
        session.close();
        this.remove(session);
        continue;
      }
      if (now - session.lastWriteMs >= due) session.keepAlive();
    }
  }
}

export { PatchField };

// The map sessions of one tailnet. It receives the mapper's per-recipient marks, holds dirty
// sessions until the coalescing window closes (one timer per tailnet, not one per session),
// then flushes them in one cycle so that identical messages are built and compressed once.
// Keep-alives run on a wheel: each tick visits only the sessions due in that slot. The
// commonest mark (one peer's patch for a node with one session) is held in the compact
// per-node cells of HeldMarks rather than in the session's objects.
import type { NodeId } from '../../model/index.js';
import type { PeerMark, RecipientSink, SelfPart, TailnetMapper } from '../../mapper/index.js';
import { PatchField } from '../../mapper/index.js';
import { HeldMarks } from './held-marks.js';
import { MapSession, type FrameSink, type SessionScheduler } from './map-session.js';

export interface SessionHubOptions {
  /** How long changes gather before a session's message is written. */
  coalesceMs: number;
  /** Keep-alive period; the client's watchdog fires after 120 s without a message. */
  keepAliveMs: number;
  /** How long online/offline-only changes may wait (see #scheduleLazy). Default 1 s. */
  presenceWindowMs?: number;
  /** The longest the window stretches to under load (see windowMs). Default 250 ms. */
  maxCoalesceMs?: number;
  /** Pending peer marks per session before it falls back to a full resync. */
  maxPendingPeers?: number;
  /** A session whose transport stays full this long is closed (the client will reconnect). */
  stalledCloseMs?: number;
  now?: () => number;
}

const WHEEL_TICK_MS = 1_000;

export class SessionHub implements SessionScheduler, RecipientSink {
  readonly mapper: TailnetMapper;
  /** A node's sessions (almost always one): an array, iterated without an iterator object. */
  readonly #byNode = new Map<NodeId, MapSession[]>();
  /**
   * The same by node id (ids are the store's dense row ids): the session itself when the node
   * has one, its list when several. Every recipient of every change is looked up here: an
   * array read is one load where a Map of 100,000 nodes is a hash probe into a table far
   * larger than the CPU caches, and holding the session itself spares loading a list.
   */
  readonly #entryOf: Array<MapSession | MapSession[] | undefined> = [];
  /** Peer patches held per node instead of in a PendingDelta (see held-marks.ts). */
  readonly #held = new HeldMarks();
  /**
   * Sessions to flush, each once (MapSession.scheduled says whether it is in here; a removed
   * session is unflagged and skipped). An array: the same thousands of sessions are added and
   * flushed on every change of a full mesh, and a Set regrows its table each time.
   */
  #dirty: MapSession[] = [];
  /** Sessions whose only pending changes are peers going online or offline. */
  readonly #lazy = new Set<MapSession>();
  #lazyTimer: NodeJS.Timeout | null = null;
  readonly #wheel: Array<Set<MapSession>>;
  readonly #slotOf = new Map<MapSession, number>();
  readonly #options: Required<SessionHubOptions>;
  #flushTimer: NodeJS.Timeout | null = null;
  #wheelTimer: NodeJS.Timeout | null = null;
  #tick = 0;
  #count = 0;
  #windowMs: number;
  /** performance.now() when the last flush ended. */
  #lastFlushEnd = 0;
  #elu = performance.eventLoopUtilization();

  constructor(mapper: TailnetMapper, options: SessionHubOptions) {
    this.mapper = mapper;
    this.#options = {
      maxPendingPeers: 4096,
      presenceWindowMs: Math.max(1_000, options.coalesceMs),
      maxCoalesceMs: Math.max(250, options.coalesceMs),
      stalledCloseMs: Math.max(2 * options.keepAliveMs, 10_000),
      now: Date.now,
      ...options,
    };
    this.#windowMs = this.#options.coalesceMs;
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
    const list = this.#byNode.get(nodeId);
    if (list === undefined) {
      this.#byNode.set(nodeId, [session]);
      this.#entryOf[nodeId] = session;
      this.#held.open(nodeId, session.memory.variant, true);
    } else {
      // Several sessions: marks go to each session's PendingDelta.
      if (list.length === 1 && this.#held.spill(nodeId, list[0]!.pending)) this.schedule(list[0]!);
      this.#held.close(nodeId);
      list.push(session);
      this.#entryOf[nodeId] = list;
    }
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
    const list = this.#byNode.get(session.nodeId);
    const at = list === undefined ? -1 : list.indexOf(session);
    if (at < 0) return;
    list!.splice(at, 1);
    this.#held.close(session.nodeId);
    if (list!.length === 0) {
      this.#byNode.delete(session.nodeId);
      this.#entryOf[session.nodeId] = undefined;
    } else if (list!.length === 1) {
      const only = list![0]!;
      this.#entryOf[session.nodeId] = only;
      this.#held.open(session.nodeId, only.memory.variant, only.pending.empty);
    }
    session.scheduled = false;
    this.#lazy.delete(session);
    const slot = this.#slotOf.get(session);
    if (slot !== undefined) this.#wheel[slot]!.delete(session);
    this.#slotOf.delete(session);
    this.#count--;
    if (this.#count === 0) this.#stopWheel();
  }

  sessionsOf(nodeId: NodeId): readonly MapSession[] | undefined {
    return this.#byNode.get(nodeId);
  }

  hasSession(nodeId: NodeId): boolean {
    return this.#byNode.has(nodeId);
  }

  /** Ends every session of a node (it was deleted or logged out). */
  closeNode(nodeId: NodeId): void {
    const list = this.#byNode.get(nodeId);
    if (list === undefined) return;
    for (const session of [...list]) {
      session.close();
      this.remove(session);
    }
  }

  closeAll(): void {
    for (const nodeId of [...this.#byNode.keys()]) this.closeNode(nodeId);
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#lazyTimer) clearTimeout(this.#lazyTimer);
    this.#lazyTimer = null;
    this.#stopWheel();
  }

  // --- RecipientSink: marks from the mapper's change router ----------------------------------

  markPeer(recipient: NodeId, peer: NodeId, mark: PeerMark): void {
    const entry = this.#entryOf[recipient];
    if (entry === undefined) return;
    if (entry instanceof MapSession) {
      if (mark.kind === 'patch' && mark.fields !== PatchField.Online && this.#held.hold(recipient, peer, mark.fields)) {
        this.#armFlush();
        return;
      }
      // A spilled patch keeps its own urgency: an Online mark after it waits only for the
      // presence window, and would otherwise take the patch along.
      if (this.#held.spill(recipient, entry.pending)) this.schedule(entry);
      this.#markPending(entry, peer, mark);
      return;
    }
    for (let i = 0; i < entry.length; i++) this.#markPending(entry[i]!, peer, mark);
  }

  #markPending(session: MapSession, peer: NodeId, mark: PeerMark): void {
    if (mark.kind === 'removed') session.pending.markRemoved(peer);
    else if (mark.kind === 'full') session.pending.markFull(peer);
    else session.pending.markPatch(peer, mark.fields);
    if (mark.kind === 'patch' && mark.fields === PatchField.Online) this.#scheduleLazy(session);
    else this.schedule(session);
  }

  /**
   * Online/offline changes alone are shown to people, not used to reach peers, so they wait
   * for the presence window. When every client of a big tailnet reconnects at once, each
   * arrival reaches all the others; batching those per second instead of per coalescing window
   * spares tens of thousands of tiny frames. Anything urgent for the session sends them along.
   */
  #scheduleLazy(session: MapSession): void {
    if (session.scheduled) return;
    this.#lazy.add(session);
    if (this.#lazyTimer === null) this.#lazyTimer = setTimeout(() => this.#flushLazy(), this.#options.presenceWindowMs);
  }

  #flushLazy(): void {
    this.#lazyTimer = null;
    for (const session of this.#lazy) this.#addDirty(session);
    this.#lazy.clear();
    this.flushNow();
  }

  markSelf(recipient: NodeId, part: SelfPart): void {
    const entry = this.#entryOf[recipient];
    if (entry === undefined) return;
    if (entry instanceof MapSession) {
      this.#held.spill(recipient, entry.pending);
      this.#markPart(entry, part);
      return;
    }
    for (const session of entry) this.#markPart(session, part);
  }

  #markPart(session: MapSession, part: SelfPart): void {
    const pending = session.pending;
    if (part === 'self') pending.selfChanged = true;
    else if (part === 'filter') pending.filterChanged = true;
    else if (part === 'ssh') pending.sshChanged = true;
    else if (part === 'dns') pending.dnsChanged = true;
    else if (part === 'derpMap') pending.derpMapChanged = true;
    else pending.markResync();
    this.schedule(session);
  }

  forgetUserProfile(user: number): void {
    for (const list of this.#byNode.values()) for (const session of list) session.memory.sentUsers.delete(user);
  }

  /** Nodes that hold at least one session. */
  connectedNodes(): IterableIterator<NodeId> {
    return this.#byNode.keys();
  }

  // --- scheduling ----------------------------------------------------------------------------

  schedule(session: MapSession): void {
    if (this.#lazy.size > 0) this.#lazy.delete(session);
    this.#addDirty(session);
    this.#armFlush();
  }

  #armFlush(): void {
    if (this.#flushTimer === null) {
      // A change after a quiet spell is not part of a burst: it waits only the configured window.
      if (performance.now() - this.#lastFlushEnd > this.#windowMs) this.#windowMs = this.#options.coalesceMs;
      this.#flushTimer = setTimeout(() => this.flushNow(), this.windowMs);
    }
  }

  /**
   * The current coalescing window. It starts as configured and adapts to how busy the
   * process is (event-loop utilisation between flushes): above 50% it stretches by a quarter, up
   * to maxCoalesceMs; below 35% it shrinks back. Writing a frame costs tens of microseconds
   * whatever it holds (HTTP/2, Noise, a syscall), so under a burst changes merge into fewer,
   * fuller frames instead of the server falling behind; in steady state the window is as set.
   * A window that opens more than a window's length after the last flush ended starts from the
   * configured length again: the first changes after a reconnect storm used to wait the storm's
   * 250 ms.
   */
  get windowMs(): number {
    return this.#windowMs;
  }

  /** Flushes every dirty session now, in one cycle (frames shared across recipients). */
  flushNow(): void {
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#dirty.length === 0 && this.#held.count === 0) return;
    this.#adapt();
    this.mapper.beginCycle();
    // One clock read per cycle: the sessions only record when they last wrote.
    const now = this.now();
    this.#held.drain((nodeId, peer, fields, variant) => {
      const session = this.#entryOf[nodeId] as MapSession;
      if (session.writable) {
        const frame = this.mapper.patchFrame(nodeId as NodeId, peer as NodeId, fields, variant);
        if (frame !== null) session.writeFrame(frame, now);
      } else if (!session.closed) {
        // A full transport: the mark waits in the summary the session sends on drain.
        this.#held.spill(nodeId, session.pending);
        session.pending.markPatch(peer as NodeId, fields);
      }
    });
    const dirty = this.#dirty;
    this.#dirty = [];
    for (const session of dirty) {
      if (!session.scheduled) continue;
      session.scheduled = false;
      session.flush(now);
      if (session.pending.empty && this.#entryOf[session.nodeId] === session) this.#held.settled(session.nodeId);
    }
    this.mapper.beginCycle();
    this.#lastFlushEnd = performance.now();
  }

  #addDirty(session: MapSession): void {
    if (session.scheduled) return;
    session.scheduled = true;
    this.#dirty.push(session);
  }

  #adapt(): void {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, this.#elu).utilization;
    this.#elu = now;
    if (busy > 0.5) this.#windowMs = Math.min(this.#options.maxCoalesceMs, this.#windowMs * 1.25);
    else if (busy < 0.35) this.#windowMs = Math.max(this.#options.coalesceMs, this.#windowMs / 1.25);
  }

  get dirtyCount(): number {
    let count = this.#held.count;
    for (const session of this.#dirty) if (session.scheduled) count++;
    return count;
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


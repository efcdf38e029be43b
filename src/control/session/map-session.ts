// One client's streaming map poll. It starts with the complete netmap, then owes its client
// whatever its pending summary says; the hub flushes it at the end of a coalescing window. A
// session whose transport is full stops writing and lets its summary absorb further changes,
// so a slow client never delays anyone else and its backlog stays one mark per peer.
import type { NodeId } from '../../model/index.js';
import { PendingDelta, type SessionMemory, type TailnetMapper } from '../../mapper/index.js';
import { wireVariantOf } from '../../mapper/index.js';

/** Where a session's frames go: the HTTP/2 response stream of the map poll. */
export interface FrameSink {
  /** Writes one framed message; false when the transport's buffer is full (the frame is kept). */
  write(frame: Buffer): boolean;
  /** Calls `listener` once, when the buffer has drained after a write returned false. */
  onceDrain(listener: () => void): void;
  /** Ends the response. */
  end(): void;
}

export interface SessionScheduler {
  schedule(session: MapSession): void;
  readonly mapper: TailnetMapper;
  now(): number;
}

let nextSessionId = 1;

export class MapSession {
  readonly id = nextSessionId++;
  readonly nodeId: NodeId;
  readonly memory: SessionMemory;
  readonly pending: PendingDelta;
  readonly #sink: FrameSink;
  readonly #scheduler: SessionScheduler;
  #blockedSinceMs: number | null = null;
  #closed = false;
  /** Whether the scheduler holds the session for its next flush (the scheduler's flag). */
  scheduled = false;
  lastWriteMs = 0;
  framesWritten = 0;
  bytesWritten = 0;

  constructor(scheduler: SessionScheduler, nodeId: NodeId, capVersion: number, sink: FrameSink, options: { maxPendingPeers: number }) {
    this.#scheduler = scheduler;
    this.nodeId = nodeId;
    this.#sink = sink;
    this.memory = { capVersion, variant: wireVariantOf(capVersion), sentUsers: new Set(), filterKey: null };
    this.pending = new PendingDelta(options.maxPendingPeers);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Milliseconds the transport has been full, or 0. */
  blockedForMs(now: number): number {
    return this.#blockedSinceMs === null ? 0 : now - this.#blockedSinceMs;
  }

  /** Sends the complete netmap; everything pending so far is included in it. */
  start(): void {
    this.pending.clear();
    this.#write(this.#scheduler.mapper.fullMap(this.nodeId, this.memory));
  }

  /** Asks the hub to flush this session at the end of the current window. */
  touch(): void {
    if (!this.#closed) this.#scheduler.schedule(this);
  }

  /** Writes what is pending, unless the transport is full (then it waits for drain). `nowMs`: the flush cycle's clock. */
  flush(nowMs = this.#scheduler.now()): void {
    if (this.#closed || this.#blockedSinceMs !== null || this.pending.empty) return;
    const frame = this.#scheduler.mapper.delta(this.nodeId, this.pending, this.memory);
    if (frame !== null) this.#write(frame, nowMs);
  }

  /** Whether a frame written now goes out: not closed, transport not full. */
  get writable(): boolean {
    return !this.#closed && this.#blockedSinceMs === null;
  }

  /** Writes a frame built outside the pending summary (a mark the hub held); only when writable. */
  writeFrame(frame: Buffer, nowMs: number): void {
    this.#write(frame, nowMs);
  }

  keepAlive(): void {
    if (this.#closed || this.#blockedSinceMs !== null) return;
    this.#write(this.#scheduler.mapper.keepAlive());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.pending.clear();
    this.#sink.end();
  }

  #write(frame: Buffer, nowMs = this.#scheduler.now()): void {
    this.lastWriteMs = nowMs;
    this.framesWritten++;
    this.bytesWritten += frame.length;
    if (this.#sink.write(frame)) return;
    this.#blockedSinceMs = this.lastWriteMs;
    this.#sink.onceDrain(() => {
      this.#blockedSinceMs = null;
      if (!this.pending.empty) this.touch();
    });
  }
}

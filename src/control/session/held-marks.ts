// The session hub's compact per-node layout for the commonest mark: one peer's patch (new
// endpoints, a new DERP home) for a node with one map session and nothing else pending. Such a
// mark is held here, in four 32-bit cells per node id (peer, patch fields, flags, wire variant),
// instead of in the session's PendingDelta. An endpoint change marks each of the changed
// node's viewers; with the marks held here, marking a viewer writes one 16-byte cell group
// (four per cache line) and touches no object of the viewer, and the flush reads the same
// cells back, so a recipient costs the cache misses of its cells and of the session it writes
// to, not also those of its pending summary, the session's memory and its list of sessions.
//
// Anything else for the node (a second peer, a full or removed mark, a self part, a session
// that cannot write) first moves the held mark into the session's PendingDelta (spill), and
// from then on everything goes there until a flush leaves that summary empty again: a node's
// pending changes are in one place or the other, never split.
import type { PendingDelta, WireVariant } from '../../mapper/index.js';
import type { NodeId } from '../../model/index.js';

const CELLS = 4;
const PEER = 0;
const FIELDS = 1;
const FLAGS = 2;
const VARIANT = 3;
/** A mark is held (and the node is in the queue). */
const HELD = 1;
/** The session's PendingDelta may hold marks: new marks must go there. */
const PENDING = 2;
/** Node ids above this never hold marks (their cells would make the array huge). */
const MAX_NODE_ID = 1 << 22;

export class HeldMarks {
  readonly #maxNodeId: number;
  #cells = new Int32Array(CELLS * 1024);
  /** Nodes with a held mark, in marking order; an id whose HELD flag was cleared is skipped. */
  #queue: number[] = [];
  #held = 0;

  /** `maxNodeId`: ids above it never hold marks (the default keeps the cells under 64 MiB). */
  constructor(maxNodeId = MAX_NODE_ID) {
    this.#maxNodeId = maxNodeId;
  }

  /** The node now has exactly one session; `pendingEmpty`: whether its PendingDelta is empty. */
  open(nodeId: number, variant: WireVariant, pendingEmpty: boolean): void {
    if (nodeId < 0 || nodeId > this.#maxNodeId) return;
    const at = nodeId * CELLS;
    if (at >= this.#cells.length) {
      // Never past maxNodeId: a larger id must find no cells (it was never opened).
      const grown = new Int32Array(Math.min((this.#maxNodeId + 1) * CELLS, Math.max(at + CELLS, this.#cells.length * 2)));
      grown.set(this.#cells);
      this.#cells = grown;
    }
    this.#cells[at + FLAGS] = pendingEmpty ? 0 : PENDING;
    this.#cells[at + VARIANT] = variant;
  }

  /**
   * The node no longer has exactly one session (it has none, or several): its cells are no
   * longer used. A held mark must have been spilled or dropped by the caller.
   */
  close(nodeId: number): void {
    const at = nodeId * CELLS;
    if (nodeId < 0 || at >= this.#cells.length) return;
    if ((this.#cells[at + FLAGS]! & HELD) !== 0) this.#held--;
    this.#cells[at + FLAGS] = PENDING;
  }

  /**
   * Holds a patch of `peer` (fields: patch bits) for a node opened here; false when the mark
   * must go to the session's PendingDelta instead (the caller spills first).
   */
  hold(nodeId: number, peer: number, fields: number): boolean {
    const cells = this.#cells;
    const at = nodeId * CELLS;
    if (nodeId < 0 || at >= cells.length) return false;
    const flags = cells[at + FLAGS]!;
    if ((flags & PENDING) !== 0) return false;
    if ((flags & HELD) !== 0) {
      if (cells[at + PEER] !== peer) return false;
      cells[at + FIELDS]! |= fields;
      return true;
    }
    cells[at + PEER] = peer;
    cells[at + FIELDS] = fields;
    cells[at + FLAGS] = flags | HELD;
    this.#queue.push(nodeId);
    this.#held++;
    return true;
  }

  /**
   * Moves the node's held mark (if any) into `pending`, and sends every later mark there until
   * settled(). Call before marking the session's PendingDelta directly. True when a mark
   * moved: the session must then be scheduled like any session with something pending.
   */
  spill(nodeId: number, pending: PendingDelta): boolean {
    const cells = this.#cells;
    const at = nodeId * CELLS;
    if (nodeId < 0 || at >= cells.length) return false;
    const flags = cells[at + FLAGS]!;
    cells[at + FLAGS] = PENDING;
    if ((flags & HELD) === 0) return false;
    pending.markPatch(cells[at + PEER]! as NodeId, cells[at + FIELDS]!);
    this.#held--;
    return true;
  }

  /** The session's PendingDelta is empty again (after a flush): marks may be held once more. */
  settled(nodeId: number): void {
    const at = nodeId * CELLS;
    if (nodeId < 0 || at >= this.#cells.length) return;
    if (this.#cells[at + FLAGS] === PENDING) this.#cells[at + FLAGS] = 0;
  }

  /** How many nodes hold a mark. */
  get count(): number {
    return this.#held;
  }

  /**
   * Hands every held mark to `visit` in marking order and releases it (the node's cells are
   * free for the next mark before `visit` runs, so `visit` may spill into the PendingDelta).
   */
  drain(visit: (nodeId: number, peer: number, fields: number, variant: WireVariant) => void): void {
    if (this.#queue.length === 0) return;
    const queue = this.#queue;
    this.#queue = [];
    for (let i = 0; i < queue.length; i++) {
      const cells = this.#cells;
      const nodeId = queue[i]!;
      const at = nodeId * CELLS;
      const flags = cells[at + FLAGS]!;
      if ((flags & HELD) === 0) continue;
      cells[at + FLAGS] = flags & ~HELD;
      this.#held--;
      visit(nodeId, cells[at + PEER]!, cells[at + FIELDS]!, cells[at + VARIANT]! as WireVariant);
    }
  }
}

// Small integers by node id, in one typed array. Node ids are the store's dense row ids, so an
// array indexed by id is compact, and reading a value for each of a change's recipients is one
// load from a block of 4-byte cells instead of a pointer to follow into an object per node.
// Ids past MAX_DENSE_ID (a store that skipped far ahead) live in a Map instead, so a stray
// large id costs a Map entry, not a huge array.

/** Ids at or below this are stored in the typed array (64 MiB at most). */
const MAX_DENSE_ID = 1 << 24;

export class IdSlots {
  #cells: Int32Array;
  readonly #sparse = new Map<number, number>();
  /** What get() returns for an id never set (or unset). */
  readonly absent: number;

  constructor(absent: number, initialSize = 1024) {
    this.absent = absent;
    this.#cells = new Int32Array(initialSize).fill(absent);
  }

  get(id: number): number {
    const cells = this.#cells;
    if (id >= 0 && id < cells.length) return cells[id]!;
    if (id <= MAX_DENSE_ID) return this.absent;
    return this.#sparse.get(id) ?? this.absent;
  }

  /** `value` must fit in 32 signed bits. */
  set(id: number, value: number): void {
    if (!Number.isInteger(id) || id < 0) throw new RangeError(`id-slots: id ${id} is not a non-negative integer`);
    if (id > MAX_DENSE_ID) {
      if (value === this.absent) this.#sparse.delete(id);
      else this.#sparse.set(id, value);
      return;
    }
    if (id >= this.#cells.length) {
      if (value === this.absent) return;
      const grown = new Int32Array(Math.min(MAX_DENSE_ID + 1, Math.max(id + 1, this.#cells.length * 2))).fill(this.absent);
      grown.set(this.#cells);
      this.#cells = grown;
    }
    this.#cells[id] = value;
  }

  unset(id: number): void {
    this.set(id, this.absent);
  }
}

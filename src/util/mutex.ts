// A FIFO async mutex: callers of `run` execute one at a time, in arrival order. Used to
// serialise the writes of one tailnet so that the in-memory model is applied in commit order.
export class Mutex {
  #tail: Promise<void> = Promise.resolve();
  #held = 0;

  get locked(): boolean {
    return this.#held > 0;
  }

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    this.#held++;
    const result = this.#tail.then(fn);
    this.#tail = result.then(
      () => { this.#held--; },
      () => { this.#held--; },
    );
    return result;
  }
}

// Coalesces identical concurrent work: while a key is being computed, later callers for the same
// key wait for that result instead of starting their own inference.
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  get size(): number {
    return this.inFlight.size;
  }

  /** The pending result for `key`, if one is being computed. */
  get(key: string): Promise<T> | undefined {
    return this.inFlight.get(key);
  }

  /** Registers `promise` as the result for `key` until it settles. */
  track(key: string, promise: Promise<T>): Promise<T> {
    this.inFlight.set(key, promise);
    const clear = () => {
      if (this.inFlight.get(key) === promise) this.inFlight.delete(key);
    };
    promise.then(clear, clear);
    return promise;
  }
}

// Counting on a hot path: prom-client hashes a counter's label set at every inc(), even on a child,
// which a prediction paid several times. A tally is a plain number that inc() adds to; the counter
// receives the sums when the registry reads it (the counter's `collect`, prom-client's own hook), so
// every scrape, JSON export or cluster aggregation sees every count made before it.

/** What a tally adds its count to: a prom-client counter child, or an unlabelled counter. */
export interface CountSink {
  inc(value: number): void;
}

export class Tally {
  /** Counted since the last flush. */
  n = 0;
  constructor(readonly sink: CountSink) {}
  inc(): void {
    this.n++;
  }
}

/** The tallies of one registry; pass `flush` as the `collect` of every counter they feed. */
export class Tallies {
  private readonly all: Tally[] = [];

  /** At most `max` tallies are kept; past that, counts go straight to prom-client (as before tallies). */
  constructor(private readonly max = 10_000) {}

  of(sink: CountSink): Tally | { inc(): void } {
    if (this.all.length >= this.max) return { inc: () => sink.inc(1) };
    const t = new Tally(sink);
    this.all.push(t);
    return t;
  }

  readonly flush = (): void => {
    for (const t of this.all) {
      if (t.n === 0) continue;
      const n = t.n;
      t.n = 0;
      t.sink.inc(n);
    }
  };
}

// The global rate cap of the prediction log: a token bucket holding at most one second's worth of
// entries, refilled continuously. O(1), no timers; the clock is injected so tests are exact.
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly perMs: number;

  /** `perSecond` 0 (or Infinity) means no cap. */
  constructor(
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {
    this.perMs = perSecond / 1000;
    this.tokens = perSecond;
    this.last = now();
  }

  get unlimited(): boolean {
    return this.perSecond <= 0 || this.perSecond === Infinity;
  }

  /** Takes one token if there is one. */
  take(): boolean {
    if (this.unlimited) return true;
    const t = this.now();
    const dt = t - this.last;
    // A clock that steps backwards refills nothing, and does not move `last` back either.
    if (dt > 0) {
      this.tokens = Math.min(this.perSecond, this.tokens + dt * this.perMs);
      this.last = t;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
}

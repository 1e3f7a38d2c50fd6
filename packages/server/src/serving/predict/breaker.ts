// A circuit breaker per model version: after `failures` consecutive failures it opens and requests
// go straight to the fallback; after `coolDownMs` one trial request is let through (half-open); its
// success closes the breaker, its failure opens it again.
export type BreakerState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private consecutive = 0;
  private openedAt = 0;
  private trialRunning = false;
  private current: BreakerState = 'closed';

  constructor(
    private readonly failures: number,
    private readonly coolDownMs: number,
    private readonly onChange: (s: BreakerState) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    return this.current;
  }

  private set(s: BreakerState): void {
    if (s !== this.current) {
      this.current = s;
      this.onChange(s);
    }
  }

  /** Whether a request may run now. In half-open state only one trial runs at a time. */
  allow(): boolean {
    if (this.current === 'closed') return true;
    if (this.current === 'open' && this.now() - this.openedAt >= this.coolDownMs) this.set('half-open');
    if (this.current === 'half-open' && !this.trialRunning) {
      this.trialRunning = true;
      return true;
    }
    return false;
  }

  /** Ends a request that neither succeeded nor failed at inference (e.g. refused by a full queue). */
  release(): void {
    this.trialRunning = false;
  }

  success(): void {
    this.consecutive = 0;
    this.trialRunning = false;
    this.set('closed');
  }

  failure(): void {
    this.consecutive++;
    if (this.current === 'half-open' || this.consecutive >= this.failures) {
      this.trialRunning = false;
      this.openedAt = this.now();
      this.set('open');
    }
  }
}

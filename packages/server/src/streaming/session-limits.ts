// Counts open streaming sessions server-wide and per model version, so a new session past either
// bound is refused with a clear reason instead of degrading every session already running.
export class SessionLimits {
  private total = 0;
  private readonly perModel = new Map<string, number>();

  constructor(
    private readonly maxSessions: number,
    private readonly maxPerModel: number,
  ) {}

  /** Takes a slot, or returns why not. */
  acquire(key: string): { ok: true; release(): void } | { ok: false; reason: string } {
    const n = this.perModel.get(key) ?? 0;
    if (this.total >= this.maxSessions)
      return {
        ok: false,
        reason: `server has ${this.total} streaming sessions open, the limit (streaming.maxSessions ${this.maxSessions}); retry later`,
      };
    if (n >= this.maxPerModel)
      return {
        ok: false,
        reason: `${key} has ${n} sessions open, the limit (streaming.maxSessionsPerModel ${this.maxPerModel}); retry later`,
      };
    this.total++;
    this.perModel.set(key, n + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perModel.get(key) ?? 1) - 1;
        if (left > 0) this.perModel.set(key, left);
        else this.perModel.delete(key);
      },
    };
  }

  get open(): number {
    return this.total;
  }

  openFor(key: string): number {
    return this.perModel.get(key) ?? 0;
  }
}

// What every batcher shares: a bounded queue (past `maxQueueDepth` a submission is a 503 with
// Retry-After, after close a 503 shutting-down), the wait for company before a batch is cut (the
// max queue delay), and failing what is still queued at close. The stateless DynamicBatcher and the
// stateful SequenceBatcher differ only in how they cut and run a batch.
import { FerryError } from '../../errors.js';

/** How a delay under one millisecond is waited: one turn of the event loop, or a (1 ms) timer. */
export type SubMillisecondDelay = 'immediate' | 'timer';

export abstract class BatchQueue<P extends { reject(e: unknown): void }> {
  protected readonly queue: P[] = [];
  protected closed = false;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;

  /**
   * @param maxQueueDepth largest number of queued submissions; Infinity for none.
   * @param subMs how a delay below 1 ms is waited (see `arm`).
   */
  protected constructor(
    protected readonly maxQueueDepth: number,
    private readonly subMs: SubMillisecondDelay,
  ) {}

  /** Submissions waiting to be cut into a batch. */
  /** Closed with its load: nothing more is accepted. */
  get isClosed(): boolean {
    return this.closed;
  }

  get depth(): number {
    return this.queue.length;
  }

  /** True when a new submission would be refused. */
  get overloaded(): boolean {
    return this.queue.length >= this.maxQueueDepth;
  }

  /** Throws the 503 a submission gets when the batcher is closed or its queue is full. */
  protected admit(): void {
    if (this.closed) throw new FerryError('shutting-down', { headers: { 'retry-after': '1' } });
    if (this.queue.length >= this.maxQueueDepth) {
      throw new FerryError('server-overloaded', {
        detail: `the queue of this model holds ${this.queue.length} requests, its limit (batching.maxQueueDepth); retry later`,
        headers: { 'retry-after': '1' },
        extra: { limit: this.maxQueueDepth },
      });
    }
  }

  /** Whether a wait armed by `arm` has not fired yet. */
  protected get armed(): boolean {
    return this.#timer !== undefined || this.#immediate !== undefined;
  }

  /**
   * Calls `fire` after `us` microseconds, unless a wait is already armed. Node's timers are
   * millisecond-grained: with 'immediate' a sub-millisecond delay becomes one turn of the event
   * loop — long enough for submissions already on the wire to be queued, short enough not to add a
   * millisecond to each — and a zero delay is always one turn.
   */
  protected arm(us: number, fire: () => void): void {
    if (this.armed) return;
    const run = () => {
      this.#timer = undefined;
      this.#immediate = undefined;
      fire();
    };
    const immediate = us <= 0 || (us < 1000 && this.subMs === 'immediate');
    if (immediate) this.#immediate = setImmediate(run);
    else this.#timer = setTimeout(run, this.subMs === 'immediate' ? Math.ceil(us / 1000) : us / 1000);
  }

  /** Cancels an armed wait. */
  protected disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }

  /** Fails every queued submission (shutdown or unload); later submissions are refused. */
  close(): void {
    this.closed = true;
    this.disarm();
    for (const p of this.queue.splice(0))
      p.reject(new FerryError('shutting-down', { headers: { 'retry-after': '1' } }));
  }
}

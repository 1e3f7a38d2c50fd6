// Fans a job's changes out to every client watching it (`GET /v1/jobs/{id}/events`). One watched job
// has one poller, whatever the number of its watchers, and the poller reads only the small columns
// (state, progress, change counter): a stream never re-reads the job's input, and the result is read
// once, when the job ends, serialised once and written to every watcher. Changes made in this
// process (and, with Redis, by other processes over pub/sub) arrive at once through the event bus;
// the poll is the fallback for a SQL-queue worker in another process. Streams are bounded per job,
// per client (key or address) and server-wide: a slot is taken before anything is read, so a flood
// of streams is refused before it costs a query.
import { FerryError } from '../errors.js';
import type { JobEventBus } from './events.js';
import type { JobDocRow, JobStatusRow, JobStore } from './job-store.js';
import { isTerminal, type JobEvent, type JobState } from './types.js';

export interface JobWatchLimits {
  /** Open event streams in this process, all jobs together. */
  maxStreams: number;
  /** Open event streams on one job. */
  maxPerJob: number;
  /** Open event streams of one API key (or, without keys, one client address). */
  maxPerClient: number;
  /** How often one watched job's state is read from the store (one read per job, not per watcher). */
  pollIntervalMs: number;
  /** A `: keep-alive` comment this often, so that proxies keep an idle stream open. */
  keepAliveMs: number;
  /**
   * Progress of one job reaches its watchers at most this often (the latest value; state changes go
   * at once): a job of 1,000 chunks watched by 1,000 clients would otherwise be a million writes.
   */
  minProgressIntervalMs: number;
  /**
   * The final event carries the whole document up to this size; a larger one (a big result) is sent
   * without its result (`resultOmitted: true`), which the client reads once with GET /v1/jobs/{id}.
   */
  maxFinalEventBytes: number;
}

/** What a stream does with the events of its job. */
export interface JobWatcher {
  /** A change that is not the last: `kind` is the new state, or `progress`. */
  change(kind: string, e: JobEvent): void;
  /** The last event, with the final document already serialised (once, for all watchers). */
  final(kind: string, seq: number, documentJson: string): void;
  /** A keep-alive comment. */
  keepAlive(): void;
  /** The job is gone (removed past retention): end the stream. */
  gone(): void;
}

/** A stream's place, taken before the job is read; released exactly once. */
export interface WatchSlot {
  readonly jobId: string;
  readonly client: string;
  /** Starts delivering to `w`, beginning with the job's current state. Returns the stop function. */
  attach(w: JobWatcher, current: JobStatusRow): () => void;
  /** Gives the slot back (a stream that never opened, or one that ended). Idempotent. */
  release(): void;
}

interface Entry {
  lastState: string | undefined;
  lastSeq: number;
}

/**
 * Watchers written to in one turn of the event loop. A thousand streams of one job are written in
 * slices, with other requests (a /healthz probe, a predict) served between them, rather than in one
 * block of a thousand socket writes.
 */
const SLICE = 100;
const nextTurn = (fn: () => void) => setImmediate(fn);

class WatchedJob {
  readonly watchers = new Map<JobWatcher, Entry>();
  private seq = -1;
  private status: JobEvent | undefined;
  private polling = false;
  private finishing = false;
  private lastFanOut = 0;
  private fanning = false;
  private stopped = false;
  private fanAgain = false;
  private pendingProgress: NodeJS.Timeout | undefined;
  private readonly poll: NodeJS.Timeout;
  private readonly keepAlive: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(
    readonly id: string,
    private readonly store: JobStore,
    bus: JobEventBus,
    private readonly limits: JobWatchLimits,
    private readonly onEmpty: (job: WatchedJob) => void,
  ) {
    this.unsubscribe = bus.subscribe(id, (e) => this.onEvent(e));
    this.poll = setInterval(() => this.pollOnce(), limits.pollIntervalMs);
    this.keepAlive = setInterval(() => this.sliced((w) => w.keepAlive()), limits.keepAliveMs);
  }

  add(w: JobWatcher, current: JobStatusRow): void {
    this.watchers.set(w, { lastState: undefined, lastSeq: -1 });
    const e = toEvent(current);
    if (e.seq > this.seq) {
      this.onEvent(e);
      return;
    }
    // Not news to the job's other watchers: only this one needs the current state.
    if (this.finishing || !this.status) return; // the final event is on its way to every watcher
    this.deliver(w, this.status);
  }

  remove(w: JobWatcher): void {
    if (!this.watchers.delete(w)) return;
    if (this.watchers.size === 0) this.stop();
  }

  private deliver(w: JobWatcher, e: JobEvent): void {
    const entry = this.watchers.get(w);
    if (!entry || e.seq <= entry.lastSeq) return;
    const kind = e.state !== entry.lastState ? e.state : 'progress';
    entry.lastState = e.state;
    entry.lastSeq = e.seq;
    w.change(kind, e);
  }

  private onEvent(e: JobEvent): void {
    if (this.finishing || e.seq <= this.seq) return;
    this.seq = e.seq;
    this.status = e;
    if (isTerminal(e.state)) {
      clearTimeout(this.pendingProgress);
      this.pendingProgress = undefined;
      void this.finish(e);
      return;
    }
    const stateChanged = [...this.watchers.values()].some((x) => x.lastState !== e.state);
    const wait = this.lastFanOut + this.limits.minProgressIntervalMs - Date.now();
    if (!stateChanged && wait > 0) {
      // Coalesced: the timer sends whatever is the latest status when it fires.
      this.pendingProgress ??= setTimeout(() => {
        this.pendingProgress = undefined;
        if (!this.finishing && this.status) this.fanOut(this.status);
      }, wait);
      return;
    }
    this.fanOut(e);
  }

  /**
   * Gives every watcher the latest status. A pass over many watchers spans several turns; a change
   * during it is picked up by the slices still to come (each delivers the latest status, never an
   * older one after a newer), and one more pass then brings the earlier slices up to date.
   */
  private fanOut(e: JobEvent): void {
    this.lastFanOut = Date.now();
    if (this.fanning) {
      this.fanAgain = true;
      return;
    }
    this.fanning = true;
    const pass = () =>
      this.sliced(
        (w) => {
          if (!this.finishing && this.status) this.deliver(w, this.status);
        },
        () => {
          if (this.fanAgain && !this.finishing) {
            this.fanAgain = false;
            pass();
          } else this.fanning = false;
        },
      );
    if (!this.status) this.status = e;
    pass();
  }

  /** Calls `fn` for each watcher, `SLICE` a turn; `done` after the last. */
  private sliced(fn: (w: JobWatcher) => void, done?: () => void): void {
    const all = [...this.watchers.keys()];
    const step = (from: number) => {
      if (this.stopped) return; // closed: the HTTP layer ends the streams
      for (const w of all.slice(from, from + SLICE)) fn(w);
      if (from + SLICE < all.length) nextTurn(() => step(from + SLICE));
      else done?.();
    };
    step(0);
  }

  /** Reads the final document once and gives it to every watcher. */
  private async finish(e: JobEvent): Promise<void> {
    this.finishing = true;
    let found: { row: JobDocRow; resultOmitted: boolean } | undefined;
    try {
      found = await this.store.finalDocument(this.id, this.limits.maxFinalEventBytes);
    } catch {
      found = undefined;
    }
    const doc = found ? this.store.toDocument(found.row) : undefined;
    // A thousand watchers of a 60,000-row job must not each be sent its megabytes of result.
    const omitted = doc && { ...doc, result: null, resultOmitted: true };
    let json = JSON.stringify(found?.resultOmitted ? omitted : (doc ?? e));
    if (doc && json.length > this.limits.maxFinalEventBytes) json = JSON.stringify(omitted);
    // In slices, and from the live set: a watcher that arrives meanwhile gets the final event too.
    const step = () => {
      if (this.stopped && this.watchers.size > 0) return; // closed: the HTTP layer ends the streams
      for (const [w, entry] of [...this.watchers].slice(0, SLICE)) {
        this.watchers.delete(w);
        w.final(e.state !== entry.lastState ? e.state : 'progress', e.seq, json);
      }
      if (this.watchers.size > 0) nextTurn(step);
      else this.stop();
    };
    step();
  }

  private pollOnce(): void {
    if (this.polling || this.finishing) return;
    this.polling = true;
    this.store
      .status(this.id)
      .then(
        (row) => {
          if (row) this.onEvent(toEvent(row));
          else for (const w of [...this.watchers.keys()]) w.gone();
        },
        () => undefined, // the store is down: try again next tick, the streams stay open
      )
      .finally(() => {
        this.polling = false;
      });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.pendingProgress);
    clearInterval(this.poll);
    clearInterval(this.keepAlive);
    this.unsubscribe();
    this.onEmpty(this);
  }
}

function toEvent(r: JobStatusRow): JobEvent {
  return { id: r.id, seq: Number(r.seq), state: r.state as JobState, progress: Number(r.progress) };
}

export class JobWatchHub {
  private readonly jobs = new Map<string, WatchedJob>();
  private readonly perJob = new Map<string, number>();
  private readonly perClient = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly store: JobStore,
    private readonly bus: JobEventBus,
    readonly limits: JobWatchLimits,
  ) {}

  /** Open streams: all, and on one job (for metrics and tests). */
  counts(jobId?: string): { streams: number; job: number; pollers: number } {
    return {
      streams: this.total,
      job: jobId === undefined ? 0 : (this.perJob.get(jobId) ?? 0),
      pollers: this.jobs.size,
    };
  }

  /** Takes a stream slot or throws `too-many-streams` naming the limit that was reached. Synchronous. */
  reserve(jobId: string, client: string): WatchSlot {
    const refuse = (limit: number, setting: string, what: string) =>
      new FerryError('too-many-streams', {
        detail: `${what} has ${limit} open event streams, the limit (jobs.events.${setting}); poll GET /v1/jobs/{id} or retry later`,
        extra: { limit },
        headers: { 'retry-after': '5' },
      });
    const { maxStreams, maxPerJob, maxPerClient } = this.limits;
    if (this.total >= maxStreams) throw refuse(maxStreams, 'maxStreams', 'this server');
    if ((this.perJob.get(jobId) ?? 0) >= maxPerJob) throw refuse(maxPerJob, 'maxPerJob', 'this job');
    if ((this.perClient.get(client) ?? 0) >= maxPerClient)
      throw refuse(maxPerClient, 'maxPerClient', 'this API key or client address');
    this.total++;
    bump(this.perJob, jobId, 1);
    bump(this.perClient, client, 1);
    let released = false;
    let detach: (() => void) | undefined;
    const release = () => {
      if (released) return;
      released = true;
      detach?.();
      this.total--;
      bump(this.perJob, jobId, -1);
      bump(this.perClient, client, -1);
    };
    return {
      jobId,
      client,
      release,
      attach: (w, current) => {
        if (released) return () => undefined;
        let job = this.jobs.get(jobId);
        if (!job) {
          job = new WatchedJob(jobId, this.store, this.bus, this.limits, (j) => {
            if (this.jobs.get(jobId) === j) this.jobs.delete(jobId);
          });
          this.jobs.set(jobId, job);
        }
        const j = job;
        detach = () => j.remove(w);
        j.add(w, current);
        return release;
      },
    };
  }

  /** Stops every poller (the server is closing; the streams themselves are ended by the HTTP layer). */
  close(): void {
    for (const j of [...this.jobs.values()]) j.stop();
    this.jobs.clear();
  }
}

function bump(m: Map<string, number>, k: string, d: number): void {
  const n = (m.get(k) ?? 0) + d;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}

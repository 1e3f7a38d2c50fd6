// The embedded queue: jobs are claimed straight from the store's `jobs` table with a conditional
// UPDATE (one winner per row, no SKIP LOCKED needed, so SQLite and PostgreSQL share the code). A
// claim holds a lock until `locked_until`, renewed while the job runs; a worker that dies stops
// renewing, and the stalled check hands its jobs back. Works across processes sharing the store
// (several `ferry worker` on one SQLite file, or on one PostgreSQL database).
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { JobStore } from './job-store.js';
import { sleep, type Consumer, type JobHandler, type QueueBackend, type QueueLengths } from './queue-backend.js';

export interface SqlQueueOptions {
  lockDurationMs: number;
  stalledIntervalMs: number;
  pollIntervalMs: number;
}

export class SqlQueue implements QueueBackend {
  readonly kind = 'sql' as const;
  /** Wakes this process's idle workers when a job is submitted here (others find it by polling). */
  private readonly wake = new EventEmitter();

  constructor(
    private readonly store: JobStore,
    private readonly opts: SqlQueueOptions,
    private readonly log: Logger,
  ) {
    this.wake.setMaxListeners(0);
  }

  async enqueue(): Promise<void> {
    this.wake.emit('job');
  }
  async discard(): Promise<void> {
    /* the row is the queue: cancelling it removed it */
  }
  lengths(): Promise<QueueLengths> {
    return this.store.lengths(Date.now());
  }
  async close(): Promise<void> {
    /* nothing beyond the store, which its owner closes */
  }

  consume(workerId: string, concurrency: number, handler: JobHandler): Consumer {
    const stopping = new AbortController();
    const shutdown = new AbortController();
    const active = new Set<string>();
    const { lockDurationMs, stalledIntervalMs, pollIntervalMs } = this.opts;

    const heartbeat = setInterval(
      () => {
        this.store
          .renew([...active], workerId, Date.now() + lockDurationMs)
          .catch((err: unknown) => this.log.warn({ err }, 'jobs: lock renewal failed'));
      },
      Math.max(50, Math.floor(lockDurationMs / 3)),
    );
    const stalled = setInterval(() => {
      this.store.reclaimExpired(Date.now()).then(
        (n) => {
          if (n > 0) {
            this.log.warn({ jobs: n }, 'jobs: handed back jobs of a lost worker');
            this.wake.emit('job');
          }
        },
        (err: unknown) => this.log.warn({ err }, 'jobs: stalled check failed'),
      );
    }, stalledIntervalMs);
    heartbeat.unref();
    stalled.unref();

    // Idle slots queue up here. One timer wakes one of them a poll interval (an idle process claims
    // once an interval, not once per slot); a claim that finds a job wakes the next idle slot, so a
    // burst fills every slot in a few claims; a job submitted in this process wakes one at once. A
    // wake-up that finds no slot idle (all running, or one mid-claim whose query may have missed the
    // new row) is kept, and the next slot to find nothing claims once more instead of sleeping.
    const idle: Array<() => void> = [];
    let owed = false;
    const wakeOne = () => {
      const resume = idle.shift();
      if (resume) resume();
      else owed = true;
    };
    const poll = setInterval(() => idle.shift()?.(), pollIntervalMs);
    const onJob = () => wakeOne();
    this.wake.on('job', onJob);
    stopping.signal.addEventListener('abort', () => {
      clearInterval(poll);
      this.wake.off('job', onJob);
      for (const resume of idle.splice(0)) resume();
    });

    const slot = async () => {
      while (!stopping.signal.aborted) {
        let row;
        try {
          row = await this.store.claimNext(workerId, Date.now(), lockDurationMs);
        } catch (err) {
          this.log.warn({ err }, 'jobs: claim failed; retrying');
          await sleep(pollIntervalMs * 4, stopping.signal);
          continue;
        }
        if (!row) {
          if (owed) owed = false;
          else if (!stopping.signal.aborted) await new Promise<void>((resume) => idle.push(resume));
          continue;
        }
        wakeOne();
        active.add(row.id);
        try {
          await handler(row, { shutdown: shutdown.signal });
        } catch (err) {
          // The runner records every outcome itself; reaching here is a bug or a store outage. The
          // lock runs out and the stalled check hands the job back.
          this.log.error({ err, job: row.id }, 'jobs: run failed outside the runner');
        } finally {
          active.delete(row.id);
        }
      }
    };
    const slots = Array.from({ length: concurrency }, () => slot());
    const all = Promise.all(slots);

    return {
      async stop(graceMs: number, handBackMs?: number) {
        stopping.abort();
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<'grace'>((r) => {
          timer = setTimeout(() => r('grace'), graceMs);
        });
        const first = await Promise.race([all.then(() => 'done' as const), grace]);
        clearTimeout(timer);
        if (first === 'grace') {
          shutdown.abort();
          // Bounded when asked (a process deadline): a run still inside its chunk past it keeps its lock,
          // and the stalled check of another worker hands the job back.
          await (handBackMs === undefined ? all : Promise.race([all, sleep(handBackMs)]));
        }
        clearInterval(heartbeat);
        clearInterval(stalled);
      },
    };
  }
}

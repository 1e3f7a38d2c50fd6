// The scale-out queue: BullMQ on Redis. Jobs are BullMQ jobs whose id is the Ferry job id and whose
// data is nothing else: the document is in the store. BullMQ gives what a fleet of `ferry worker`
// processes needs — a blocking wait for work (no polling), locks renewed while a job runs, stalled
// jobs (a SIGKILLed worker) moved back to wait, delayed retries, and a list (`<prefix>:<queue>:wait`)
// that KEDA can scale on. The runner owns the retry decision (same policy as the SQL queue); this
// file translates its outcome into BullMQ's terms.
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { JobStore } from './job-store.js';
import type { Consumer, JobHandler, QueueBackend, QueueLengths } from './queue-backend.js';

/** Settles when `p` does or after `ms`: BullMQ's close waits for a Redis that may never answer. */
async function within(p: Promise<unknown>, ms: number): Promise<'done' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(
      () => 'done' as const,
      () => 'done' as const,
    ),
    new Promise<'timeout'>((res) => {
      timer = setTimeout(() => res('timeout'), ms);
    }),
  ]);
  clearTimeout(timer);
  return r;
}

export interface BullQueueOptions {
  url: string;
  queueName: string;
  prefix: string;
  attempts: number;
  backoffBaseMs: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalls: number;
  retentionSeconds: number;
}

export class BullQueue implements QueueBackend {
  readonly kind = 'bullmq' as const;
  readonly queue: Queue;
  private readonly connection: Redis;
  private readonly workers = new Set<Worker>();
  /**
   * Every ioredis client BullMQ made from ours (a Worker's blocking connection is a duplicate).
   * BullMQ does not disconnect them when it does not own the connection it was given, nor when Redis
   * is down and its close() waits: close() disconnects each of them itself.
   */
  private readonly duplicates = new Set<Redis>();
  private closed = false;

  constructor(
    private readonly store: JobStore,
    private readonly opts: BullQueueOptions,
    private readonly log: Logger,
  ) {
    // BullMQ needs maxRetriesPerRequest: null so a blocking command waits through a Redis restart.
    this.connection = new Redis(opts.url, { maxRetriesPerRequest: null, lazyConnect: false });
    this.connection.on('error', (err) => log.warn({ err: err.message }, 'jobs: Redis connection error'));
    const duplicate = this.connection.duplicate.bind(this.connection);
    this.connection.duplicate = (override) => {
      const c = duplicate(override);
      c.on('error', (err) => log.debug({ err: err.message }, 'jobs: Redis connection error (BullMQ duplicate)'));
      // Made after close (a worker loop recovering its blocking connection): no retry loop may outlive us.
      if (this.closed) c.disconnect();
      else this.duplicates.add(c);
      return c;
    };
    this.queue = new Queue(opts.queueName, { connection: this.connection, prefix: opts.prefix });
    this.queue.on('error', (err) => log.warn({ err: err.message }, 'jobs: BullMQ queue error'));
  }

  /** Rejects when Redis does not answer in time (BullMQ would otherwise wait for it forever). */
  private async bounded<T>(what: string, p: Promise<T>, ms = 5000): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`Redis did not answer ${what} within ${ms} ms`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async enqueue(id: string): Promise<void> {
    // If this times out and the add lands later, the job document is gone and the worker skips it.
    await this.bounded(
      'an add',
      this.queue.add(
        'predict',
        {},
        {
          jobId: id,
          // The runner decides when to give up (it counts failures in the document); BullMQ's own count
          // only has to stay above that.
          attempts: this.opts.attempts + 1,
          backoff: { type: 'exponential', delay: this.opts.backoffBaseMs },
          removeOnComplete: { age: 3600, count: 10_000 },
          removeOnFail: { age: this.opts.retentionSeconds },
        },
      ),
    );
  }

  async discard(id: string): Promise<void> {
    // Fails (returns 0) when a worker holds the job; that worker finds it cancelled and skips it.
    await this.bounded('a remove', this.queue.remove(id), 2000).catch(() => 0);
  }

  async lengths(): Promise<QueueLengths> {
    const c = await this.bounded(
      'the counts',
      this.queue.getJobCounts('wait', 'prioritized', 'active', 'delayed'),
      2000,
    );
    return { waiting: (c.wait ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 };
  }

  /** Re-adds queued documents that Redis does not hold (a Redis restart without persistence lost them). */
  async redispatch(ids: string[]): Promise<number> {
    let n = 0;
    for (const id of ids) {
      const job = await this.bounded('a lookup', this.queue.getJob(id), 2000);
      if (job) continue;
      await this.enqueue(id);
      n++;
    }
    return n;
  }

  consume(workerId: string, concurrency: number, handler: JobHandler): Consumer {
    const shutdown = new AbortController();
    const processor = async (job: Job, token?: string) => {
      const row = await this.store.markActive(job.id!, workerId, Date.now(), this.opts.lockDurationMs);
      // Cancelled while queued, or already finished by an earlier run: nothing to do.
      if (!row) return;
      const outcome = await handler(row, { shutdown: shutdown.signal });
      switch (outcome.kind) {
        case 'done':
          return;
        case 'failed':
          throw new UnrecoverableError(outcome.reason);
        case 'retry':
          throw new Error(outcome.reason);
        case 'handed-back':
          await job.moveToDelayed(Date.now(), token);
          throw new DelayedError();
      }
    };
    const worker = new Worker(this.opts.queueName, processor, {
      connection: this.connection,
      prefix: this.opts.prefix,
      concurrency,
      lockDuration: this.opts.lockDurationMs,
      stalledInterval: this.opts.stalledIntervalMs,
      // The runner fails a job after maxStalls lost runs; BullMQ must not do it first.
      maxStalledCount: this.opts.maxStalls + 2,
    });
    worker.on('error', (err) => this.log.warn({ err: err.message }, 'jobs: BullMQ worker error'));
    worker.on('failed', (job, err) => {
      if (!(err instanceof UnrecoverableError) && err.name !== 'Error')
        this.log.warn({ err, job: job?.id }, 'jobs: run failed outside the runner');
      // BullMQ gave up on a job that stalled too often: record that in the document.
      if (job && /stalled/i.test(err.message)) {
        void this.store
          .fail(job.id!, undefined, { code: 'job-stalled', detail: err.message }, Date.now(), false)
          .catch(() => undefined);
      }
    });
    this.workers.add(worker);
    return {
      stop: async (graceMs: number, handBackMs = Math.max(1000, graceMs)) => {
        // With Redis unreachable nothing can finish or be handed back through it: do not wait the grace.
        if (this.connection.status !== 'ready') {
          shutdown.abort();
          return;
        }
        const closing = worker.close();
        if ((await within(closing, graceMs)) === 'timeout') {
          // Grace over: runs hand their jobs back at the next chunk.
          shutdown.abort();
          await within(closing, handBackMs);
        }
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const ready = this.connection.status === 'ready';
    // Orderly when Redis answers; bounded either way, and the disconnects below run regardless:
    // with Redis down BullMQ's close may never settle, and each ioredis client left connected keeps
    // a reconnect timer that holds the process open.
    await Promise.all([...this.workers].map((w) => within(w.close(true), ready ? 1000 : 100)));
    this.workers.clear();
    await within(this.queue.close(), ready ? 1000 : 100);
    for (const c of this.duplicates) c.disconnect();
    this.duplicates.clear();
    this.connection.disconnect();
  }
}

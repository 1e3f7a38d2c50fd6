// Job events for SSE watchers. A change made in this process is delivered at once; with Redis, changes
// made by `ferry worker` processes arrive over pub/sub. Watchers also poll the document (see
// routes.ts), so a SQL-queue worker in another process is seen too; `seq` orders everything and
// drops duplicates, whichever path an event took.
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { JobEvent } from './types.js';

export class JobEventBus {
  private readonly local = new EventEmitter();
  private pub: Redis | undefined;
  private sub: Redis | undefined;
  private closed = false;

  constructor(
    private readonly redis: { url: string; channel: string } | undefined,
    private readonly log: Logger,
  ) {
    this.local.setMaxListeners(0);
    if (redis) {
      this.pub = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
      this.pub.on('error', (err) => log.debug({ err: err.message }, 'jobs: event publisher error'));
    }
  }

  publish(e: JobEvent): void {
    this.local.emit(e.id, e);
    if (this.pub && !this.closed) this.pub.publish(this.redis!.channel, JSON.stringify(e)).catch(() => undefined);
  }

  /** Calls `fn` with every event of job `id` until the returned function is called. */
  subscribe(id: string, fn: (e: JobEvent) => void): () => void {
    this.ensureSubscriber();
    this.local.on(id, fn);
    return () => {
      this.local.off(id, fn);
    };
  }

  private ensureSubscriber(): void {
    if (!this.redis || this.sub || this.closed) return;
    const sub = new Redis(this.redis.url, { maxRetriesPerRequest: null });
    sub.on('error', (err) => this.log.debug({ err: err.message }, 'jobs: event subscriber error'));
    sub
      .subscribe(this.redis.channel)
      .catch((err: unknown) => this.log.warn({ err }, 'jobs: cannot subscribe to job events'));
    sub.on('message', (_channel, text: string) => {
      try {
        const e = JSON.parse(text) as JobEvent;
        // An event this process published comes back too; watchers drop it by seq.
        if (typeof e?.id === 'string' && this.local.listenerCount(e.id) > 0) this.local.emit(e.id, e);
      } catch {
        /* not ours */
      }
    });
    this.sub = sub;
  }

  /** Disconnects both clients whatever their state (a reconnect timer would hold the process open). */
  close(): void {
    this.closed = true;
    this.pub?.disconnect();
    this.sub?.disconnect();
    this.local.removeAllListeners();
  }
}

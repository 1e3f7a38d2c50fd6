// The prediction cache. Keys are the exact model version plus a SHA-256 of one validated instance's
// values (feature order and number spelling do not change the key; see instance-digest.ts). The
// embedded store is an in-process LRU bounded in bytes; with a Redis URL the store is Redis,
// shared by replicas. Entries outlive their TTL (up to `staleTtlSeconds`) so the `stale-cache`
// fallback can still answer; a fresh hit must be younger than the model's TTL.
// A cache that fails (Redis down or slow) is bypassed: predictions are still served, the failure
// is logged once per outage and counted, and the cache comes back by itself when Redis does.
import { LRUCache } from 'lru-cache';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Feature, Instance, Prediction } from '@ferry/core';
import { instanceDigest } from './instance-digest.js';

export interface CachedPrediction {
  prediction: Prediction;
  /** Epoch ms when it was stored. */
  storedAt: number;
}

export interface CacheStore {
  readonly kind: 'memory' | 'redis';
  getMany(keys: readonly string[]): Promise<Array<CachedPrediction | undefined>>;
  setMany(entries: ReadonlyArray<readonly [string, CachedPrediction]>, keepMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Cache key of one instance's prediction: prefix, exact version, digest of the values. */
export function cacheKey(prefix: string, versionKey: string, inputs: readonly Feature[], instance: Instance): string {
  return `${prefix}${versionKey}:${instanceDigest(inputs, instance)}`;
}

export class MemoryStore implements CacheStore {
  readonly kind = 'memory' as const;
  private readonly lru: LRUCache<string, CachedPrediction>;

  constructor(maxBytes: number) {
    this.lru = new LRUCache<string, CachedPrediction>({
      maxSize: Math.max(1, maxBytes),
      // UTF-16 strings: about two bytes a character for the key and the serialised value, plus overhead.
      sizeCalculation: (v, k) => 2 * (k.length + JSON.stringify(v.prediction).length) + 64,
      ttlAutopurge: false,
    });
  }

  async getMany(keys: readonly string[]): Promise<Array<CachedPrediction | undefined>> {
    return keys.map((k) => this.lru.get(k));
  }

  async setMany(entries: ReadonlyArray<readonly [string, CachedPrediction]>, keepMs: number): Promise<void> {
    for (const [k, v] of entries) this.lru.set(k, v, { ttl: keepMs });
  }

  get size(): number {
    return this.lru.size;
  }

  async close(): Promise<void> {
    this.lru.clear();
  }
}

export class RedisStore implements CacheStore {
  readonly kind = 'redis' as const;
  readonly client: Redis;

  constructor(
    url: string,
    commandTimeoutMs: number,
    private readonly log?: Logger,
  ) {
    this.client = new Redis(url, {
      // Fail fast while disconnected rather than queueing: the prediction goes ahead without the cache.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: commandTimeoutMs,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(100 * times, 2000),
      lazyConnect: false,
    });
    // ioredis reports connection errors as events; the PredictionCache logs outages once.
    this.client.on('error', () => undefined);
    this.client.on('ready', () => this.log?.debug('redis cache connected'));
  }

  async getMany(keys: readonly string[]): Promise<Array<CachedPrediction | undefined>> {
    if (keys.length === 0) return [];
    const values = await this.client.mget(...keys);
    return values.map((v) => (v === null ? undefined : (JSON.parse(v) as CachedPrediction)));
  }

  async setMany(entries: ReadonlyArray<readonly [string, CachedPrediction]>, keepMs: number): Promise<void> {
    if (entries.length === 0) return;
    const multi = this.client.multi();
    for (const [k, v] of entries) multi.set(k, JSON.stringify(v), 'PX', Math.max(1, Math.round(keepMs)));
    await multi.exec();
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}

export interface CacheEvents {
  onResult(model: string, version: string, result: 'hit' | 'miss' | 'error', n: number): void;
}

export interface Lookup {
  /** Fresh entries (younger than the TTL), by instance position; undefined where missing. */
  fresh: Array<Prediction | undefined>;
  /** Everything found, fresh or stale, for the stale-cache fallback. */
  any: Array<CachedPrediction | undefined>;
}

export class PredictionCache {
  private failing = false;

  constructor(
    readonly store: CacheStore,
    private readonly prefix: string,
    private readonly staleKeepMs: number,
    private readonly log: Logger,
    private readonly events: CacheEvents,
  ) {}

  keysFor(versionKey: string, inputs: readonly Feature[], instances: readonly Instance[]): string[] {
    // In process no prefix: nothing else shares the LRU's key space.
    const prefix = this.store.kind === 'memory' ? '' : this.prefix;
    return instances.map((i) => cacheKey(prefix, versionKey, inputs, i));
  }

  private healthy(): void {
    if (this.failing) {
      this.failing = false;
      this.log.info({ store: this.store.kind }, 'prediction cache is back');
    }
  }

  private failed(err: unknown, model: string, version: string, n: number): void {
    this.events.onResult(model, version, 'error', n);
    if (!this.failing) {
      this.failing = true;
      this.log.warn(
        { err, store: this.store.kind },
        'prediction cache unavailable; serving without it until it recovers',
      );
    }
  }

  /** Looks up instances; a failing store reads as all misses. */
  async lookup(model: string, version: string, keys: readonly string[], ttlMs: number): Promise<Lookup> {
    let found: Array<CachedPrediction | undefined>;
    try {
      found = await this.store.getMany(keys);
      this.healthy();
    } catch (e) {
      this.failed(e, model, version, keys.length);
      return { fresh: keys.map(() => undefined), any: keys.map(() => undefined) };
    }
    const now = Date.now();
    const fresh = found.map((e) => (e && now - e.storedAt < ttlMs ? e.prediction : undefined));
    const hits = fresh.filter((f) => f !== undefined).length;
    if (hits) this.events.onResult(model, version, 'hit', hits);
    if (keys.length - hits) this.events.onResult(model, version, 'miss', keys.length - hits);
    return { fresh, any: found };
  }

  /** Counts hits answered without a lookup (the answer memo), as a lookup counts its own. */
  countHits(model: string, version: string, n: number): void {
    if (n > 0) this.events.onResult(model, version, 'hit', n);
  }

  /** Stores predictions; failures are counted and otherwise ignored. */
  async save(
    model: string,
    version: string,
    entries: ReadonlyArray<readonly [string, Prediction]>,
    ttlMs: number,
  ): Promise<void> {
    const now = Date.now();
    try {
      await this.store.setMany(
        entries.map(([k, p]) => [k, { prediction: p, storedAt: now }] as const),
        Math.max(ttlMs, this.staleKeepMs),
      );
      this.healthy();
    } catch (e) {
      this.failed(e, model, version, entries.length);
    }
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

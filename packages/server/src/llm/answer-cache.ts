// The gateway's two caches. Exact: a SHA-256 over the canonical request (route, tenant, messages, sampling
// parameters) → the answer; by default only for requests that are deterministic (temperature 0 or a
// seed). Semantic: the embedding of the prompt's last user turn (with the conversation before it hashed
// into the scope, so only the same context can match) → the nearest earlier answer whose cosine similarity
// passes the route's threshold. Both are scoped per route and tenant and expire after the route's TTL.
// The in-process default is an LRU; with Redis the entries are shared by replicas (exact: plain keys with
// PX; semantic: one hash per scope, scanned brute force — fine for the thousands of entries a scope holds).
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { ChatAnswer, ChatMessage, ChatRequest } from './types.js';

export interface CachedAnswer {
  answer: ChatAnswer;
  provider: string;
  tier: string;
  /** What the answer cost upstream: a hit saves this much. */
  costUsd: number;
  at: number;
}

export interface SemanticHit {
  entry: CachedAnswer;
  similarity: number;
}

export interface AnswerCacheBackend {
  readonly kind: 'memory' | 'redis' | 'store';
  get(key: string): Promise<CachedAnswer | undefined>;
  set(key: string, value: CachedAnswer, ttlMs: number): Promise<void>;
  /** Nearest entry of `scope` with similarity ≥ threshold. */
  nearest(scope: string, vector: number[], threshold: number): Promise<SemanticHit | undefined>;
  addVector(scope: string, vector: number[], value: CachedAnswer, ttlMs: number): Promise<void>;
  /** Drops every entry of a route (and tenant, when given); returns how many. */
  invalidate(route: string, tenant?: string): Promise<number>;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Whether a request may be answered from (and stored in) the exact cache by default. */
export const deterministic = (r: ChatRequest) => r.temperature === 0 || r.seed !== undefined;

const scopeOf = (route: string, tenant: string | undefined) => `${route}|${tenant ?? ''}`;

/** The exact cache key: route and tenant in clear (for invalidation), the request hashed. */
export function exactKey(route: string, tenant: string | undefined, r: ChatRequest): string {
  const canonical = JSON.stringify([
    r.messages.map((m) => [m.role, m.content]),
    r.maxTokens,
    r.temperature ?? null,
    r.topP ?? null,
    r.stop,
    r.seed ?? null,
    // Only when set, so keys of requests without one stay as they were.
    ...(r.responseFormat ? [r.responseFormat] : []),
  ]);
  return `x|${scopeOf(route, tenant)}|${sha(canonical)}`;
}

/** The semantic scope: route, tenant, and a hash of everything but the last user turn. */
export function semanticScope(route: string, tenant: string | undefined, messages: readonly ChatMessage[]) {
  const context = messages.slice(0, -1).map((m) => [m.role, m.content]);
  return `s|${scopeOf(route, tenant)}|${sha(JSON.stringify(context))}`;
}

/** The text whose embedding the semantic cache compares: the newest user turn. */
export const semanticText = (messages: readonly ChatMessage[]) => messages.at(-1)?.content ?? '';

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

interface VectorEntry {
  vector: number[];
  value: CachedAnswer;
  expiresAt: number;
}

export class MemoryAnswerCache implements AnswerCacheBackend {
  readonly kind = 'memory' as const;
  readonly #exact: LRUCache<string, CachedAnswer>;
  readonly #vectors = new Map<string, VectorEntry[]>();

  constructor(private readonly maxEntries: number) {
    this.#exact = new LRUCache({ max: maxEntries, ttlAutopurge: false });
  }

  async get(key: string) {
    return this.#exact.get(key);
  }
  async set(key: string, value: CachedAnswer, ttlMs: number) {
    this.#exact.set(key, value, { ttl: ttlMs });
  }
  async nearest(scope: string, vector: number[], threshold: number) {
    const list = this.#vectors.get(scope);
    if (!list) return undefined;
    const now = Date.now();
    let best: SemanticHit | undefined;
    for (const e of list) {
      if (e.expiresAt <= now) continue;
      const s = cosine(vector, e.vector);
      if (s >= threshold && (!best || s > best.similarity)) best = { entry: e.value, similarity: s };
    }
    return best;
  }
  async addVector(scope: string, vector: number[], value: CachedAnswer, ttlMs: number) {
    const now = Date.now();
    const list = (this.#vectors.get(scope) ?? []).filter((e) => e.expiresAt > now);
    list.push({ vector, value, expiresAt: now + ttlMs });
    // Bounded like the exact cache: the oldest entries of the scope go first.
    if (list.length > this.maxEntries) list.splice(0, list.length - this.maxEntries);
    this.#vectors.set(scope, list);
  }
  async invalidate(route: string, tenant?: string) {
    const prefix = tenant === undefined ? `|${route}|` : `|${scopeOf(route, tenant)}|`;
    let n = 0;
    for (const k of [...this.#exact.keys()])
      if (k.slice(1).startsWith(prefix)) {
        this.#exact.delete(k);
        n++;
      }
    for (const [k, list] of this.#vectors)
      if (k.slice(1).startsWith(prefix)) {
        n += list.length;
        this.#vectors.delete(k);
      }
    return n;
  }
}

export class RedisAnswerCache implements AnswerCacheBackend {
  readonly kind = 'redis' as const;
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async get(key: string) {
    const raw = await this.redis.get(this.prefix + key);
    return raw ? (JSON.parse(raw) as CachedAnswer) : undefined;
  }
  async set(key: string, value: CachedAnswer, ttlMs: number) {
    await this.redis.set(this.prefix + key, JSON.stringify(value), 'PX', ttlMs);
  }
  async nearest(scope: string, vector: number[], threshold: number) {
    const all = await this.redis.hgetall(this.prefix + scope);
    const now = Date.now();
    let best: SemanticHit | undefined;
    for (const raw of Object.values(all)) {
      const e = JSON.parse(raw) as VectorEntry;
      if (e.expiresAt <= now) continue;
      const s = cosine(vector, e.vector);
      if (s >= threshold && (!best || s > best.similarity)) best = { entry: e.value, similarity: s };
    }
    return best;
  }
  async addVector(scope: string, vector: number[], value: CachedAnswer, ttlMs: number) {
    const e: VectorEntry = { vector, value, expiresAt: Date.now() + ttlMs };
    const key = this.prefix + scope;
    await this.redis
      .multi()
      .hset(key, sha(JSON.stringify(vector)), JSON.stringify(e))
      .pexpire(key, ttlMs)
      .exec();
  }
  async invalidate(route: string, tenant?: string) {
    const pattern = `${this.prefix}?|${tenant === undefined ? `${route}|*` : `${scopeOf(route, tenant)}|*`}`;
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length) n += await this.redis.del(...keys);
    } while (cursor !== '0');
    return n;
  }
}

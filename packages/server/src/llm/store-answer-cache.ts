// The gateway's caches in the store (SQLite or PostgreSQL, one Kysely path): replicas that share a
// PostgreSQL database share cached answers without Redis. One table, `llm_answer_cache`: exact entries
// under their request hash, semantic entries under their scope with the prompt's embedding as float32
// bytes. A semantic lookup reads the scope's live rows and compares them here (brute force, as with
// Redis: fine for the thousands of entries one route and tenant hold). Expired rows are skipped on read
// and deleted now and then on write.
import { createHash } from 'node:crypto';
import type { Store } from '../store/index.js';
import { cosine, type AnswerCacheBackend, type CachedAnswer, type SemanticHit } from './answer-cache.js';

/** Writes between two sweeps of expired rows. */
const SWEEP_EVERY = 500;

const toBytes = (v: readonly number[]) => Buffer.from(new Float32Array(v).buffer);
// A copy: the driver's Buffer may sit at an offset that a Float32Array view cannot start at.
const fromBytes = (b: Uint8Array) => new Float32Array(Uint8Array.prototype.slice.call(b).buffer);

/** Route and tenant from a cache key or semantic scope (`x|route|tenant|hash`, `s|route|tenant|hash`). */
function owner(keyOrScope: string): { route: string; tenant: string } {
  const [, route = '', tenant = ''] = keyOrScope.split('|');
  return { route, tenant };
}

export class StoreAnswerCache implements AnswerCacheBackend {
  readonly kind = 'store' as const;
  #writes = 0;

  constructor(private readonly store: Store) {}

  async get(key: string): Promise<CachedAnswer | undefined> {
    const row = await this.store.db
      .selectFrom('llm_answer_cache')
      .select(['value', 'expires_at'])
      .where('key', '=', key)
      .executeTakeFirst();
    if (!row || this.store.codec.int(row.expires_at) <= Date.now()) return undefined;
    return JSON.parse(row.value) as CachedAnswer;
  }

  async set(key: string, value: CachedAnswer, ttlMs: number): Promise<void> {
    await this.#put(key, '', null, value, ttlMs);
  }

  async nearest(scope: string, vector: number[], threshold: number): Promise<SemanticHit | undefined> {
    const rows = await this.store.db
      .selectFrom('llm_answer_cache')
      .select(['vector', 'value'])
      .where('scope', '=', scope)
      .where('expires_at', '>', Date.now())
      .execute();
    let best: { value: string; similarity: number } | undefined;
    for (const r of rows) {
      if (!r.vector) continue;
      const s = cosine(vector, fromBytes(r.vector));
      if (s >= threshold && (!best || s > best.similarity)) best = { value: r.value, similarity: s };
    }
    return best && { entry: JSON.parse(best.value) as CachedAnswer, similarity: best.similarity };
  }

  async addVector(scope: string, vector: number[], value: CachedAnswer, ttlMs: number): Promise<void> {
    const bytes = toBytes(vector);
    const key = `${scope}|${createHash('sha256').update(bytes).digest('hex')}`;
    await this.#put(key, scope, bytes, value, ttlMs);
  }

  async invalidate(route: string, tenant?: string): Promise<number> {
    let q = this.store.db.deleteFrom('llm_answer_cache').where('route', '=', route);
    if (tenant !== undefined) q = q.where('tenant', '=', tenant);
    const r = await q.executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async #put(key: string, scope: string, vector: Buffer | null, value: CachedAnswer, ttlMs: number) {
    const expiresAt = Date.now() + ttlMs;
    const text = JSON.stringify(value);
    await this.store.db
      .insertInto('llm_answer_cache')
      .values({ key, scope, ...owner(key), vector, value: text, expires_at: expiresAt })
      .onConflict((oc) => oc.column('key').doUpdateSet({ vector, value: text, expires_at: expiresAt }))
      .execute();
    if (++this.#writes % SWEEP_EVERY === 0) await this.sweep();
  }

  /** Deletes expired rows; returns how many. */
  async sweep(now = Date.now()): Promise<number> {
    const r = await this.store.db.deleteFrom('llm_answer_cache').where('expires_at', '<=', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

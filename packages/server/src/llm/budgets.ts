// Token and spend budgets per API key, tenant, route (or overall), per minute, day or month. A request
// reserves its estimate (prompt tokens + max_tokens, priced at the dearest target of its tier) before
// the upstream call — all of its budgets at once, or none — and the reservation is reconciled with the
// provider's `usage` afterwards. Reserving the worst case is what keeps spend under the budget when many
// requests (or replicas) race: a request is let through only if its whole estimate still fits.
// Counters live in Redis when configured (one Lua script checks and adds atomically across replicas) and
// in the store otherwise (a transaction of conditional UPDATEs, the same SQL on SQLite and PostgreSQL).
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { LlmBudgetConfig } from '../config/schemas/llm.js';
import type { Store } from '../store/index.js';

export interface Amount {
  tokens: number;
  usd: number;
}

export interface Subject {
  key: string | undefined;
  tenant: string | undefined;
  route: string;
}

/** One counter a request touches: its storage key, limits, and when its window ends. */
export interface Counter {
  id: string;
  budget: LlmBudgetConfig;
  tokensLimit: number;
  usdLimit: number;
  windowEndsAt: number;
}

export type ReserveResult = { ok: true } | { ok: false; counter: Counter };

export interface CounterBackend {
  readonly kind: 'redis' | 'store';
  reserve(counters: Counter[], amount: Amount): Promise<ReserveResult>;
  /** Adds (or with negative amounts, refunds) without a limit check: the reconciliation. */
  adjust(counters: Counter[], amount: Amount): Promise<void>;
  /** Current use of a counter (dashboards, tests). */
  read(id: string): Promise<Amount>;
}

/** Start and end of the window `now` falls in (months are calendar months, UTC). */
export function windowOf(window: LlmBudgetConfig['window'], now: number): { start: number; end: number } {
  if (window === 'month') {
    const d = new Date(now);
    const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    return { start, end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
  }
  const len = window === 'minute' ? 60_000 : 86_400_000;
  const start = Math.floor(now / len) * len;
  return { start, end: start + len };
}

/** The counters a request for `subject` touches under `budgets`. */
export function countersFor(budgets: readonly LlmBudgetConfig[], subject: Subject, prefix: string, now = Date.now()) {
  const out: Counter[] = [];
  budgets.forEach((b, i) => {
    const who =
      b.scope === 'global'
        ? '*'
        : b.scope === 'key'
          ? subject.key
          : b.scope === 'tenant'
            ? subject.tenant
            : subject.route;
    if (who === undefined) return; // a key budget does not apply to requests without a key
    if (b.match && b.match !== who) return;
    const w = windowOf(b.window, now);
    out.push({
      id: `${prefix}budget:${i}:${b.scope}:${who}:${b.window}:${w.start}`,
      budget: b,
      tokensLimit: b.tokens,
      usdLimit: b.usd,
      windowEndsAt: w.end,
    });
  });
  return out;
}

// KEYS: counters. ARGV: tokens, usd, then (tokensLimit, usdLimit, ttlMs) per key. Returns 0 or the 1-based
// index of the first counter that would overflow (nothing is added then).
const RESERVE_LUA = `
local dt = tonumber(ARGV[1]); local du = tonumber(ARGV[2])
for i, k in ipairs(KEYS) do
  local lt = tonumber(ARGV[3 + (i-1)*3]); local lu = tonumber(ARGV[4 + (i-1)*3])
  local t = tonumber(redis.call('HGET', k, 't') or '0'); local u = tonumber(redis.call('HGET', k, 'u') or '0')
  if (lt > 0 and t + dt > lt) or (lu > 0 and u + du > lu + 1e-12) then return i end
end
for i, k in ipairs(KEYS) do
  redis.call('HINCRBYFLOAT', k, 't', dt); redis.call('HINCRBYFLOAT', k, 'u', du)
  redis.call('PEXPIRE', k, tonumber(ARGV[5 + (i-1)*3]))
end
return 0`;

export class RedisCounters implements CounterBackend {
  readonly kind = 'redis' as const;
  constructor(private readonly redis: Redis) {}

  async reserve(counters: Counter[], amount: Amount): Promise<ReserveResult> {
    if (counters.length === 0) return { ok: true };
    const now = Date.now();
    const args = counters.flatMap((c) => [c.tokensLimit, c.usdLimit, Math.max(1000, c.windowEndsAt - now + 60_000)]);
    const r = (await this.redis.eval(
      RESERVE_LUA,
      counters.length,
      ...counters.map((c) => c.id),
      amount.tokens,
      amount.usd,
      ...args,
    )) as number;
    return r === 0 ? { ok: true } : { ok: false, counter: counters[r - 1]! };
  }

  async adjust(counters: Counter[], amount: Amount): Promise<void> {
    if (counters.length === 0 || (amount.tokens === 0 && amount.usd === 0)) return;
    const m = this.redis.multi();
    for (const c of counters) m.hincrbyfloat(c.id, 't', amount.tokens).hincrbyfloat(c.id, 'u', amount.usd);
    await m.exec();
  }

  async read(id: string): Promise<Amount> {
    const [t, u] = await this.redis.hmget(id, 't', 'u');
    return { tokens: Number(t ?? 0), usd: Number(u ?? 0) };
  }
}

export class StoreCounters implements CounterBackend {
  readonly kind = 'store' as const;
  constructor(private readonly store: Store) {}

  async reserve(counters: Counter[], amount: Amount): Promise<ReserveResult> {
    if (counters.length === 0) return { ok: true };
    const db = this.store.db;
    const refused = Symbol('refused');
    try {
      await db.transaction().execute(async (tx) => {
        for (const c of counters) {
          await tx
            .insertInto('llm_budget_counters')
            .values({ key: c.id, tokens: 0, usd: 0, expires_at: c.windowEndsAt })
            .onConflict((oc) => oc.column('key').doNothing())
            .execute();
          // Conditional add: the row changes only when the whole estimate fits, so two racing requests
          // cannot both squeeze into the last room (PostgreSQL locks the row; SQLite serialises writers).
          let q = tx
            .updateTable('llm_budget_counters')
            .set({ tokens: sql`tokens + ${amount.tokens}`, usd: sql`usd + ${amount.usd}` })
            .where('key', '=', c.id);
          if (c.tokensLimit > 0) q = q.where(sql<boolean>`tokens + ${amount.tokens} <= ${c.tokensLimit}`);
          if (c.usdLimit > 0) q = q.where(sql<boolean>`usd + ${amount.usd} <= ${c.usdLimit + 1e-12}`);
          const r = await q.executeTakeFirst();
          if (Number(r.numUpdatedRows) === 0) throw Object.assign(new Error('budget'), { [refused]: c });
        }
      });
      return { ok: true };
    } catch (e) {
      const c = (e as Record<symbol, Counter | undefined>)[refused];
      if (c) return { ok: false, counter: c };
      throw e;
    }
  }

  async adjust(counters: Counter[], amount: Amount): Promise<void> {
    if (counters.length === 0 || (amount.tokens === 0 && amount.usd === 0)) return;
    for (const c of counters)
      await this.store.db
        .updateTable('llm_budget_counters')
        .set({ tokens: sql`tokens + ${amount.tokens}`, usd: sql`usd + ${amount.usd}` })
        .where('key', '=', c.id)
        .execute();
  }

  async read(id: string): Promise<Amount> {
    const r = await this.store.db
      .selectFrom('llm_budget_counters')
      .select(['tokens', 'usd'])
      .where('key', '=', id)
      .executeTakeFirst();
    return { tokens: Number(r?.tokens ?? 0), usd: Number(r?.usd ?? 0) };
  }

  /** Drops counters of windows that have ended. */
  async sweep(now = Date.now()): Promise<void> {
    await this.store.db.deleteFrom('llm_budget_counters').where('expires_at', '<', now).execute();
  }
}

// The spend ledger: one row per gateway request in the store (SQLite or PostgreSQL, one Kysely path),
// written off the request path in small batches, and the per-route / per-key summaries the dashboard and
// `ferry cost` read back.
import type { Logger } from 'pino';
import type { Insertable } from 'kysely';
import type { Store } from '../store/index.js';
import type { LlmLedgerTable } from '../store/database.js';

export type LedgerEntry = Insertable<LlmLedgerTable>;

export interface SpendRow {
  group: string;
  requests: number;
  upstreamCalls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  savedUsd: number;
}

/** What one cost control saved: the requests it changed and the USD it saved. */
export interface ControlSavings {
  control: 'exact cache' | 'semantic cache' | 'tiering' | 'prompt trimming';
  requests: number;
  savedUsd: number;
}

export interface LedgerSummary {
  since: number;
  /** Savings by control: each cache, tiering (a cheaper tier answered), trimmed or summarised history. */
  byControl: ControlSavings[];
  byRoute: SpendRow[];
  byKey: SpendRow[];
  byTier: SpendRow[];
  byCache: SpendRow[];
  byProvider: SpendRow[];
}

export class Ledger {
  #pending: LedgerEntry[] = [];
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly flushMs = 200,
  ) {}

  record(e: LedgerEntry): void {
    this.#pending.push(e);
    if (this.#pending.length >= 200) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), this.flushMs).unref();
  }

  /** Writes what is pending (tests and shutdown call it; otherwise it runs on a short timer). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#flushing;
    const batch = this.#pending.splice(0);
    if (batch.length === 0) return;
    this.#flushing = (async () => {
      for (let i = 0; i < batch.length; i += 100)
        await this.store.db
          .insertInto('llm_ledger')
          .values(batch.slice(i, i + 100))
          .execute();
    })().catch((err: unknown) => this.log.warn({ err, rows: batch.length }, 'ledger write failed'));
    await this.#flushing;
  }

  async #group(column: 'route' | 'key_id' | 'tier' | 'cache' | 'provider', since: number): Promise<SpendRow[]> {
    const rows = await this.store.db
      .selectFrom('llm_ledger')
      .select((eb) => [
        eb.ref(column).as('g'),
        eb.fn.countAll<number>().as('requests'),
        eb.fn.sum<number>('upstream_calls').as('calls'),
        eb.fn.sum<number>('prompt_tokens').as('pt'),
        eb.fn.sum<number>('completion_tokens').as('ct'),
        eb.fn.sum<number>('cost_usd').as('cost'),
        eb.fn.sum<number>('saved_usd').as('saved'),
      ])
      .where('ts', '>=', since)
      .groupBy(column)
      .orderBy('cost', 'desc')
      .execute();
    return rows.map((r) => ({
      group: r.g ?? '(none)',
      requests: Number(r.requests),
      upstreamCalls: Number(r.calls ?? 0),
      promptTokens: Number(r.pt ?? 0),
      completionTokens: Number(r.ct ?? 0),
      costUsd: Number(r.cost ?? 0),
      savedUsd: Number(r.saved ?? 0),
    }));
  }

  async #controls(since: number): Promise<ControlSavings[]> {
    const db = this.store.db;
    const caches = await db
      .selectFrom('llm_ledger')
      .select((eb) => ['cache', eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('saved_usd').as('saved')])
      .where('ts', '>=', since)
      .where('cache', '!=', 'none')
      .groupBy('cache')
      .execute();
    const part = async (col: 'saved_tiering_usd' | 'saved_prompt_usd') =>
      db
        .selectFrom('llm_ledger')
        .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>(col).as('saved')])
        .where('ts', '>=', since)
        .where(col, '>', 0)
        .executeTakeFirst();
    const row = (control: ControlSavings['control'], r: { n: number; saved: number | null } | undefined) => ({
      control,
      requests: Number(r?.n ?? 0),
      savedUsd: Number(r?.saved ?? 0),
    });
    return [
      row(
        'exact cache',
        caches.find((c) => c.cache === 'exact'),
      ),
      row(
        'semantic cache',
        caches.find((c) => c.cache === 'semantic'),
      ),
      row('tiering', await part('saved_tiering_usd')),
      row('prompt trimming', await part('saved_prompt_usd')),
    ];
  }

  async summary(since = 0): Promise<LedgerSummary> {
    await this.flush();
    return {
      since,
      byControl: await this.#controls(since),
      byRoute: await this.#group('route', since),
      byKey: await this.#group('key_id', since),
      byTier: await this.#group('tier', since),
      byCache: await this.#group('cache', since),
      byProvider: await this.#group('provider', since),
    };
  }
}

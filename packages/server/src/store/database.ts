// The typed shape of the store's tables, as Kysely sees them. Column names are snake_case (they are
// SQL); the TypeScript APIs built on them (e.g. the prediction log) speak camelCase.
//
// Representation rules, the same in both dialects so one code path serves both:
// - timestamps are epoch milliseconds in BIGINT columns (the PostgreSQL pool parses int8 to number);
// - JSON columns are TEXT in SQLite and JSONB in PostgreSQL: write them with `codec.json(value)` and
//   read them with `codec.parseJson(raw)` (see columns.ts), never by hand;
// - booleans are INTEGER 0/1 in SQLite and BOOLEAN in PostgreSQL: `codec.bool` / `codec.parseBool`.
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** A JSON column: written as JSON text; read back as text (SQLite) or parsed (PostgreSQL) — use the codec. */
export type JsonColumn = ColumnType<unknown, string, string>;

/** A boolean column: 0/1 in SQLite, boolean in PostgreSQL — use the codec. */
export type BoolColumn = ColumnType<unknown, number | boolean, number | boolean>;

/** Epoch milliseconds (BIGINT). */
export type EpochMsColumn = ColumnType<number, number, number>;

/** One sampled prediction (one instance in, one prediction out), kept `retentionDays` for drift detection. */
export interface PredictionLogTable {
  id: Generated<number>;
  ts: EpochMsColumn;
  model: string;
  version: string;
  input: JsonColumn;
  output: JsonColumn;
  latency_ms: number;
  /** timeout | error | circuit-open when a fallback answered; null otherwise. */
  fallback_reason: string | null;
  cache_hit: BoolColumn;
  request_id: string | null;
}

/**
 * Every table of the store. Later features add theirs here, next to their migration in
 * migrations.ts (see the plan there).
 */
export interface Database {
  prediction_log: PredictionLogTable;
  jobs: JobsTable;
  job_payloads: JobPayloadsTable;
  pipeline_runs: PipelineRunsTable;
  pipeline_run_shards: PipelineRunShardsTable;
  pipeline_chunks: PipelineChunksTable;
  pipeline_predictions: PipelinePredictionsTable;
  pipeline_rejects: PipelineRejectsTable;
  llm_ledger: LlmLedgerTable;
  llm_budget_counters: LlmBudgetCountersTable;
  llm_answer_cache: LlmAnswerCacheTable;
}

/** One cached gateway answer (llm/store-answer-cache.ts): exact (scope '') or semantic (with its vector). */
export interface LlmAnswerCacheTable {
  key: string;
  /** The semantic scope (route, tenant, context hash); '' for an exact entry. */
  scope: string;
  route: string;
  /** '' when the request named no tenant. */
  tenant: string;
  /** The prompt embedding as little-endian float32 bytes (semantic entries only). */
  vector: Buffer | null;
  /** The CachedAnswer as JSON text. */
  value: string;
  expires_at: EpochMsColumn;
}

/** One LLM gateway request (llm/ledger.ts): who asked, who answered, tokens and money. */
export interface LlmLedgerTable {
  id: Generated<number>;
  ts: EpochMsColumn;
  request_id: string | null;
  route: string;
  tier: string;
  provider: string;
  model: string;
  key_id: string | null;
  tenant: string | null;
  /** none | exact | semantic */
  cache: string;
  /** ok | error | budget */
  outcome: string;
  upstream_calls: number;
  fallbacks: number;
  escalated: number;
  prompt_tokens: number;
  cached_prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  /** What the controls saved on this request: a cache hit's upstream cost, or tiering + prompt savings. */
  saved_usd: number;
  /** Of saved_usd: a cheaper tier's answer against the route's dearest tier (migration 0013). */
  saved_tiering_usd: Generated<number>;
  /** Of saved_usd: history trimmed or summarised away, net of the summary call (migration 0013). */
  saved_prompt_usd: Generated<number>;
  latency_ms: number;
}

/** A budget counter for one subject and window when budgets are counted in the store. */
export interface LlmBudgetCountersTable {
  key: string;
  tokens: number;
  usd: number;
  expires_at: EpochMsColumn;
}

/** One run of a batch pipeline (all its shards). status: running | completed | failed. */
export interface PipelineRunsTable {
  run_id: string;
  pipeline: string;
  model: string;
  version: string;
  status: string;
  shards: number;
  chunk_rows: number;
  /** cli | schedule | api. */
  trigger: string;
  started_at: EpochMsColumn;
  finished_at: EpochMsColumn | null;
  error: string | null;
}

/** One shard of a run; a run is completed when every shard is. status: running | completed | failed. */
export interface PipelineRunShardsTable {
  run_id: string;
  shard: number;
  status: string;
  /** Chunks this shard owns, known once it has read its source to the end. */
  total_chunks: number | null;
  updated_at: EpochMsColumn;
}

/** A committed chunk: the checkpoint `--resume` continues from. Written in the same transaction as its results. */
export interface PipelineChunksTable {
  run_id: string;
  chunk: number;
  shard: number;
  rows_scored: number;
  rows_rejected: number;
  committed_at: EpochMsColumn;
}

/** A scored row, unique by (pipeline, run_id, key). */
export interface PipelinePredictionsTable {
  pipeline: string;
  run_id: string;
  key: string;
  output: JsonColumn;
  scored_at: EpochMsColumn;
}

/** A row the pipeline could not score, with why. */
export interface PipelineRejectsTable {
  run_id: string;
  /** 0-based row number in the source (its read order). */
  row_number: number;
  pipeline: string;
  key: string | null;
  reason: string;
  row: JsonColumn;
}

/** One asynchronous job (see jobs/): its document, and the SQL queue's dispatch columns. */
export interface JobsTable {
  id: string;
  model: string;
  /** The exact version resolved at submission. */
  version: string;
  /** queued | active | completed | failed | cancelled */
  state: string;
  error: JsonColumn | null;
  progress: number;
  /** Bumped on every change of the document: orders the events of a job. */
  seq: number;
  /** Runs started (including runs lost to a crashed worker). */
  attempts: number;
  /** Runs that failed with a retryable error. */
  failures: number;
  max_attempts: number;
  timeout_ms: number | null;
  run_after: EpochMsColumn;
  locked_by: string | null;
  locked_until: EpochMsColumn | null;
  cancel_requested: BoolColumn;
  idempotency_key: string | null;
  request_hash: string | null;
  callback_url: string | null;
  /** pending | delivered | failed; null without a callback or before the job ends. */
  callback_state: string | null;
  callback_attempts: number;
  callback_next_at: EpochMsColumn | null;
  callback_error: string | null;
  request_id: string | null;
  created_at: EpochMsColumn;
  started_at: EpochMsColumn | null;
  finished_at: EpochMsColumn | null;
}

/**
 * A job's input and result, apart from its row in `jobs` (migration 0011): progress and state writes
 * then rewrite a row of a few hundred bytes, never the megabytes of a large job's input.
 */
export interface JobPayloadsTable {
  job_id: string;
  input: JsonColumn;
  result: JsonColumn | null;
}

export type PredictionLogRecord = Selectable<PredictionLogTable>;
export type NewPredictionLogRecord = Insertable<PredictionLogTable>;

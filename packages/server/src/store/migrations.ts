// The store's migrations, defined in code (not files on disk) so the built dist carries them.
// Kysely's Migrator runs them in name order, records each in `kysely_migration`, and holds a lock
// while it runs, so `migrate()` is idempotent and safe to call from every process at start.
//
// Rules: never edit or rename a migration that has shipped; add a new one. Names are
// `NNNN_what`, zero-padded so they sort. Column types differ by dialect only through the helpers below.
//
// Plan (tables later features add here, each in its own migration, with its type in database.ts):
//   0002_jobs              job queue for the embedded (SQL-backed) queue: id, model, version, state,
//                          payload JSON, result JSON, error, attempts, run_after, locked_by/locked_until,
//                          webhook, created/updated ts; index (state, run_after)
//   0003_pipeline_results  batch pipeline runs, shards, committed chunks (checkpoints), predictions keyed
//                          (pipeline, run_id, key), rejects with reasons (see pipelines/)
//   0004_drift_reports     drift test results per model version and window: feature, test, statistic,
//                          p-value/score, drifted flag, window start/end, report JSON
//   0011_llm_answer_cache  the LLM gateway's exact and semantic answer caches (llm.cache.backend: store)
//   0012_job_payloads      jobs' input and result, out of the rows that progress and state writes touch
//   0013_llm_savings       the ledger splits what tiering and prompt trimming saved from the caches' savings
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import type { StoreDialect } from './store-url.js';

/** Column types that differ between SQLite and PostgreSQL. */
export function columnTypes(dialect: StoreDialect) {
  const pg = dialect === 'postgres';
  return {
    /** Auto-assigned integer key (SQLite: the rowid alias). */
    id: pg ? 'bigserial' : 'integer',
    json: pg ? 'jsonb' : 'text',
    bool: pg ? 'boolean' : 'integer',
    epochMs: 'bigint',
    double: pg ? 'double precision' : 'real',
  } as const;
}

function migrations(dialect: StoreDialect): Record<string, Migration> {
  const t = columnTypes(dialect);
  return {
    '0001_prediction_log': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('prediction_log')
          .ifNotExists()
          .addColumn('id', t.id, (c) => c.primaryKey())
          .addColumn('ts', t.epochMs, (c) => c.notNull())
          .addColumn('model', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('input', t.json, (c) => c.notNull())
          .addColumn('output', t.json, (c) => c.notNull())
          .addColumn('latency_ms', t.double, (c) => c.notNull())
          .addColumn('fallback_reason', 'text')
          .addColumn('cache_hit', t.bool, (c) => c.notNull().defaultTo(dialect === 'postgres' ? false : 0))
          .addColumn('request_id', 'text')
          .execute();
        // Drift detection reads one model version over a time window.
        await db.schema
          .createIndex('prediction_log_model_version_ts_idx')
          .ifNotExists()
          .on('prediction_log')
          .columns(['model', 'version', 'ts'])
          .execute();
        // Retention deletes by age across all models; without this it scans the table.
        await db.schema.createIndex('prediction_log_ts_idx').ifNotExists().on('prediction_log').column('ts').execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable('prediction_log').ifExists().execute();
      },
    },
    '0002_jobs': {
      // Asynchronous jobs: the job documents of both queue backends (BullMQ only dispatches), and the
      // dispatch columns of the SQL-backed queue (run_after, locked_by, locked_until).
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('jobs')
          .ifNotExists()
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('model', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('input', t.json, (c) => c.notNull())
          .addColumn('result', t.json)
          .addColumn('error', t.json)
          .addColumn('progress', t.double, (c) => c.notNull().defaultTo(0))
          .addColumn('seq', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('max_attempts', 'integer', (c) => c.notNull())
          .addColumn('timeout_ms', 'integer')
          .addColumn('run_after', t.epochMs, (c) => c.notNull())
          .addColumn('locked_by', 'text')
          .addColumn('locked_until', t.epochMs)
          .addColumn('cancel_requested', t.bool, (c) => c.notNull().defaultTo(dialect === 'postgres' ? false : 0))
          .addColumn('idempotency_key', 'text', (c) => c.unique())
          .addColumn('request_hash', 'text')
          .addColumn('callback_url', 'text')
          .addColumn('callback_state', 'text')
          .addColumn('callback_attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('callback_next_at', t.epochMs)
          .addColumn('callback_error', 'text')
          .addColumn('request_id', 'text')
          .addColumn('created_at', t.epochMs, (c) => c.notNull())
          .addColumn('started_at', t.epochMs)
          .addColumn('finished_at', t.epochMs)
          .execute();
        // The SQL queue claims the oldest runnable job: state = 'queued' and run_after <= now.
        await db.schema
          .createIndex('jobs_state_run_after_idx')
          .ifNotExists()
          .on('jobs')
          .columns(['state', 'run_after'])
          .execute();
        // GET /v1/jobs lists newest first, optionally by model.
        await db.schema
          .createIndex('jobs_created_idx')
          .ifNotExists()
          .on('jobs')
          .columns(['created_at', 'id'])
          .execute();
        await db.schema
          .createIndex('jobs_model_created_idx')
          .ifNotExists()
          .on('jobs')
          .columns(['model', 'created_at', 'id'])
          .execute();
        // Retention deletes finished jobs by age.
        await db.schema.createIndex('jobs_finished_idx').ifNotExists().on('jobs').column('finished_at').execute();
        // Webhook delivery looks for pending callbacks that are due.
        await db.schema
          .createIndex('jobs_callback_idx')
          .ifNotExists()
          .on('jobs')
          .columns(['callback_state', 'callback_next_at'])
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable('jobs').ifExists().execute();
      },
    },
    '0003_pipeline_results': {
      // Batch pipelines (pipelines/): a run, the chunks it committed (its checkpoints), its results
      // keyed by (pipeline, run, key), and the rows it rejected with their reasons.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('pipeline_runs')
          .ifNotExists()
          .addColumn('run_id', 'text', (c) => c.primaryKey())
          .addColumn('pipeline', 'text', (c) => c.notNull())
          .addColumn('model', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('shards', 'integer', (c) => c.notNull())
          .addColumn('chunk_rows', 'integer', (c) => c.notNull())
          .addColumn('trigger', 'text', (c) => c.notNull())
          .addColumn('started_at', t.epochMs, (c) => c.notNull())
          .addColumn('finished_at', t.epochMs)
          .addColumn('error', 'text')
          .execute();
        await db.schema
          .createIndex('pipeline_runs_pipeline_idx')
          .ifNotExists()
          .on('pipeline_runs')
          .columns(['pipeline', 'started_at'])
          .execute();
        await db.schema
          .createTable('pipeline_run_shards')
          .ifNotExists()
          .addColumn('run_id', 'text', (c) => c.notNull())
          .addColumn('shard', 'integer', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('total_chunks', 'integer')
          .addColumn('updated_at', t.epochMs, (c) => c.notNull())
          .addPrimaryKeyConstraint('pipeline_run_shards_pk', ['run_id', 'shard'])
          .execute();
        await db.schema
          .createTable('pipeline_chunks')
          .ifNotExists()
          .addColumn('run_id', 'text', (c) => c.notNull())
          .addColumn('chunk', 'integer', (c) => c.notNull())
          .addColumn('shard', 'integer', (c) => c.notNull())
          .addColumn('rows_scored', 'integer', (c) => c.notNull())
          .addColumn('rows_rejected', 'integer', (c) => c.notNull())
          .addColumn('committed_at', t.epochMs, (c) => c.notNull())
          .addPrimaryKeyConstraint('pipeline_chunks_pk', ['run_id', 'chunk'])
          .execute();
        await db.schema
          .createTable('pipeline_predictions')
          .ifNotExists()
          .addColumn('pipeline', 'text', (c) => c.notNull())
          .addColumn('run_id', 'text', (c) => c.notNull())
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('output', t.json, (c) => c.notNull())
          .addColumn('scored_at', t.epochMs, (c) => c.notNull())
          .addPrimaryKeyConstraint('pipeline_predictions_pk', ['pipeline', 'run_id', 'key'])
          .execute();
        await db.schema
          .createTable('pipeline_rejects')
          .ifNotExists()
          .addColumn('run_id', 'text', (c) => c.notNull())
          .addColumn('row_number', 'bigint', (c) => c.notNull())
          .addColumn('pipeline', 'text', (c) => c.notNull())
          .addColumn('key', 'text')
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('row', t.json, (c) => c.notNull())
          .addPrimaryKeyConstraint('pipeline_rejects_pk', ['run_id', 'row_number'])
          .execute();
      },
      async down(db: Kysely<any>) {
        for (const table of [
          'pipeline_rejects',
          'pipeline_predictions',
          'pipeline_chunks',
          'pipeline_run_shards',
          'pipeline_runs',
        ]) {
          await db.schema.dropTable(table).ifExists().execute();
        }
      },
    },
    '0010_llm_gateway': {
      // The LLM gateway (llm/): the spend ledger (one row per gateway request) and the budget counters used
      // when no Redis is configured (one row per budget subject and window; conditional updates keep them exact).
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('llm_ledger')
          .ifNotExists()
          .addColumn('id', t.id, (c) => c.primaryKey())
          .addColumn('ts', t.epochMs, (c) => c.notNull())
          .addColumn('request_id', 'text')
          .addColumn('route', 'text', (c) => c.notNull())
          .addColumn('tier', 'text', (c) => c.notNull())
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('model', 'text', (c) => c.notNull())
          .addColumn('key_id', 'text')
          .addColumn('tenant', 'text')
          .addColumn('cache', 'text', (c) => c.notNull())
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('upstream_calls', 'integer', (c) => c.notNull())
          .addColumn('fallbacks', 'integer', (c) => c.notNull())
          .addColumn('escalated', 'integer', (c) => c.notNull())
          .addColumn('prompt_tokens', 'integer', (c) => c.notNull())
          .addColumn('cached_prompt_tokens', 'integer', (c) => c.notNull())
          .addColumn('completion_tokens', 'integer', (c) => c.notNull())
          .addColumn('cost_usd', t.double, (c) => c.notNull())
          .addColumn('saved_usd', t.double, (c) => c.notNull())
          .addColumn('latency_ms', t.double, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('llm_ledger_ts_idx').ifNotExists().on('llm_ledger').column('ts').execute();
        await db.schema
          .createIndex('llm_ledger_route_ts_idx')
          .ifNotExists()
          .on('llm_ledger')
          .columns(['route', 'ts'])
          .execute();
        await db.schema
          .createTable('llm_budget_counters')
          .ifNotExists()
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('tokens', t.double, (c) => c.notNull())
          .addColumn('usd', t.double, (c) => c.notNull())
          .addColumn('expires_at', t.epochMs, (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable('llm_budget_counters').ifExists().execute();
        await db.schema.dropTable('llm_ledger').ifExists().execute();
      },
    },
    '0011_llm_answer_cache': {
      // The LLM gateway's exact and semantic caches in the store (llm.cache.backend: store), shared by
      // replicas on one PostgreSQL. Semantic lookups read one scope's rows; invalidation deletes by route.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('llm_answer_cache')
          .ifNotExists()
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('scope', 'text', (c) => c.notNull())
          .addColumn('route', 'text', (c) => c.notNull())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('vector', dialect === 'postgres' ? 'bytea' : 'blob')
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('expires_at', t.epochMs, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('llm_answer_cache_scope_idx')
          .ifNotExists()
          .on('llm_answer_cache')
          .columns(['scope', 'expires_at'])
          .execute();
        await db.schema
          .createIndex('llm_answer_cache_route_idx')
          .ifNotExists()
          .on('llm_answer_cache')
          .columns(['route', 'tenant'])
          .execute();
        await db.schema
          .createIndex('llm_answer_cache_expires_idx')
          .ifNotExists()
          .on('llm_answer_cache')
          .column('expires_at')
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable('llm_answer_cache').ifExists().execute();
      },
    },
    '0012_job_payloads': {
      // A job's input and result move out of its `jobs` row: SQLite rewrites a whole row (overflow pages
      // included) on every UPDATE, so each progress write of a 60,000-row job rewrote its megabytes of
      // input. The row keeps the small columns that state and progress writes touch; existing rows move.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('job_payloads')
          .ifNotExists()
          .addColumn('job_id', 'text', (c) => c.primaryKey().references('jobs.id').onDelete('cascade'))
          .addColumn('input', t.json, (c) => c.notNull())
          .addColumn('result', t.json)
          .execute();
        await db
          .insertInto('job_payloads')
          .columns(['job_id', 'input', 'result'])
          .expression(db.selectFrom('jobs').select(['id', 'input', 'result']))
          .execute();
        await db.schema.alterTable('jobs').dropColumn('input').execute();
        await db.schema.alterTable('jobs').dropColumn('result').execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable('jobs').addColumn('input', t.json).execute();
        await db.schema.alterTable('jobs').addColumn('result', t.json).execute();
        for (const col of ['input', 'result'] as const) {
          await db
            .updateTable('jobs')
            .set((eb: any) => ({
              [col]: eb.selectFrom('job_payloads').select(col).whereRef('job_payloads.job_id', '=', 'jobs.id'),
            }))
            .execute();
        }
        await db.schema.dropTable('job_payloads').ifExists().execute();
      },
    },
    '0013_llm_savings': {
      // Savings by control on the dashboard: saved_usd held only cache hits' savings; tiering and
      // prompt trimming get their own columns (saved_usd becomes the row's total). Old rows saved 0 there.
      async up(db: Kysely<any>) {
        for (const col of ['saved_tiering_usd', 'saved_prompt_usd'])
          await db.schema
            .alterTable('llm_ledger')
            .addColumn(col, t.double, (c) => c.notNull().defaultTo(0))
            .execute();
      },
      async down(db: Kysely<any>) {
        for (const col of ['saved_tiering_usd', 'saved_prompt_usd'])
          await db.schema.alterTable('llm_ledger').dropColumn(col).execute();
      },
    },
  };
}

export function migrationProvider(dialect: StoreDialect): MigrationProvider {
  const all = migrations(dialect);
  return { getMigrations: async () => all };
}

/** Names of every migration, in the order they run. */
export function migrationNames(dialect: StoreDialect = 'sqlite'): string[] {
  return Object.keys(migrations(dialect)).sort();
}

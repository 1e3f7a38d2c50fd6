// The job documents in the Kysely store (SQLite or PostgreSQL), shared by both queue backends: BullMQ
// only dispatches job ids, so a job's state, result and history read the same whichever backend ran
// it. Every write is a conditional UPDATE on the current state (and, for a worker's own outcome, on
// its lock), so a result is recorded once: a second run of the same job (a worker presumed dead that
// was not) finds the job no longer active and changes nothing. Every change bumps `seq`, which
// orders the job's events.
//
// A job's input and result live in `job_payloads`, apart from its `jobs` row: state and progress
// writes rewrite only that small row (SQLite rewrites a whole row, overflow pages included, on any
// UPDATE), and only the reads that need the input (the worker) or the result (the document) join it.
// The payload row goes with its job (ON DELETE CASCADE).
import { sql, type Kysely, type Selectable, type Transaction, type Updateable } from 'kysely';
import type { Store, Database, JobsTable } from '../store/index.js';
import type { JobDocument, JobError, JobState } from './types.js';

/** A row without input and result: listings, and what state changes return. */
export type JobListRow = Selectable<JobsTable>;
/** A row and its result: what the API shows (the input can be megabytes; nothing after the run needs it). */
export type JobDocRow = JobListRow & { result: unknown };
/** A row and its input: for the worker that runs it. */
export type JobRow = JobListRow & { input: unknown };
/** The few small columns that the event streams and the runner's progress writes need. */
export type JobStatusRow = Pick<JobListRow, 'id' | 'model' | 'seq' | 'state' | 'progress'>;

type Db = Kysely<Database> | Transaction<Database>;

/** Columns of a listing: neither the input nor the result (both grow with the job's rows). */
const LIST_COLUMNS = [
  'id',
  'model',
  'version',
  'state',
  'error',
  'progress',
  'seq',
  'attempts',
  'failures',
  'max_attempts',
  'timeout_ms',
  'run_after',
  'locked_by',
  'locked_until',
  'cancel_requested',
  'idempotency_key',
  'request_hash',
  'callback_url',
  'callback_state',
  'callback_attempts',
  'callback_next_at',
  'callback_error',
  'request_id',
  'created_at',
  'started_at',
  'finished_at',
] as const satisfies ReadonlyArray<keyof JobListRow>;
const DOC_COLUMNS = [...LIST_COLUMNS.map((c) => `jobs.${c}` as const), 'job_payloads.result'] as const;
const STATUS_COLUMNS = ['id', 'model', 'seq', 'state', 'progress'] as const;

export interface NewJob {
  id: string;
  model: string;
  version: string;
  input: unknown;
  /** `input` already serialised (a large submission's check made the text): stored as is. */
  inputJson?: string;
  maxAttempts: number;
  timeoutMs?: number;
  idempotencyKey?: string;
  requestHash?: string;
  callbackUrl?: string;
  requestId?: string;
  now: number;
}

export interface ListQuery {
  model?: string;
  /** Only jobs of these models (a key limited to them). */
  models?: readonly string[];
  state?: JobState;
  limit: number;
  cursor?: { createdAt: number; id: string };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export class JobStore {
  private readonly db: Kysely<Database>;

  constructor(private readonly store: Store) {
    this.db = store.db;
  }

  get c() {
    return this.store.codec;
  }

  /** The document of a row, for the API and webhooks. */
  toDocument(r: JobListRow & { result?: unknown }): JobDocument {
    return {
      id: r.id,
      model: r.model,
      version: r.version,
      state: r.state as JobState,
      progress: Number(r.progress),
      result: (r.result === null || r.result === undefined
        ? null
        : this.c.parseJson(r.result)) as JobDocument['result'],
      error: (r.error === null ? null : this.c.parseJson(r.error)) as JobError | null,
      attempts: this.c.int(r.attempts),
      maxAttempts: this.c.int(r.max_attempts),
      createdAt: iso(r.created_at)!,
      startedAt: iso(r.started_at),
      finishedAt: iso(r.finished_at),
      ...(this.c.parseBool(r.cancel_requested) && r.state === 'active' && { cancelRequested: true }),
      ...(r.callback_url !== null && {
        callback: {
          url: r.callback_url,
          state: r.callback_state,
          attempts: this.c.int(r.callback_attempts),
          error: r.callback_error,
        },
      }),
    };
  }

  input(r: JobRow): unknown {
    return this.c.parseJson(r.input);
  }
  cancelRequested(r: JobRow): boolean {
    return this.c.parseBool(r.cancel_requested);
  }

  /**
   * Inserts a queued job. With an idempotency key already used, nothing is inserted and the first
   * job is returned (`created: false`) — with its request hash, for the caller to compare.
   */
  async insert(j: NewJob): Promise<{ row: JobDocRow; created: boolean }> {
    const input = j.inputJson ?? this.c.json(j.input);
    const inserted = await this.db.transaction().execute(async (trx) => {
      const row = await this.insertRow(trx, j);
      if (row) await trx.insertInto('job_payloads').values({ job_id: j.id, input, result: null }).execute();
      return row;
    });
    if (inserted) return { row: { ...inserted, result: null }, created: true };
    const existing = await this.docQuery()
      .where('jobs.idempotency_key', '=', j.idempotencyKey ?? '')
      .executeTakeFirst();
    if (!existing) throw new Error('job insert ignored but no job holds its idempotency key');
    return { row: existing, created: false };
  }

  private insertRow(db: Db, j: NewJob): Promise<JobListRow | undefined> {
    return db
      .insertInto('jobs')
      .values({
        id: j.id,
        model: j.model,
        version: j.version,
        state: 'queued',
        error: null,
        progress: 0,
        seq: 0,
        attempts: 0,
        failures: 0,
        max_attempts: j.maxAttempts,
        timeout_ms: j.timeoutMs ?? null,
        run_after: j.now,
        locked_by: null,
        locked_until: null,
        cancel_requested: this.c.bool(false),
        idempotency_key: j.idempotencyKey ?? null,
        request_hash: j.requestHash ?? null,
        callback_url: j.callbackUrl ?? null,
        callback_state: null,
        callback_attempts: 0,
        callback_next_at: null,
        callback_error: null,
        request_id: j.requestId ?? null,
        created_at: j.now,
        started_at: null,
        finished_at: null,
      })
      .onConflict((oc) => oc.column('idempotency_key').doNothing())
      .returning(LIST_COLUMNS)
      .executeTakeFirst();
  }

  /** Rows joined to their result. */
  private docQuery() {
    return this.db.selectFrom('jobs').leftJoin('job_payloads', 'job_payloads.job_id', 'jobs.id').select(DOC_COLUMNS);
  }

  /** The whole job, row, input and result (a webhook's trace context; tests). */
  get(id: string): Promise<(JobRow & { result: unknown }) | undefined> {
    return this.db
      .selectFrom('jobs')
      .leftJoin('job_payloads', 'job_payloads.job_id', 'jobs.id')
      .select([...LIST_COLUMNS.map((c) => `jobs.${c}` as const), 'job_payloads.input', 'job_payloads.result'])
      .where('jobs.id', '=', id)
      .executeTakeFirst();
  }

  /** A row the worker just took, with its input (read once per run, apart from the row's writes). */
  private async withInput(row: JobListRow | undefined): Promise<JobRow | undefined> {
    if (!row) return undefined;
    const p = await this.db.selectFrom('job_payloads').select('input').where('job_id', '=', row.id).executeTakeFirst();
    return { ...row, input: p?.input ?? null };
  }

  /** The row without its input: what `GET /v1/jobs/{id}` and a stream's final event show. */
  document(id: string): Promise<JobDocRow | undefined> {
    return this.docQuery().where('jobs.id', '=', id).executeTakeFirst();
  }

  /**
   * The document for an event stream's final event, its result only when the result's JSON text is
   * at most `maxResultChars` long: the database measures it, so a large result (megabytes for a
   * 60,000-row job) is neither read nor parsed on the HTTP thread for streams that will not send it.
   */
  async finalDocument(
    id: string,
    maxResultChars: number,
  ): Promise<{ row: JobDocRow; resultOmitted: boolean } | undefined> {
    const r = await this.db
      .selectFrom('jobs')
      .leftJoin('job_payloads', 'job_payloads.job_id', 'jobs.id')
      .select(LIST_COLUMNS.map((c) => `jobs.${c}` as const))
      .select([
        sql<number | null>`length(cast(job_payloads.result as text))`.as('result_chars'),
        sql<unknown>`case when length(cast(job_payloads.result as text)) <= ${maxResultChars} then job_payloads.result end`.as(
          'result',
        ),
      ])
      .where('jobs.id', '=', id)
      .executeTakeFirst();
    if (!r) return undefined;
    const { result_chars: chars, ...row } = r;
    return { row, resultOmitted: chars !== null && Number(chars) > maxResultChars };
  }

  /** State, progress and change counter only: what event streams poll (never the input or result). */
  status(id: string): Promise<JobStatusRow | undefined> {
    return this.db.selectFrom('jobs').select(STATUS_COLUMNS).where('id', '=', id).executeTakeFirst();
  }

  /** Newest first; the cursor is the last row of the previous page. Input and result are left out. */
  async list(q: ListQuery): Promise<JobListRow[]> {
    let query = this.db.selectFrom('jobs').select(LIST_COLUMNS);
    if (q.model !== undefined) query = query.where('model', '=', q.model);
    if (q.models !== undefined) query = query.where('model', 'in', q.models.length ? [...q.models] : ['']);
    if (q.state !== undefined) query = query.where('state', '=', q.state);
    if (q.cursor) {
      const { createdAt, id } = q.cursor;
      query = query.where((eb) =>
        eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)])]),
      );
    }
    return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit).execute();
  }

  private update(id: string, set: Updateable<JobsTable>, db: Db = this.db) {
    return db
      .updateTable('jobs')
      .set(set)
      .set((eb) => ({ seq: eb('seq', '+', 1) }))
      .where('id', '=', id);
  }

  /** The SQL queue's claim: the oldest runnable job, made active under this worker's lock. */
  async claimNext(workerId: string, now: number, lockMs: number): Promise<JobRow | undefined> {
    for (let round = 0; round < 3; round++) {
      const candidates = await this.db
        .selectFrom('jobs')
        .select('id')
        .where('state', '=', 'queued')
        .where('run_after', '<=', now)
        .orderBy('run_after')
        .orderBy('created_at')
        .limit(8)
        .execute();
      if (candidates.length === 0) return undefined;
      for (const { id } of candidates) {
        // Another worker may claim the same row between the select and here; only one update matches.
        const row = await this.update(id, { state: 'active', locked_by: workerId, locked_until: now + lockMs })
          .set((eb) => ({ attempts: eb('attempts', '+', 1), started_at: eb.fn.coalesce('started_at', sql.lit(now)) }))
          .where('state', '=', 'queued')
          .where('run_after', '<=', now)
          .returning(LIST_COLUMNS)
          .executeTakeFirst();
        if (row) return this.withInput(row);
      }
    }
    return undefined;
  }

  /** BullMQ delivered this id: make it active (again, after a crashed run) unless it already ended. */
  async markActive(id: string, workerId: string, now: number, lockMs: number): Promise<JobRow | undefined> {
    const row = await this.update(id, { state: 'active', locked_by: workerId, locked_until: now + lockMs })
      .set((eb) => ({ attempts: eb('attempts', '+', 1), started_at: eb.fn.coalesce('started_at', sql.lit(now)) }))
      .where('state', 'in', ['queued', 'active'])
      .returning(LIST_COLUMNS)
      .executeTakeFirst();
    return this.withInput(row);
  }

  /** Extends this worker's lock on its active jobs (SQL queue heartbeat). */
  async renew(ids: string[], workerId: string, until: number): Promise<void> {
    if (ids.length === 0) return;
    await this.db
      .updateTable('jobs')
      .set({ locked_until: until })
      .where('id', 'in', ids)
      .where('locked_by', '=', workerId)
      .where('state', '=', 'active')
      .execute();
  }

  /** Active jobs whose lock ran out (their worker died) go back to the queue. */
  async reclaimExpired(now: number): Promise<number> {
    const r = await this.db
      .updateTable('jobs')
      .set({ state: 'queued', locked_by: null, locked_until: null, run_after: now })
      .set((eb) => ({ seq: eb('seq', '+', 1) }))
      .where('state', '=', 'active')
      .where('locked_until', '<', now)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** Returns only the small columns: a progress write must not read the job's input or result back. */
  async setProgress(id: string, workerId: string, progress: number): Promise<JobStatusRow | undefined> {
    return this.update(id, { progress })
      .where('state', '=', 'active')
      .where('locked_by', '=', workerId)
      .returning(STATUS_COLUMNS)
      .executeTakeFirst();
  }

  /** Records the result once: only an active job completes, and its result is written with its state. */
  complete(id: string, result: unknown, now: number): Promise<JobListRow | undefined> {
    const json = this.c.json(result);
    return this.db.transaction().execute(async (trx) => {
      const row = await this.finish(id, undefined, { state: 'completed', error: null, progress: 1 }, now, false, trx);
      if (row) await trx.updateTable('job_payloads').set({ result: json }).where('job_id', '=', id).execute();
      return row;
    });
  }

  fail(
    id: string,
    workerId: string | undefined,
    error: JobError,
    now: number,
    countFailure: boolean,
  ): Promise<JobListRow | undefined> {
    return this.finish(id, workerId, { state: 'failed', error: this.c.json(error) }, now, countFailure);
  }

  cancelActive(id: string, workerId: string, now: number): Promise<JobListRow | undefined> {
    return this.finish(id, workerId, { state: 'cancelled' }, now);
  }

  private finish(
    id: string,
    workerId: string | undefined,
    set: Updateable<JobsTable>,
    now: number,
    countFailure = false,
    db: Db = this.db,
  ): Promise<JobListRow | undefined> {
    let q = this.update(id, { ...set, finished_at: now, locked_by: null, locked_until: null }, db)
      .set(() => ({
        callback_state: sql<string | null>`case when callback_url is null then null else 'pending' end`,
        callback_next_at: sql<number | null>`case when callback_url is null then null else cast(${now} as bigint) end`,
      }))
      .where('state', '=', 'active');
    if (countFailure) q = q.set((eb) => ({ failures: eb('failures', '+', 1) }));
    if (workerId !== undefined) q = q.where('locked_by', '=', workerId);
    // Not the result: the runner only needs the state; the API reads the result when asked.
    return q.returning(LIST_COLUMNS).executeTakeFirst();
  }

  /** A retryable failure (or a run handed back at shutdown): queued again, runnable at `runAfter`. */
  requeue(
    id: string,
    workerId: string,
    runAfter: number,
    error: JobError | null,
    countFailure: boolean,
  ): Promise<JobListRow | undefined> {
    let q = this.update(id, {
      state: 'queued',
      run_after: runAfter,
      locked_by: null,
      locked_until: null,
      ...(error && { error: this.c.json(error) }),
    })
      .where('state', '=', 'active')
      .where('locked_by', '=', workerId);
    // A retry counts a failure; a hand-back at shutdown undoes the run's attempt (nothing went wrong).
    q = countFailure
      ? q.set((eb) => ({ failures: eb('failures', '+', 1) }))
      : q.set((eb) => ({ attempts: eb('attempts', '-', 1) }));
    return q.returning(LIST_COLUMNS).executeTakeFirst();
  }

  /** Cancels a queued job at once; an active one is asked to stop (its worker checks between chunks). */
  async cancel(id: string, now: number): Promise<{ row: JobDocRow; immediate: boolean } | undefined> {
    const queued = await this.update(id, { state: 'cancelled', finished_at: now })
      .set(() => ({
        callback_state: sql<string | null>`case when callback_url is null then null else 'pending' end`,
        callback_next_at: sql<number | null>`case when callback_url is null then null else cast(${now} as bigint) end`,
      }))
      .where('state', '=', 'queued')
      .returning(LIST_COLUMNS)
      .executeTakeFirst();
    // Only a completed job has a result: a queued or active one has none to read.
    if (queued) return { row: { ...queued, result: null }, immediate: true };
    const active = await this.update(id, { cancel_requested: this.c.bool(true) })
      .where('state', '=', 'active')
      .returning(LIST_COLUMNS)
      .executeTakeFirst();
    if (active) return { row: { ...active, result: null }, immediate: false };
    return undefined;
  }

  async isCancelRequested(id: string): Promise<boolean> {
    const r = await this.db.selectFrom('jobs').select('cancel_requested').where('id', '=', id).executeTakeFirst();
    return r ? this.c.parseBool(r.cancel_requested) : true;
  }

  /** Queued jobs due since before `before` (at most `limit`): with Redis, ones its queue may have lost. */
  async queuedDueBefore(before: number, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('jobs')
      .select('id')
      .where('state', '=', 'queued')
      .where('run_after', '<', before)
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /** Removes a job that was never dispatched, so that the client's retry starts clean. */
  async remove(id: string): Promise<void> {
    await this.db.deleteFrom('jobs').where('id', '=', id).execute();
  }

  /** Removes finished jobs older than the retention (their payload rows go with them). */
  async deleteFinishedBefore(before: number): Promise<number> {
    const r = await this.db
      .deleteFrom('jobs')
      .where('finished_at', '<', before)
      .where('state', 'in', ['completed', 'failed', 'cancelled'])
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /** Queue lengths of the SQL queue: runnable, delayed (retry backoff) and active jobs. */
  async lengths(now: number): Promise<{ waiting: number; delayed: number; active: number }> {
    const rows = await this.db
      .selectFrom('jobs')
      .select((eb) => [
        eb.fn.sum<number>(sql`case when state = 'queued' and run_after <= ${now} then 1 else 0 end`).as('waiting'),
        eb.fn.sum<number>(sql`case when state = 'queued' and run_after > ${now} then 1 else 0 end`).as('delayed'),
        eb.fn.sum<number>(sql`case when state = 'active' then 1 else 0 end`).as('active'),
      ])
      .where('state', 'in', ['queued', 'active'])
      .executeTakeFirst();
    const n = (v: unknown) => (v === null || v === undefined ? 0 : this.c.int(v));
    return { waiting: n(rows?.waiting), delayed: n(rows?.delayed), active: n(rows?.active) };
  }

  // --- webhook delivery -------------------------------------------------------------------------

  dueCallbacks(now: number, limit: number): Promise<JobDocRow[]> {
    return this.docQuery()
      .where('jobs.callback_state', '=', 'pending')
      .where('jobs.callback_next_at', '<=', now)
      .orderBy('jobs.callback_next_at')
      .limit(limit)
      .execute();
  }

  /** Takes one delivery attempt: only one process wins a due callback. */
  async claimCallback(row: JobDocRow, leaseUntil: number): Promise<boolean> {
    const r = await this.db
      .updateTable('jobs')
      .set({ callback_next_at: leaseUntil })
      .set((eb) => ({ callback_attempts: eb('callback_attempts', '+', 1) }))
      .where('id', '=', row.id)
      .where('callback_state', '=', 'pending')
      .where('callback_next_at', '=', row.callback_next_at)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async callbackOutcome(
    id: string,
    state: 'pending' | 'delivered' | 'failed',
    nextAt: number | null,
    error: string | null,
  ): Promise<void> {
    await this.db
      .updateTable('jobs')
      .set({ callback_state: state, callback_next_at: nextAt, callback_error: error })
      .where('id', '=', id)
      .execute();
  }
}

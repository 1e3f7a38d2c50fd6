// The `jobs:` section of the server config (referenced from config/schema.ts). Units are in the
// names; defaults are what a single-node install wants, the comments say when to change them.
import { Type, type Static } from '@sinclair/typebox';

export const JobsConfigSchema = Type.Object(
  {
    /** Run job workers in this process. `ferry serve --no-workers` turns it off (API-only node). */
    workers: Type.Boolean({ default: true }),
    /** BullMQ queue name (Redis keys are `<prefix>:<queueName>:*`); also the SQL queue's label. */
    queueName: Type.String({ default: 'ferry-jobs', pattern: '^[A-Za-z0-9_.-]{1,100}$' }),
    /** BullMQ key prefix. KEDA's redis scaler watches the list `<prefix>:<queueName>:wait`. */
    prefix: Type.String({ default: 'ferry', pattern: '^[A-Za-z0-9_.-]{1,100}$' }),
    /** Jobs one worker process runs at once (they share the model's dynamic batcher). */
    concurrency: Type.Integer({ minimum: 1, maximum: 256, default: 4 }),
    /** Failed runs a job may have before it is `failed`; errors that cannot succeed on retry fail at once. */
    attempts: Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
    /** Retry n waits backoffBaseMs × 2^(n-1). */
    backoffBaseMs: Type.Integer({ minimum: 1, default: 1000 }),
    /** A worker that holds a job this long without renewing its lock (crashed, SIGKILLed) loses it. */
    lockDurationMs: Type.Integer({ minimum: 500, default: 30_000 }),
    /** How often lost jobs are looked for and handed back to the queue. */
    stalledIntervalMs: Type.Integer({ minimum: 100, default: 15_000 }),
    /** Runs a job may lose to crashed workers before it is failed (a job that kills its worker every time). */
    maxStalls: Type.Integer({ minimum: 0, maximum: 100, default: 3 }),
    /** SQL queue: how often an idle worker looks for work (jobs submitted in-process wake it at once). */
    pollIntervalMs: Type.Integer({ minimum: 10, default: 250 }),
    /** Rows run per inference call; progress is reported after each chunk, and cancellation is checked. */
    chunkSize: Type.Integer({ minimum: 1, maximum: 100_000, default: 64 }),
    /** Finished jobs (completed, failed, cancelled) and their results are kept this long, then removed. */
    retentionSeconds: Type.Integer({ minimum: 1, default: 7 * 24 * 3600 }),
    /** Submissions with at least this many instances are checked in a worker thread, off the HTTP thread. */
    offThreadRows: Type.Integer({ minimum: 1, default: 2000 }),
    /**
     * Tensor elements (rows × elements per row) up to which every row of a submission is preprocessed
     * when it is checked; above it the rows are checked against the contract and one row is preprocessed
     * (its tensor size must fit limits.maxTensorElements). 16 M float32 elements are 64 MB.
     */
    submitEncodeBudget: Type.Integer({ minimum: 0, default: 16_000_000 }),
    /** Instances one job may carry (the synchronous limit is limits.maxInstances). */
    maxInstances: Type.Integer({ minimum: 1, default: 100_000 }),
    /**
     * Behind a proxy that sets `X-Request-Id` on every request it forwards (deploy/nginx does, with
     * `$request_id`, overwriting the client's): a submission without an Idempotency-Key uses that id as
     * its key, so the proxy's own retry of a POST on the other replica (nginx `proxy_next_upstream …
     * non_idempotent`) returns the first job instead of creating a second. Off by default: without such
     * a proxy the header is the client's to choose.
     */
    proxyRequestIdempotency: Type.Boolean({ default: false }),
    /** `close()` waits this long for active jobs before handing them back to the queue. */
    shutdownGraceMs: Type.Integer({ minimum: 0, default: 10_000 }),
    /** Job event streams (`GET /v1/jobs/{id}/events`): bounded, one store poller per watched job. */
    events: Type.Object(
      {
        /** Open event streams in one server process, all jobs together; past it a new stream is 429. */
        maxStreams: Type.Integer({ minimum: 1, default: 1000 }),
        /** Open event streams on one job. */
        maxPerJob: Type.Integer({ minimum: 1, default: 100 }),
        /** Open event streams of one API key, or (no key) one client address. */
        maxPerClient: Type.Integer({ minimum: 1, default: 100 }),
        /** How often a watched job's state is read from the store: one small read per job, not per stream. */
        pollIntervalMs: Type.Integer({ minimum: 50, default: 1000 }),
        /** One job's progress reaches its watchers at most this often (state changes go at once). */
        minProgressIntervalMs: Type.Integer({ minimum: 0, default: 250 }),
        /** A keep-alive comment this often on an idle stream. */
        keepAliveMs: Type.Integer({ minimum: 1000, default: 15_000 }),
        /** The final event carries the result up to this size; larger: `resultOmitted: true`, GET the job. */
        maxFinalEventBytes: Type.Integer({ minimum: 1024, default: 1_048_576 }),
      },
      { additionalProperties: false, default: {} },
    ),
    webhooks: Type.Object(
      {
        /**
         * Callback URLs a job may name: each entry is a URL prefix (`https://hooks.example.com/ferry/`),
         * matched on scheme, host, port and path. Empty (the default) = no callbacks allowed.
         */
        allow: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        /**
         * Standard Webhooks secret (`whsec_<base64>`; any other string is used as raw key bytes) that signs
         * each callback (`webhook-id`, `webhook-timestamp`, `webhook-signature`); empty = unsigned.
         */
        secret: Type.String({ default: '' }),
        /** Secrets being rotated out: each also signs every callback until removed (docs/webhooks.md). */
        previousSecrets: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        timeoutMs: Type.Integer({ minimum: 1, default: 5000 }),
        maxAttempts: Type.Integer({ minimum: 1, maximum: 50, default: 6 }),
        /** Delivery retry n waits backoffMs × 2^(n-1). */
        backoffMs: Type.Integer({ minimum: 1, default: 1000 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export type JobsConfig = Static<typeof JobsConfigSchema>;

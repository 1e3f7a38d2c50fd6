// The server's one typed configuration. Sources merge as defaults < ferry.config.yaml < FERRY_*
// environment < CLI flags; the result is validated once at start, frozen and passed down.
import { Type, type Static } from '@sinclair/typebox';
import { availableParallelism } from 'node:os';
import { StoreConfigSchema } from './schemas/store.js';
import { PredictionLogConfigSchema } from './schemas/prediction-log.js';
import { AlertsConfigSchema } from './schemas/alerts.js';
import { GenerationConfigSchema } from './schemas/generation.js';
import { WebConfigSchema } from './schemas/web.js';
import { JobsConfigSchema } from './schemas/jobs.js';
import { AuthConfigSchema } from './schemas/auth.js';
import { PipelinesConfigSchema } from './schemas/pipelines.js';
import { StreamingConfigSchema } from './schemas/streaming.js';
import { LifecycleConfigSchema } from './schemas/lifecycle.js';
import { GrpcConfigSchema } from './schemas/grpc.js';
import { LlmConfigSchema } from './schemas/llm.js';

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: '0.0.0.0' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
        /** Largest request body accepted, in bytes. */
        bodyLimitBytes: Type.Integer({ minimum: 1024, default: 8 * 1024 * 1024 }),
        /** How long shutdown waits for in-flight requests. */
        shutdownGraceMs: Type.Integer({ minimum: 0, default: 10_000 }),
        /** A client must send its complete request headers within this time, or the connection is closed (408). */
        headersTimeoutMs: Type.Integer({ minimum: 100, default: 10_000 }),
        /**
         * A client must send its complete request (headers and body) within this time (408). Responses are
         * not limited by it: streams and long predictions run as long as they need.
         */
        requestTimeoutMs: Type.Integer({ minimum: 100, default: 30_000 }),
        /**
         * An idle keep-alive connection is closed after this time. Keep it longer than the idle timeout of
         * the proxy in front (nginx `keepalive_timeout` upstream, AWS ALB 60 s), so the proxy closes first.
         */
        keepAliveTimeoutMs: Type.Integer({ minimum: 100, default: 72_000 }),
        /** How often the timeouts above are checked (Node checks every connection on this interval). */
        timeoutCheckIntervalMs: Type.Integer({ minimum: 10, default: 1000 }),
        /**
         * Open connections at most; a connection past it is answered 503 `server-overloaded` with
         * Retry-After and closed, before any of its bytes are read. 0 = 80 % of the process's
         * file-descriptor limit (capped at 20,000).
         */
        maxConnections: Type.Integer({ minimum: 0, default: 0 }),
        /**
         * Serve `POST /v1/models/:model[/versions/:version]/predict` with a JSON body on the predict lane:
         * straight from Node's request event, with the same checks, answers, headers and metrics as the
         * route, but none of Fastify's per-request lifecycle (docs/architecture.md, "The predict lane"). Any
         * request the lane does not take (other content types, SSE, CORS, rate limits, tracing, debug
         * logging) goes through Fastify as before. false: every request goes through Fastify.
         */
        predictLane: Type.Boolean({ default: true }),
        /**
         * A second port that answers only /healthz and /readyz, from a thread of its own, so probes are
         * answered at once while the serving loop is saturated (docs/production.md#health-probes). -1 = off,
         * 0 = any free port. Point Kubernetes probes here.
         */
        healthPort: Type.Integer({ minimum: -1, maximum: 65535, default: -1 }),
        /**
         * On the health port: liveness fails (503) once the serving event loop has not run for this long. A
         * busy loop stays live; a hung one is restarted.
         */
        livenessMaxStallMs: Type.Integer({ minimum: 100, default: 10_000 }),
        /**
         * Serving processes sharing the port (node:cluster), each with its own HTTP loop and model workers
         * (`runtime.workers` split between them when unset). 1 = one process, no primary.
         */
        processes: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
      },
      { additionalProperties: false, default: {} },
    ),
    models: Type.Object(
      {
        /** The model repository: `<dir>/<name>/<semver>/ferry.yaml`. */
        dir: Type.String({ default: 'models' }),
        /** Load only these models (all when empty). */
        only: Type.Array(Type.String(), { default: [] }),
        /**
         * Rollout policy per model, the same keys as models/<name>/aliases.yaml (stable, canary, shadow,
         * deprecated, other aliases); checked against the model's versions when it loads. A model takes its
         * policy from one place: both here and in its aliases.yaml refuses the start or reload (docs/rollout.md).
         */
        rollout: Type.Record(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }), Type.Unknown(), { default: {} }),
        /**
         * What a version that fails to load or warm does to the server. Always: that version is `failed` with its
         * reason in /readyz and /v1/models, answers 503 `model-not-ready`, and every other version serves.
         * `fail-readiness` (default): /readyz and /v2/health/ready stay 503 while a version is failed (a rollout
         * halts, the replicas already serving keep their traffic). `serve-others`: readiness ignores failed
         * versions (ready once every other version is warm, and at least one is). `exit`: `ferry serve` and
         * `ferry worker` refuse to start, and `server.loaded` rejects.
         */
        onLoadFailure: Type.Union(
          [Type.Literal('fail-readiness'), Type.Literal('serve-others'), Type.Literal('exit')],
          { default: 'fail-readiness' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    runtime: Type.Object(
      {
        /**
         * The CPUs this process plans for. 0 = those it may run on (its CPU affinity, as a cpuset or
         * `taskset` sets it); set it to the container's CPU limit when that limit is a quota, which the
         * affinity does not show. On 1, an `auto` model's loaded batches also run on the main thread.
         */
        cores: Type.Integer({ minimum: 0, maximum: 1024, default: 0 }),
        /** Worker threads that hold ONNX Runtime sessions. 0 = one per core (`runtime.cores`). */
        workers: Type.Integer({ minimum: 0, maximum: 256, default: 0 }),
        intraOpThreads: Type.Integer({ minimum: 0, maximum: 256, default: 1 }),
        interOpThreads: Type.Integer({ minimum: 0, maximum: 256, default: 1 }),
        graphOptimizationLevel: Type.Union(
          [Type.Literal('disabled'), Type.Literal('basic'), Type.Literal('extended'), Type.Literal('all')],
          { default: 'all' },
        ),
        executionProviders: Type.Array(Type.String(), { default: ['cpu'] }),
        /** Warm-up inferences per model version before it counts as ready. */
        warmupRuns: Type.Integer({ minimum: 0, maximum: 100, default: 3 }),
        /**
         * `placement: auto` (the default): the longest a batch may be expected to run on the main thread
         * (its rows × the one-row run measured there at warm-up). A model whose one-row run is longer
         * stays in the worker threads only; 0 turns main-thread runs off for every `auto` model.
         */
        inlineMaxRunUs: Type.Integer({ minimum: 0, maximum: 100_000, default: 500 }),
      },
      { additionalProperties: false, default: {} },
    ),
    limits: Type.Object(
      {
        maxInstances: Type.Integer({ minimum: 1, default: 1024 }),
        maxTensorElements: Type.Integer({ minimum: 1, default: 4_000_000 }),
        maxStringLength: Type.Integer({ minimum: 1, default: 1_000_000 }),
        /** Image decodes running at once in the process (all routes and jobs together). */
        maxConcurrentImageDecodes: Type.Integer({ minimum: 1, default: 2 }),
        /** Decoded pixels in flight at once (an RGB pixel is 3 bytes); an image larger than this decodes alone. */
        maxDecodedPixelsInFlight: Type.Integer({ minimum: 1, default: 48_000_000 }),
        /** Nesting of `[` and `{` a JSON body may have; deeper bodies are refused (400) before they are parsed. */
        maxJsonDepth: Type.Integer({ minimum: 2, maximum: 1000, default: 64 }),
      },
      { additionalProperties: false, default: {} },
    ),
    cache: Type.Object(
      {
        /** Memory the in-process prediction cache may hold (embedded default, when no Redis URL is set). */
        maxBytes: Type.Integer({ minimum: 0, default: 64 * 1024 * 1024 }),
        /** How long an expired entry is kept for the `stale-cache` fallback. */
        staleTtlSeconds: Type.Integer({ minimum: 0, default: 24 * 3600 }),
        keyPrefix: Type.String({ default: 'ferry:cache:' }),
        /**
         * Memory for the answer memo: whole v1 answers of caching models, by request body, so a body sent
         * again is answered without parsing or validating it (docs/production.md, "Prediction cache"). 0 = off.
         */
        answerMemoMaxBytes: Type.Integer({ minimum: 0, default: 16 * 1024 * 1024 }),
      },
      { additionalProperties: false, default: {} },
    ),
    redis: Type.Object(
      {
        /** Redis for the shared prediction cache (and job queue); empty = embedded defaults. Also read from REDIS_URL.
         */
        url: Type.String({ default: '' }),
        /** A cache command slower than this counts as a cache failure; the prediction is served without the cache. */
        commandTimeoutMs: Type.Integer({ minimum: 1, default: 200 }),
      },
      { additionalProperties: false, default: {} },
    ),
    inference: Type.Object(
      {
        /** Timeout when neither the request (Ferry-Timeout-Ms) nor the model (timeoutMs) sets one. */
        defaultTimeoutMs: Type.Integer({ minimum: 1, default: 30_000 }),
        /** Queue bound per model version when its manifest sets none (requests). */
        defaultMaxQueueDepth: Type.Integer({ minimum: 1, default: 2048 }),
        /** Consecutive failures that open a model's circuit breaker, and how long it stays open. */
        breakerFailures: Type.Integer({ minimum: 1, default: 5 }),
        breakerCoolDownMs: Type.Integer({ minimum: 1, default: 10_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** The store: embedded SQLite by default, PostgreSQL with DATABASE_URL (or store.url). */
    store: StoreConfigSchema,
    predictionLog: PredictionLogConfigSchema,
    monitoring: Type.Object(
      {
        /** Window of recent predictions compared with each version's reference data. */
        driftWindowSeconds: Type.Integer({ minimum: 1, default: 24 * 3600 }),
        /** How often drift is evaluated in the background (updating the drift gauges); 0 = only on request. */
        driftIntervalSeconds: Type.Integer({ minimum: 0, default: 300 }),
        /** Fewer logged predictions than this in the window: no verdict. */
        driftMinSamples: Type.Integer({ minimum: 1, default: 30 }),
        /** Share of drifted columns from which a dataset counts as drifted. */
        datasetDriftShare: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.5 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Alert rules and the webhook they post to (off while webhookUrl is empty). */
    alerts: AlertsConfigSchema,
    /** Generative models at /openai/v1: decode workers, concurrency, stream backpressure. */
    generation: GenerationConfigSchema,
    /** Dashboard at `/` and the monitoring time series behind its charts. */
    web: WebConfigSchema,
    /** Asynchronous jobs: queue, workers, retries, retention, webhooks (docs/jobs.md). */
    jobs: JobsConfigSchema,
    /** API keys and scopes, rate limits, CORS (docs/security.md). */
    auth: AuthConfigSchema,
    /** Batch pipelines by name: source, model, key, sink, schedule (see docs/pipelines.md). */
    pipelines: PipelinesConfigSchema,
    /** WebSocket streaming sessions and SSE: bounds, idle and backpressure limits, VAD overrides. */
    streaming: StreamingConfigSchema,
    /** Graceful shutdown: drain delay and stream grace (the deadline is server.shutdownGraceMs). */
    lifecycle: LifecycleConfigSchema,
    grpc: GrpcConfigSchema,
    /** The LLM gateway at /openai/v1: providers, routes, caches, budgets (docs/llm-gateway.md). */
    llm: LlmConfigSchema,
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type FerryConfig = Static<typeof ConfigSchema>;

/** Resolves `runtime.cores: 0` to the CPUs the process may run on (its affinity). */
export function coreCount(cfg: FerryConfig): number {
  return cfg.runtime.cores > 0 ? cfg.runtime.cores : Math.max(1, availableParallelism());
}

/** Resolves `runtime.workers: 0` to one per core. */
export function workerCount(cfg: FerryConfig): number {
  return cfg.runtime.workers > 0 ? cfg.runtime.workers : coreCount(cfg);
}

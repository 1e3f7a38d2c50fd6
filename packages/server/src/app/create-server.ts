// Assembles a Ferry server from a config: repository, metrics, worker pool, model service, HTTP app.
// The HTTP port opens first (liveness answers at once), models load and warm in the background,
// and readiness turns true only when every version has run a real inference.
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { coreCount, workerCount, type ConfigSources, type FerryConfig } from '../config/index.js';
import { buildApp, type AppOptions } from '../http/index.js';
import { Metrics } from '../monitoring/index.js';
import { Repository } from '../serving/repository/index.js';
import { ModelService } from '../serving/index.js';
import { MemoryStore, PredictionCache, RedisStore } from '../serving/cache/index.js';
import { createStore, storeOptionsFromConfig, type Store } from '../store/index.js';
import {
  PredictionLog,
  predictionLogOptionsFromConfig,
  storeRowWriter,
  ThreadRowWriter,
} from '../monitoring/prediction-log/index.js';
import { DriftMonitor } from '../monitoring/drift-monitor.js';
import { AlertManager, type AlertObservation } from '../monitoring/alerting.js';
import { ObservationCollector } from '../monitoring/observations.js';
import { GenerationMetrics, GenerationService } from '../generation/index.js';
import { createLifecycle, type Lifecycle } from '../lifecycle/index.js';
import { closeHttp } from '../http/lifecycle-hooks.js';
import { startHealthLane, type HealthLane } from '../http/health-lane/index.js';
import { createJobsRuntime, type JobsRuntime } from '../jobs/index.js';
import { ModelManager, RolloutManager } from '../rollout/index.js';
import { ConfigReloader, configPolicies, type ConfigReloadReport } from '../rollout/config-reload.js';
import { resolve as resolvePath } from 'node:path';
import { createPipelines, validatePipelines, type AttachedPipelines } from '../pipelines/index.js';
import { KeyRing, readKeysFile } from '../auth/index.js';
import { createRateLimitRedis } from '../auth/rate-limit-store.js';
import { TimeseriesRecorder } from '../monitoring/timeseries.js';
import { labelChildren } from '../metrics/label-children.js';
import { createStreamingService, type StreamingService } from '../streaming/index.js';
import { createGrpcServer, type GrpcListener } from '../grpc/index.js';
import { SERVER_VERSION } from '../version.js';
import { startTracing, traceLogFields, tracingRequested } from '../telemetry/index.js';
import { createLlmRuntime, type LlmGateway } from '../llm/index.js';

export interface FerryServer {
  readonly config: FerryConfig;
  readonly app: FastifyInstance;
  readonly service: ModelService;
  readonly repository: Repository;
  readonly metrics: Metrics;
  readonly cache: PredictionCache;
  readonly store: Store;
  readonly predictionLog: PredictionLog | undefined;
  readonly drift: DriftMonitor;
  readonly generation: GenerationService;
  readonly jobs: JobsRuntime;
  readonly rollout: RolloutManager;
  readonly manager: ModelManager;
  readonly pipelines: AttachedPipelines;
  /** WebSocket stream sessions: limits, open sessions, batchers (tests read them). */
  readonly streaming: StreamingService;
  /** The recorder behind /v1/metrics/timeseries (tests call `sample()` instead of waiting). */
  readonly timeseries: TimeseriesRecorder;
  /** The live API keys, replaced by config reloads. */
  readonly keyRing: KeyRing;
  /** The LLM gateway (routes of `llm.routes` at /openai/v1). */
  readonly llm: LlmGateway;
  readonly log: Logger;
  /** Draining flag and drain handlers (streams, job workers) run on close/SIGTERM. */
  readonly lifecycle: Lifecycle;
  /** Re-reads API keys and rollout blocks (SIGHUP, config:reload, --watch); see rollout/config-reload.ts. */
  readonly configReloader: ConfigReloader;
  /** Re-reads keys and rollout blocks and reloads the repository; a refused config is in `configError`. */
  reloadConfig(): Promise<ConfigReloadReport>;
  /**
   * Resolves when every model version has settled: loaded and warmed, or `failed` with its reason
   * (`service.states()`), the others serving. Rejects only with `models.onLoadFailure: exit`.
   */
  readonly loaded: Promise<void>;
  /** The Open Inference Protocol over gRPC; absent unless `grpc.port` is set. */
  readonly grpc: GrpcListener | undefined;
  /**
   * Starts listening (HTTP, the health lane and gRPC when configured); returns the bound addresses (port 0
   * picks a free one).
   */
  listen(): Promise<{ host: string; port: number; url: string; grpcPort?: number; healthPort?: number }>;
  close(): Promise<void>;
}

/** Paths pino censors: credentials in request headers, and secret-bearing fields wherever they are logged. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["sec-websocket-protocol"]',
  'headers.authorization',
  '*.headers.authorization',
  '*.apiKey',
  '*.password',
  '*.secret',
  '*.sha256',
  'auth.keys',
  '*.auth.keys',
];

export function createLogger(cfg: FerryConfig, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level: cfg.log.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // With tracing on, every line written inside a traced request carries its trace_id and span_id.
    ...(tracingRequested() && { mixin: traceLogFields }),
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Evaluates the alert rules every `alerts.intervalSeconds` over the latest drift verdicts and the interval's latency
 * and rates.
 */
/** An in-memory SQLite store: no other connection (a writer thread's) can see it. */
function isMemoryStore(store: Store): boolean {
  return store.dialect === 'sqlite' && store.location === 'sqlite::memory:';
}

function startAlerts(
  config: FerryConfig,
  repository: Repository,
  metrics: Metrics,
  drift: DriftMonitor,
  log: Logger,
): { stop(): void } | undefined {
  if (!config.alerts.webhookUrl || config.alerts.rules.length === 0) return undefined;
  const count = (result: string) => (n: { rule: string; status: string }) =>
    metrics.alerts.inc({ rule: n.rule, status: n.status, result });
  const manager = new AlertManager(
    config.alerts,
    { onDelivered: count('delivered'), onFailed: count('failed'), onDropped: count('dropped') },
    log,
  );
  const collector = new ObservationCollector(metrics);
  const tick = async () => {
    const byKey = new Map<string, AlertObservation>();
    for (const v of repository.allVersions()) {
      const d = drift.latest.get(v.key);
      byKey.set(v.key, {
        model: v.name,
        version: v.version,
        ...(v.manifest.sla?.p99Ms !== undefined && { slaP99Ms: v.manifest.sla.p99Ms }),
        ...(d?.dataset && {
          drift: {
            datasetDrift: d.dataset.datasetDrift,
            share: d.dataset.share,
            driftedColumns: d.columns.filter((c) => c.testable && c.drift).map((c) => c.column),
          },
        }),
      });
    }
    for (const o of await collector.collect()) {
      const target = byKey.get(`${o.model}@${o.version}`);
      // An interval without traffic ends latency, error and fallback episodes (as Prometheus does when data stops).
      if (target)
        Object.assign(
          target,
          o.requests > 0
            ? { p99Ms: o.p99Ms, errorRate: o.errorRate, fallbackRate: o.fallbackRate }
            : { p99Ms: 0, errorRate: 0, fallbackRate: 0 },
        );
    }
    manager.evaluate([...byKey.values()]);
  };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    tick()
      .catch((err: unknown) => log.warn({ err }, 'alert evaluation failed'))
      .finally(() => {
        busy = false;
      });
  }, config.alerts.intervalSeconds * 1000);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      manager.close();
    },
  };
}

/** The embedded in-process LRU, or Redis when a URL is configured (shared by replicas). */
export function createPredictionCache(config: FerryConfig, metrics: Metrics, log: Logger): PredictionCache {
  const store = config.redis.url
    ? new RedisStore(config.redis.url, config.redis.commandTimeoutMs, log)
    : new MemoryStore(config.cache.maxBytes);
  log.debug({ store: store.kind }, 'prediction cache');
  const counter = labelChildren((labels: { model: string; version: string; result: string }) =>
    metrics.cacheRequests.labels(labels),
  );
  return new PredictionCache(store, config.cache.keyPrefix, config.cache.staleTtlSeconds * 1000, log, {
    onResult: (model, version, result, n) =>
      counter(`${model}\0${version}\0${result}`, () => ({ model, version, result })).inc(n),
  });
}

export interface CreateServerOptions {
  logger?: Logger | false;
  jobWorkers?: boolean;
  /**
   * How `config` was read (file, env, overrides): SIGHUP and config:reload read them again for the API
   * keys and rollout blocks. Without it those stay as they were at start.
   */
  configSources?: ConfigSources;
  /** Passed to buildApp: sees every route as it is registered (tests). */
  onRoute?: AppOptions['onRoute'];
  /**
   * Open `server.healthPort` in this process (default true). A cluster child says false: the primary
   * answers the health port from the children's heartbeats (app/cluster.ts).
   */
  healthLane?: boolean;
  /** Start the pipeline scheduler (default true); a cluster child other than the first says false. */
  schedulePipelines?: boolean;
}

// eslint-disable-next-line max-lines-per-function -- every service built in one place
export async function createServer(config: FerryConfig, opts: CreateServerOptions = {}): Promise<FerryServer> {
  // OpenTelemetry from the OTEL_* environment (off unless an OTLP exporter is configured); docs/observability.md.
  const tracing = startTracing({ serviceVersion: SERVER_VERSION });
  const log = opts.logger === false ? pino({ level: 'silent' }) : (opts.logger ?? createLogger(config));
  const configFile =
    opts.configSources?.file === undefined
      ? undefined
      : resolvePath(opts.configSources.cwd ?? process.cwd(), opts.configSources.file);
  const repository = Repository.load(config.models.dir, config.models.only, configPolicies(config, configFile));
  validatePipelines(config.pipelines, repository, config.models.only);
  const metrics = new Metrics();
  // Reads every generative model's tokenizer and template now, so a broken folder refuses the start before anything is
  // opened.
  const generation = new GenerationService(
    config,
    config.generation,
    repository,
    new GenerationMetrics(metrics.registry),
    log.child({ component: 'generation' }),
  );
  const store = createStore(storeOptionsFromConfig(config.store, { log: log.child({ component: 'store' }) }));
  // A store that cannot be reached or migrated at start is a configuration error (DATABASE_URL): refuse to start.
  await store.migrate().catch(async (e: unknown) => {
    await store.close();
    await generation.dispose();
    throw e;
  });
  // What is open so far, closed in reverse if a later step refuses the start: a library caller whose
  // createServer rejects must not be left with worker threads, timers and connections keeping it alive.
  const undo: (() => unknown)[] = [() => generation.dispose(), () => store.close()];
  try {
    const predictionLog = config.predictionLog.enabled
      ? new PredictionLog(
          store,
          predictionLogOptionsFromConfig(config.predictionLog, {
            log: log.child({ component: 'prediction-log' }),
            // Inserts run in a worker thread with its own connection; an in-memory SQLite store is
            // visible to this connection only, so it is written here.
            ...(!isMemoryStore(store) && {
              writer: new ThreadRowWriter(
                storeOptionsFromConfig(config.store),
                storeRowWriter(store),
                log.child({ component: 'prediction-log' }),
              ),
            }),
            onWritten: (n) => metrics.predictionLogEntries.inc({ result: 'written' }, n),
            onDropped: (n) => metrics.predictionLogEntries.inc({ result: 'dropped' }, n),
            onSampledOut: (n) => metrics.predictionLogEntries.inc({ result: 'sampled_out' }, n),
          }),
        )
      : undefined;
    undo.push(() => predictionLog?.close());
    const cache = createPredictionCache(config, metrics, log.child({ component: 'cache' }));
    undo.push(() => cache.close());
    const service = new ModelService(
      config,
      repository,
      metrics,
      log.child({ component: 'runtime' }),
      workerCount(config),
      cache,
      predictionLog,
      coreCount(config),
    );
    undo.push(() => service.dispose());
    // Generative versions load into the decode workers, not the predict pool; readiness still waits for them.
    service.delegateLoading(
      (m) => m.generation !== undefined,
      (v) => generation.load(v),
    );
    const drift = new DriftMonitor(config, repository, predictionLog, metrics, log.child({ component: 'drift' }));
    drift.start();
    undo.push(() => drift.close());
    const alerts = startAlerts(config, repository, metrics, drift, log.child({ component: 'alerts' }));
    undo.push(() => alerts?.stop());
    const rollout = new RolloutManager(repository, service, metrics.registry, log.child({ component: 'rollout' }));
    undo.push(() => rollout.close());
    // Every predict path (v1, v2, SSE, jobs, streams, chat) routes and shadows through this one hook.
    service.useRouter(rollout);
    const jobs = createJobsRuntime({
      config,
      store,
      service,
      repository,
      metrics,
      log: log.child({ component: 'jobs' }),
      // A completed job is copied to the model's shadow like a sampled predict (docs/rollout.md).
      onCompleted: (version, input, predictions, fallback, runMs) =>
        service.shadowCompleted({
          version,
          instances: input.instances,
          base: input.base,
          predictions,
          fallback,
          runMs,
        }),
    });
    undo.push(() => jobs.close());
    // Created before the app so routes that hold streams open (job events) can track them for the drain.
    const lifecycle = createLifecycle(
      config.lifecycle,
      config.server.shutdownGraceMs,
      log.child({ component: 'lifecycle' }),
    );
    const manager = new ModelManager(repository, service, log.child({ component: 'models' }));
    // eslint-disable-next-line prefer-const -- assigned after the app it closes over is built
    let reloader: ConfigReloader | undefined;
    const reloadConfig = (): Promise<ConfigReloadReport> => reloader!.reloadOrThrow();
    // A keysFile that cannot be read or checked at start refuses the start (like a bad config).
    const startKeys = [...config.auth.keys, ...(config.auth.keysFile ? readKeysFile(config.auth.keysFile) : [])];
    // The live key set: replaced on SIGHUP, config:reload and keysFile changes (rollout/config-reload.ts).
    const keyRing = new KeyRing(startKeys);
    const rateLimitRedis = createRateLimitRedis(
      config.auth,
      config.redis.url,
      startKeys,
      log.child({ component: 'auth' }),
    );
    undo.push(() => rateLimitRedis?.disconnect());
    // Checks every version's streaming block now: a bad one refuses the start.
    const streaming = createStreamingService({
      config: config.streaming,
      repository,
      service,
      registry: metrics.registry,
    });
    // The LLM gateway: a bad provider/route reference or an unreadable API key refuses the start.
    const llm = createLlmRuntime({
      config: config.llm,
      redisUrl: config.redis.url,
      store,
      registry: metrics.registry,
      log: log.child({ component: 'llm' }),
      generation,
      predictText: async (model, field, text) => {
        const r = await service.predict(repository.resolve(model), [{ [field]: text }], '/instances', {
          shadow: false,
        });
        return r.predictions[0];
      },
    });
    undo.push(() => llm.close());
    const timeseries = new TimeseriesRecorder(
      metrics,
      config.web.timeseriesIntervalSeconds,
      config.web.timeseriesPoints,
    );
    // Scheduled pipeline runs wait for every model to be warm (`loaded`, below).
    let markLoaded: (loaded: Promise<void>) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      markLoaded = (p) => {
        p.then(resolve, reject);
      };
    });
    ready.catch(() => undefined);
    const pipelines = createPipelines({
      config,
      store,
      pool: service.pool,
      repository,
      log: log.child({ component: 'pipelines' }),
      registry: metrics.registry,
      ready,
      jobs,
    });
    undo.push(() => pipelines.close());
    const app = await buildApp(
      {
        config,
        repository,
        service,
        metrics,
        drift,
        jobs,
        rollout,
        manager,
        generation,
        lifecycle,
        reloadConfig,
        keyRing,
        startKeys,
        rateLimitRedis,
        streaming,
        timeseries,
        llm: llm.gateway,
        pipelines: {
          runs: pipelines.runs,
          isRunning: (n) => pipelines.isRunning(n),
          ...(pipelines.queueRun && { queueRun: pipelines.queueRun }),
        },
      },
      { logger: opts.logger === false ? false : log, ...(opts.onRoute && { onRoute: opts.onRoute }) },
    );
    undo.push(() => app.close());
    timeseries.start();
    app.addHook('onClose', async () => timeseries.stop());
    if (rateLimitRedis) app.addHook('onClose', async () => rateLimitRedis.disconnect());
    reloader = new ConfigReloader(
      opts.configSources,
      repository,
      manager,
      keyRing,
      log.child({ component: 'config' }),
      config,
    );
    // gRPC beside HTTP when a port is configured: the same services, its own listener, drained with the rest.
    const grpc =
      config.grpc.port >= 0
        ? createGrpcServer({
            config: config.grpc,
            defaultHost: config.server.host,
            serverVersion: SERVER_VERSION,
            repository,
            service,
            manager,
            keyRing,
            lifecycle,
            metrics,
            log: log.child({ component: 'grpc' }),
          })
        : undefined;
    if (grpc) lifecycle.onDrain('grpc', (ctx) => grpc.close(ctx.deadline));
    // SIGTERM: job workers stop claiming at once and finish or hand back their jobs before the deadline.
    jobs.drainWith(lifecycle);
    const loaded = service.loadAll();
    // Tests and the CLI await `loaded`; an unobserved failure must not crash the process, /readyz reports it.
    loaded.catch((err: unknown) => log.error({ err }, 'model loading failed'));
    // Job workers run in-process unless this is an API-only node (`ferry serve --no-workers`, jobs.workers: false),
    // from when every model is warm: a job taken earlier would only meet model-not-ready.
    if (opts.jobWorkers ?? config.jobs.workers)
      loaded.then(
        () => jobs.startWorkers(),
        () => undefined,
      );
    markLoaded(loaded);
    if (opts.schedulePipelines !== false) pipelines.start();

    let closed = false;
    let healthLane: HealthLane | undefined;
    return {
      config,
      app,
      service,
      repository,
      metrics,
      cache,
      store,
      predictionLog,
      drift,
      generation,
      jobs,
      rollout,
      manager,
      pipelines,
      streaming,
      timeseries,
      keyRing,
      llm: llm.gateway,
      log,
      lifecycle,
      loaded,
      configReloader: reloader,
      reloadConfig: () => reloader!.reload(),
      grpc,
      async listen() {
        await app.listen({ host: config.server.host, port: config.server.port });
        const addr = app.server.address();
        const port = typeof addr === 'object' && addr ? addr.port : config.server.port;
        const host = config.server.host === '0.0.0.0' ? '127.0.0.1' : config.server.host;
        const grpcPort = grpc ? (await grpc.listen()).port : undefined;
        if (config.server.healthPort >= 0 && opts.healthLane !== false) {
          healthLane = await startHealthLane({
            host: config.server.host,
            port: config.server.healthPort,
            maxStallMs: config.server.livenessMaxStallMs,
            ready: () => service.ready(),
            draining: () => lifecycle.draining,
          });
          log.info({ port: healthLane.port, priority: healthLane.priority }, 'health lane listening');
          lifecycle.on('draining', () => healthLane?.beat());
        }
        return {
          host,
          port,
          url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
          ...(grpcPort !== undefined && { grpcPort }),
          ...(healthLane && { healthPort: healthLane.port }),
        };
      },
      async close() {
        if (closed) return;
        closed = true;
        // In-flight requests finish while drain handlers end streams; then active jobs get their grace
        // and go back to the queue (after HTTP, so a job submitted during the drain still reaches the queue).
        await Promise.all([closeHttp(app), lifecycle.runHandlers()]);
        // The health lane answers (readiness 503, draining) until the HTTP drain is over.
        await healthLane?.close();
        await jobs.close();
        await loaded.catch(() => undefined);
        await rollout.close();
        await pipelines.close();
        alerts?.stop();
        drift.close();
        await llm.close();
        await generation.dispose();
        await service.dispose();
        await cache.close();
        await predictionLog?.close();
        await store.close();
        await tracing.shutdown();
      },
    };
  } catch (e) {
    for (const close of undo.reverse())
      await Promise.resolve()
        .then(close)
        .catch(() => undefined);
    await tracing.shutdown().catch(() => undefined);
    throw e;
  }
}

// What the HTTP layer is given: the frozen config and the services it calls.
import type { Redis } from 'ioredis';
import type { FerryConfig } from '../config/index.js';
import type { Metrics } from '../monitoring/index.js';
import type { Repository, ModelVersion } from '../serving/repository/index.js';
import type { ModelService } from '../serving/index.js';
import type { DriftMonitor } from '../monitoring/drift-monitor.js';
import type { GenerationService } from '../generation/service.js';
import type { JobsRuntime } from '../jobs/index.js';
import type { ModelManager, RolloutManager } from '../rollout/index.js';
import type { Lifecycle } from '../lifecycle/index.js';
import type { ConfigReloadReport } from '../rollout/config-reload.js';
import type { KeyRing } from '../auth/keys.js';
import type { ApiKeyConfig } from '../config/schemas/auth.js';
import type { TimeseriesRecorder } from '../monitoring/timeseries.js';
import type { StreamingService } from '../streaming/index.js';
import type { PipelinesOptions } from './plugins/pipelines.js';
import type { LlmGateway } from '../llm/index.js';

export interface ServerDeps {
  readonly config: FerryConfig;
  readonly repository: Repository;
  readonly service: ModelService;
  readonly metrics: Metrics;
  readonly drift: DriftMonitor;
  /** Generative models behind /openai/v1 (absent: the routes are not mounted). */
  readonly generation?: GenerationService;
  /** Asynchronous jobs (absent in apps built without them, e.g. some tests). */
  readonly jobs?: JobsRuntime;
  /** Canary routing, deprecation and shadow comparison (rollout/). */
  readonly rollout: RolloutManager;
  /** Hot load / unload / reload of model versions (rollout/). */
  readonly manager: ModelManager;
  /** Re-reads API keys and rollout blocks, then reloads the repository (admin config:reload, repository:reload). */
  readonly reloadConfig?: () => Promise<ConfigReloadReport>;
  /** Shutdown: long-lived streams register here to be closed with a reason on drain. */
  readonly lifecycle?: Lifecycle;
  /** The live API keys (empty: no keys, every route open) and the keys at start (for rate limits). */
  readonly keyRing: KeyRing;
  readonly startKeys: readonly ApiKeyConfig[];
  /** Shared rate-limit counts in Redis (auth/rate-limit-store.ts); absent: counted in process. */
  readonly rateLimitRedis?: Redis | undefined;
  /** WebSocket sessions' limits, open sessions and sequence batchers. */
  readonly streaming: StreamingService;
  /** The recorder behind /v1/metrics/timeseries (the dashboard's charts). */
  readonly timeseries: TimeseriesRecorder;
  /** The LLM gateway: `model` values naming an `llm.routes` entry go through it (absent: local models only). */
  readonly llm?: LlmGateway;
  /** Pipeline results, whether a run is going here, and queued runs. */
  readonly pipelines: Omit<PipelinesOptions, 'config'>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The model version a request resolved to, for metrics and headers. */
    ferryModel?: ModelVersion;
  }
  interface FastifyContextConfig {
    /** Route label in ferry_requests_total; routes without it are not counted there. */
    metricsRoute?: string;
  }
}

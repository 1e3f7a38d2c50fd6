// What the HTTP layer is given: the frozen config and the services it calls.
import type { FerryConfig } from '../config/index.js';
import type { Metrics } from '../monitoring/index.js';
import type { Repository, ModelVersion } from '../repository/index.js';
import type { ModelService } from '../runtime/index.js';
import type { DriftMonitor } from '../monitoring/drift-monitor.js';
import type { JobsRuntime } from '../jobs/index.js';
import type { ModelManager, RolloutManager } from '../rollout/index.js';

export interface ServerDeps {
  readonly config: FerryConfig;
  readonly repository: Repository;
  readonly service: ModelService;
  readonly metrics: Metrics;
  readonly drift: DriftMonitor;
  /** Asynchronous jobs (absent in apps built without them, e.g. some tests). */
  readonly jobs?: JobsRuntime;
  /** Canary routing, deprecation and shadow comparison (rollout/). */
  readonly rollout: RolloutManager;
  /** Hot load / unload / reload of model versions (rollout/). */
  readonly manager: ModelManager;
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

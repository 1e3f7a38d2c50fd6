// What the gRPC transport is given by the composition root: the config slice and the services it calls.
import type { Logger } from 'pino';
import type { GrpcConfig } from '../config/schemas/grpc.js';
import type { KeyRing } from '../auth/keys.js';
import type { Lifecycle } from '../lifecycle/index.js';
import type { Metrics } from '../monitoring/index.js';
import type { ModelService } from '../serving/index.js';
import type { Repository } from '../serving/repository/index.js';
import type { ModelManager } from '../rollout/index.js';

export interface GrpcDeps {
  readonly config: GrpcConfig;
  /** Where to bind when `config.host` is empty (the HTTP server's host). */
  readonly defaultHost: string;
  readonly serverVersion: string;
  readonly repository: Repository;
  readonly service: ModelService;
  /** Load and unload for the repository extension (rollout/). */
  readonly manager: ModelManager;
  /** The live API keys (config reloads change the ring in place). */
  readonly keyRing: KeyRing;
  readonly lifecycle: Lifecycle;
  readonly metrics: Metrics;
  readonly log: Logger;
}

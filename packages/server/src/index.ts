// @ferry/server: the programmatic face of the server (the CLI is `ferry`).
export { createServer, createLogger, type FerryServer } from './app/create-server.js';
export { loadConfig, ConfigSchema, type FerryConfig } from './config/index.js';
export {
  Repository,
  readManifest,
  encoderResources,
  ManifestError,
  type ModelVersion,
  type ModelEntry,
} from './serving/repository/index.js';
export { ModelService, syntheticInstance } from './serving/index.js';
export { instanceDigest } from './serving/cache/index.js';
// A server in a child process, as `ferry bench` (in @ferry/tools) load-tests it.
export { startChildServer, type ChildServer, type ChildServerOptions } from './lifecycle/child-server.js';
export { buildApp, buildOpenApi } from './http/index.js';
export { FerryError, ERROR_CATALOGUE, type ErrorCode } from './errors.js';
export { initModel, manifestFromOnnx } from './serving/repository/init-model.js';
// A model's handler module (ferry.yaml `handler:`) is typed with these, from either package.
export { defineHandler, type ModelHandler, type HandlerContext } from '@ferry/core';
export {
  AlertManager,
  AlertsConfigSchema,
  type AlertNotification,
  type AlertObservation,
} from './monitoring/alerting.js';
export { verifyWebhook, webhookSigner, type StandardWebhookHeaders } from './webhooks/index.js';
export * from './streaming/index.js';
// The WebSocket stream's CLI client and the SSE predict helpers, used by the examples.
export { runStreamCli } from './cli/commands/stream.js';
export { streamPredict, wantsEventStream } from './http/plugins/sse-predict.js';

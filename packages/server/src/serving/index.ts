// The runtime: worker-thread pool of ONNX Runtime sessions and the inference service over it.
export {
  ModelService,
  syntheticInstance,
  type LoadedVersion,
  type PredictResult,
  type ServeOptions,
  type VersionState,
} from './model-service.js';
export { exampleInstance } from './example-instance.js';
export { WorkerPool, type LoadedModel, type RunResult } from './runtime/pool.js';
export { sessionOptionsFor, toOrtOptions, type OrtSessionOptions } from './runtime/session-options.js';
export {
  compileRequestValidator,
  columnsToInstances,
  issuesFromAjv,
  type RequestValidator,
} from './predict/validation.js';
export type { IoMeta } from './runtime/protocol.js';
export {
  cloneFeeds,
  type ClientIdentity,
  type CompletedRun,
  type DeprecationNotice,
  type ModelRef,
  type PredictRouter,
  type Routed,
  type ShadowCopy,
  type ShadowSource,
} from './predict/routing.js';
export type { PredictionRecord, PredictionSink } from './predict/prediction-sink.js';
export { instancesFromBody } from './predict/request-body.js';

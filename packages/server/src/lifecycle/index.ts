// Process lifecycle: draining readiness, drain handlers for streams and jobs, signal handling.
export { Lifecycle, createLifecycle, type DrainContext, type DrainHandler, type DrainResult, type LifecycleOptions } from './lifecycle.js';
export { LifecycleConfigSchema, type LifecycleConfig } from './config-schema.js';
export { installLifecycleHooks, registerLifecycleMetrics, closeHttp, type LifecycleMetrics } from './http-gate.js';
export { installSignalHandlers, shutdown, type Drainable } from './signals.js';

// Process lifecycle: draining readiness, drain handlers for streams and jobs, signal handling.
export {
  Lifecycle,
  createLifecycle,
  type DrainContext,
  type DrainHandler,
  type DrainResult,
  type LifecycleOptions,
} from './lifecycle.js';
export { LifecycleConfigSchema, type LifecycleConfig } from '../config/schemas/lifecycle.js';
export { installSignalHandlers, shutdown, type Drainable } from './signals.js';

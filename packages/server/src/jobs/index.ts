// Asynchronous inference jobs: a durable queue (BullMQ on Redis, or SQL in the store), workers that
// run jobs through the ModelService, progress events, webhooks. See docs/jobs.md.
export { JobsConfigSchema, type JobsConfig } from '../config/schemas/jobs.js';
export { createJobsRuntime, type JobsRuntime, type JobsDeps, type SubmitOptions } from './runtime.js';
export { JobStore, type JobRow } from './job-store.js';
export { checkCallbackUrl } from './webhooks.js';
export type { JobDocument, JobState, JobError, JobEvent } from './types.js';

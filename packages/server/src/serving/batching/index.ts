// Dynamic batching per model version, with a bounded queue.
export { DynamicBatcher, type BatcherOptions, type BatchStats, type Feeds, type RunBatch } from './batcher.js';

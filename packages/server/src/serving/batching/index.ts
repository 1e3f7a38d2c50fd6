// Batching per model version over one bounded queue: stateless (dynamic) and stateful (sequence).
export {
  DynamicBatcher,
  type BatchAnswer,
  type BatcherOptions,
  type BatchStats,
  type Feeds,
  type Queued,
  type RunBatch,
} from './batcher.js';
export {
  capForInline,
  chooseBatching,
  probeBatching,
  MAX_PROBE_ROWS,
  UNMEASURED_MAX_BATCH_SIZE,
  type BatchingChoice,
  type ProbeTiming,
} from './defaults.js';
export { BatchQueue, type SubMillisecondDelay } from './batch-queue.js';
export {
  SequenceBatcher,
  stack,
  unstack,
  type FrameResult,
  type RunFeeds,
  type SequenceSpec,
} from './sequence-batcher.js';

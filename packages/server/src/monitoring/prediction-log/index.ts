// The sampled prediction log (drift detection reads it): bounded buffer on the hot path, batched
// writes to the store in the background, retention. See docs/store.md.
export {
  PredictionLog,
  predictionLogOptionsFromConfig,
  type PredictionLogEntry,
  type PredictionLogRow,
  type PredictionLogQuery,
  type PredictionLogOptions,
  type PredictionLogHooks,
  type PredictionLogStats,
  type DropReason,
  type SampleOutReason,
} from './prediction-log.js';
export {
  PredictionLogConfigSchema,
  PREDICTION_LOG_DEFAULTS,
  parseSampleRates,
  type PredictionLogConfig,
} from '../../config/schemas/prediction-log.js';
export { seededRandom } from './random.js';
export { ThreadRowWriter, storeRowWriter, type RowWriter, type ThreadStoreOptions } from './row-writer.js';

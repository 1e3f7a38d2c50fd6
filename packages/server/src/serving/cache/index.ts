// The prediction cache (in-process LRU or Redis) and single-flight coalescing.
export {
  PredictionCache,
  MemoryStore,
  RedisStore,
  cacheKey,
  canonicalInstance,
  type CacheStore,
  type CachedPrediction,
  type Lookup,
} from './prediction-cache.js';
export { SingleFlight } from './single-flight.js';

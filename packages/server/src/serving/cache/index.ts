// The prediction cache (in-process LRU or Redis) and single-flight coalescing.
export {
  PredictionCache,
  MemoryStore,
  RedisStore,
  cacheKey,
  type CacheStore,
  type CachedPrediction,
  type Lookup,
} from './prediction-cache.js';
export { instanceDigest } from './instance-digest.js';
export { SingleFlight } from './single-flight.js';

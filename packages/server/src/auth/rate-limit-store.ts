// Where the per-key and per-address rate limits count: in process, or in Redis when `redis.url` is set
// (so replicas share one count) and `auth.rateLimit.local` is not. app/ builds the client and hands it
// to the HTTP layer's limiter; a Redis outage must never take inference down, so it retries little.
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ApiKeyConfig, AuthConfig } from '../config/schemas/auth.js';

/**
 * Whether any caller can be limited: address or key limits, a key with its own limit, or a keys file
 * (whose keys, and their limits, may arrive after start).
 */
export function rateLimited(auth: AuthConfig, startKeys: readonly ApiKeyConfig[]): boolean {
  const { keyMax, ipMax } = auth.rateLimit;
  return keyMax > 0 || ipMax > 0 || startKeys.some((k) => k.rateLimitMax > 0) || auth.keysFile !== '';
}

/** The shared counter store for the limiter, or undefined when counts stay in process. */
export function createRateLimitRedis(
  auth: AuthConfig,
  redisUrl: string,
  startKeys: readonly ApiKeyConfig[],
  log: Logger,
): Redis | undefined {
  if (!redisUrl || auth.rateLimit.local || !rateLimited(auth, startKeys)) return undefined;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 2000 });
  redis.on('error', (err) => log.warn({ err: err.message }, 'rate-limit redis error'));
  return redis;
}

// The LLM gateway (docs/llm-gateway.md): providers, routes with tiering, cascade and fallback, exact and
// semantic caches, prompt and spend budgets, the ledger and ferry_llm_* metrics. Transport-free; the
// HTTP surface is http/plugins/openai.ts (and llm-admin routes), built by app/create-server.ts.
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { parse as parseYaml } from 'yaml';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { resolveLlmConfig, type LlmConfig, type LlmPrice, type RawLlmConfig } from '../config/schemas/llm.js';
import type { GenerationService } from '../generation/index.js';
import type { Store } from '../store/index.js';
import { MemoryAnswerCache, RedisAnswerCache, type AnswerCacheBackend } from './answer-cache.js';
import { ApiKeyError, resolveApiKey } from './api-key.js';
import { caAgent } from './providers/node-http.js';
import { StoreAnswerCache } from './store-answer-cache.js';
import { RedisCounters, StoreCounters, type CounterBackend } from './budgets.js';
import { FerryModelEmbeddings, HttpEmbeddings } from './embeddings.js';
import { LlmGateway } from './gateway.js';
import { Ledger } from './ledger.js';
import { LlmMetrics } from './metrics.js';
import { AnthropicProvider } from './providers/anthropic-provider.js';
import { FerryProvider } from './providers/ferry-provider.js';
import { OpenAiProvider } from './providers/openai-provider.js';
import { ResilientProvider } from './resilience.js';
import type { ChatMessage, ChatProvider, EmbeddingSource } from './types.js';

export { LlmGateway, type GatewayRequest, type GatewayAnswer, type AnswerMeta, type StreamHooks } from './gateway.js';
export { UpstreamError } from './upstream-error.js';
export { LlmMetrics } from './metrics.js';
export type { LedgerSummary, SpendRow } from './ledger.js';
export type { ChatMessage, ChatAnswer, ChatProvider, EmbeddingSource, Usage } from './types.js';

export interface LlmGatewayOptions {
  config: RawLlmConfig;
  redisUrl: string;
  store: Store;
  registry: Registry;
  log: Logger;
  generation?: GenerationService;
  /** This server's predict path for one text feature (classifier tiering, Ferry embedding models). */
  predictText?: (model: string, field: string, text: string) => Promise<unknown>;
  env?: NodeJS.ProcessEnv;
}

export interface LlmRuntime {
  gateway: LlmGateway;
  close(): Promise<void>;
}

/** The `llm:` list of a price table file: model → price (a provider's own `prices` win over it). */
export function readPriceTable(path: string): Record<string, LlmPrice> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`llm.pricesFile ${path}: ${(e as Error).message}`);
  }
  const list = (doc as { llm?: unknown } | null)?.llm;
  if (!Array.isArray(list)) throw new Error(`llm.pricesFile ${path}: no \`llm:\` list of model prices`);
  const out: Record<string, LlmPrice> = {};
  for (const [i, e] of list.entries()) {
    const o = e as Record<string, unknown>;
    const nums = ['inputPerMTok', 'cachedInputPerMTok', 'outputPerMTok'].map((k) => o[k]);
    if (typeof o.model !== 'string' || !nums.every((n) => typeof n === 'number' && n >= 0))
      throw new Error(`llm.pricesFile ${path}: llm[${i}] needs model and three non-negative prices`);
    out[o.model] = {
      inputPerMTok: nums[0] as number,
      cachedInputPerMTok: nums[1] as number,
      outputPerMTok: nums[2] as number,
    };
  }
  return out;
}

/** Checks the config's cross references (routes → providers, tiers, embeddings) and refuses a bad one at start. */
export function validateLlmConfig(cfg: LlmConfig): void {
  for (const [name, r] of Object.entries(cfg.routes)) {
    const tiers = Object.keys(r.tiers);
    const where = `llm.routes.${name}`;
    if (r.defaultTier && !tiers.includes(r.defaultTier))
      throw new Error(`${where}.defaultTier: no tier ${r.defaultTier}`);
    for (const [i, rule] of r.rules.entries())
      if (!tiers.includes(rule.tier)) throw new Error(`${where}.rules[${i}].tier: no tier ${rule.tier}`);
    for (const [label, t] of Object.entries(r.classifier.tiers))
      if (!tiers.includes(t)) throw new Error(`${where}.classifier.tiers.${label}: no tier ${t}`);
    for (const [tier, targets] of Object.entries(r.tiers))
      for (const [i, t] of targets.entries())
        if (!cfg.providers[t.provider])
          throw new Error(`${where}.tiers.${tier}[${i}].provider: no provider ${t.provider}`);
    if (r.compress.tier && !tiers.includes(r.compress.tier))
      throw new Error(`${where}.compress.tier: no tier ${r.compress.tier}`);
    if (r.compress.tier && r.maxPromptTokens <= r.compress.maxSummaryTokens)
      throw new Error(`${where}.compress: maxPromptTokens must be larger than compress.maxSummaryTokens`);
    if (r.cache.semanticThreshold > 0 && !cfg.embeddings.model)
      throw new Error(`${where}.cache.semanticThreshold needs llm.embeddings (provider and model)`);
  }
  for (const [name, p] of Object.entries(cfg.providers))
    if (p.kind !== 'ferry' && !p.baseUrl)
      throw new Error(`llm.providers.${name}.baseUrl is required for kind ${p.kind}`);
  const e = cfg.embeddings;
  if (e.provider && !cfg.providers[e.provider]) throw new Error(`llm.embeddings.provider: no provider ${e.provider}`);
}

/** The caches' backend: `llm.cache.backend`, or Redis when there is one, else in process. */
function answerCache(config: LlmConfig, store: Store, redis: Redis | undefined): AnswerCacheBackend {
  const b = config.cache.backend;
  if (b === 'redis' && !redis) throw new Error('llm.cache.backend is redis but redis.url is empty');
  if (b === 'store') return new StoreAnswerCache(store);
  if (redis && b !== 'memory') return new RedisAnswerCache(redis, config.cache.keyPrefix);
  return new MemoryAnswerCache(config.cache.maxEntries);
}

export function createLlmRuntime(o: LlmGatewayOptions): LlmRuntime {
  const { log } = o;
  const resolved = resolveLlmConfig(o.config);
  validateLlmConfig(resolved);
  const table = resolved.pricesFile ? readPriceTable(resolved.pricesFile) : {};
  const config: LlmConfig = {
    ...resolved,
    providers: Object.fromEntries(
      Object.entries(resolved.providers).map(([n, p]) => [n, { ...p, prices: { ...table, ...p.prices } }]),
    ),
  };
  const metrics = new LlmMetrics(o.registry);
  const keys = new Map<string, string | undefined>();
  const providers = new Map<string, ResilientProvider>();
  for (const [name, p] of Object.entries(config.providers)) {
    const key = resolveApiKey(name, p, o.env);
    keys.set(name, key);
    if (p.caFile) {
      try {
        caAgent(p.caFile);
      } catch (e) {
        throw new ApiKeyError(`llm.providers.${name}: cannot use caFile ${p.caFile}: ${(e as Error).message}`);
      }
    }
    let inner: ChatProvider;
    if (p.kind === 'openai') inner = new OpenAiProvider(name, p, key);
    else if (p.kind === 'anthropic') inner = new AnthropicProvider(name, p, key);
    else {
      if (!o.generation) throw new Error(`llm.providers.${name}: kind ferry needs the generation service`);
      inner = new FerryProvider(name, o.generation);
    }
    providers.set(
      name,
      new ResilientProvider(inner, p, {
        onAttemptFailed: (prov, err) =>
          metrics.upstreamErrors.inc({
            provider: prov,
            failure: err.failure,
            status: err.status ? String(err.status) : '',
          }),
        onRetry: (prov) => metrics.retries.inc({ provider: prov }),
        onBreaker: (prov, state) => log.warn({ provider: prov, state }, 'LLM provider circuit breaker'),
      }),
    );
  }
  const redis =
    o.redisUrl && (config.cache.backend === '' || config.cache.backend === 'redis' || config.budgetBackend !== 'store')
      ? new Redis(o.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: false })
      : undefined;
  redis?.on('error', (err) => log.warn({ err: err.message }, 'llm redis error'));
  const cache = answerCache(config, o.store, redis);
  const counters: CounterBackend =
    redis && config.budgetBackend !== 'store' ? new RedisCounters(redis) : new StoreCounters(o.store);
  if (config.budgetBackend === 'redis' && !redis) throw new Error('llm.budgetBackend is redis but redis.url is empty');
  let embeddings: EmbeddingSource | undefined;
  const e = config.embeddings;
  if (e.model && e.provider) {
    const p = config.providers[e.provider]!;
    embeddings = p.kind === 'ferry' ? undefined : new HttpEmbeddings(e.provider, p, keys.get(e.provider), e.model);
  }
  if (e.model && (!e.provider || config.providers[e.provider]?.kind === 'ferry')) {
    if (!o.predictText) throw new Error('llm.embeddings: a Ferry embedding model needs the predict path');
    const predict = o.predictText;
    embeddings = new FerryModelEmbeddings(e.model, (text) => predict(e.model, e.field, text));
  }
  const ledger = new Ledger(o.store, log);
  const gen = o.generation;
  const gateway = new LlmGateway({
    config,
    providers,
    providerConfigs: config.providers,
    cache,
    counters,
    ledger,
    metrics,
    log,
    keyPrefix: config.cache.keyPrefix,
    ...(embeddings && { embeddings }),
    ...(gen && {
      localCounter: (model: string) => {
        try {
          const gv = gen.resolve(model);
          return (msgs: readonly ChatMessage[]) => gen.encodePrompt(gv, { messages: [...msgs] }).length;
        } catch {
          return undefined;
        }
      },
    }),
    ...(o.predictText && {
      classify: async (model: string, field: string, text: string) => {
        const p = (await o.predictText!(model, field, text)) as { label?: unknown } | undefined;
        return typeof p?.label === 'string' ? p.label : p?.label === undefined ? undefined : String(p.label);
      },
    }),
  });
  return {
    gateway,
    async close() {
      await gateway.close();
      redis?.disconnect();
    },
  };
}

// The `llm` section of the server config: the gateway in front of hosted and local chat models
// (docs/llm-gateway.md). Providers say how to reach an upstream; routes are the names apps call
// (`model: "support-reply"`) and decide which provider answers, with caching and budgets around it.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

const NAME = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

export const LlmPriceSchema = Type.Object(
  {
    /** USD per million prompt tokens (each price defaults to 0). */
    inputPerMTok: Type.Optional(Type.Number({ minimum: 0 })),
    /** USD per million prompt tokens the provider served from its own prompt cache. */
    cachedInputPerMTok: Type.Optional(Type.Number({ minimum: 0 })),
    /** USD per million completion tokens. */
    outputPerMTok: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type LlmPrice = Static<typeof LlmPriceSchema>;

export const LlmProviderSchema = Type.Object(
  {
    /**
     * `openai`: any OpenAI-compatible `/chat/completions` (OpenAI, Azure OpenAI's v1 API, vLLM, Ollama,
     * llama.cpp server, another Ferry); `anthropic`: the Messages API; `ferry`: this server's own
     * generative models (the `model` of a route target names one).
     */
    kind: Type.Union([Type.Literal('openai'), Type.Literal('anthropic'), Type.Literal('ferry')]),
    /** e.g. https://api.openai.com/v1 or http://other-ferry:8080/openai/v1 (unused by `ferry`). */
    baseUrl: Type.String({ default: '' }),
    /** Environment variable holding the API key (never logged, redacted in `ferry config`). */
    apiKeyEnv: Type.String({ default: '' }),
    /** A file holding the API key (e.g. a mounted Kubernetes Secret); read at start. */
    apiKeyFile: Type.String({ default: '' }),
    /**
     * A PEM file of certificate authorities trusted for this upstream's HTTPS, besides the system's (a
     * self-hosted vLLM or another Ferry behind an internal CA); read at start. Verification stays on.
     */
    caFile: Type.String({ default: '' }),
    /** Extra headers sent upstream (e.g. `anthropic-version`, an Azure `api-version` gateway header). */
    headers: Type.Record(Type.String(), Type.String(), { default: {} }),
    /** Connection established and request sent within this, else the attempt fails (retryable). */
    connectTimeoutMs: Type.Integer({ minimum: 1, default: 5_000 }),
    /** The first token (streamed) or the response head (whole) within this. */
    firstTokenTimeoutMs: Type.Integer({ minimum: 1, default: 30_000 }),
    /** The whole answer within this. */
    totalTimeoutMs: Type.Integer({ minimum: 1, default: 120_000 }),
    /** Retries after the first attempt, on 429, 5xx, connection errors and timeouts before the first token. */
    maxRetries: Type.Integer({ minimum: 0, maximum: 10, default: 2 }),
    /** Backoff: base * 2^attempt with full jitter, capped; a `Retry-After` from the upstream wins (up to the cap). */
    retryBaseDelayMs: Type.Integer({ minimum: 0, default: 250 }),
    retryMaxDelayMs: Type.Integer({ minimum: 0, default: 10_000 }),
    /** Consecutive failed requests that open the breaker, and how long it stays open before one trial. */
    breakerFailures: Type.Integer({ minimum: 1, default: 5 }),
    breakerCoolDownMs: Type.Integer({ minimum: 1, default: 10_000 }),
    /** Requests in flight to this provider at once; past it requests wait (up to `queueTimeoutMs`). */
    maxConcurrent: Type.Integer({ minimum: 1, default: 64 }),
    queueTimeoutMs: Type.Integer({ minimum: 0, default: 10_000 }),
    /** Prices by upstream model name (see packages/tools/prices.yaml `llm:` for the dated table). */
    prices: Type.Record(Type.String(), LlmPriceSchema, { default: {} }),
  },
  { additionalProperties: false },
);
export type LlmProviderConfig = Static<typeof LlmProviderSchema>;

export const LlmTargetSchema = Type.Object(
  {
    provider: Type.String({ pattern: NAME }),
    /** The upstream's model name (`gpt-4o-mini`, `claude-3-5-haiku-latest`, or a Ferry model `ham-chat`). */
    model: Type.String({ minLength: 1, maxLength: 256 }),
    /**
     * Weighted A/B: when any target of a tier sets a weight, the first target called is drawn by weight
     * (targets without one count as 0: fallbacks only); otherwise targets are called in the listed order.
     */
    weight: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);

/** A rule that picks a tier: every condition given must hold; the first matching rule wins. */
export const LlmTierRuleSchema = Type.Object(
  {
    tier: Type.String({ pattern: NAME }),
    minPromptTokens: Type.Optional(Type.Integer({ minimum: 0 })),
    maxPromptTokens: Type.Optional(Type.Integer({ minimum: 0 })),
    minMessages: Type.Optional(Type.Integer({ minimum: 0 })),
    maxMessages: Type.Optional(Type.Integer({ minimum: 0 })),
    /** API key ids (auth.keys[].id). */
    keys: Type.Optional(Type.Array(Type.String())),
    tenants: Type.Optional(Type.Array(Type.String())),
    /** Request `metadata` entries that must be equal. */
    metadata: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: false },
);

export const LlmRouteSchema = Type.Object(
  {
    /**
     * Tiers by name, cheapest first; each an ordered list of targets. Within a tier the first answer
     * wins; a failing target falls back to the next (weights choose the first one for A/B).
     */
    tiers: Type.Record(Type.String({ pattern: NAME }), Type.Array(LlmTargetSchema, { minItems: 1 }), {
      minProperties: 1,
    }),
    /** The tier when no rule matches (default: the first tier). */
    defaultTier: Type.String({ default: '' }),
    rules: Type.Array(LlmTierRuleSchema, { default: [] }),
    /**
     * Tiering by a classifier served by this Ferry: the newest user turn goes to `model` as feature `field`;
     * the predicted `label` picks the tier through `tiers` (labels not listed keep the rule's tier).
     */
    classifier: Type.Object(
      {
        model: Type.String({ default: '' }),
        field: Type.String({ default: 'text' }),
        tiers: Type.Record(Type.String(), Type.String(), { default: {} }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Cascade: answer from the chosen tier, escalate to the next tier when a check fails: the answer must
     * parse as JSON (`requireJson`), satisfy a JSON Schema (`schema`, and the request's own
     * `response_format` schema), not be a refusal, and reach `minConfidence`.
     */
    cascade: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        requireJson: Type.Boolean({ default: false }),
        /** A JSON Schema every answer must satisfy (implies JSON); compiled at start. */
        schema: Type.Optional(Type.Unknown()),
        refusalPatterns: Type.Array(Type.String(), {
          default: ["^\\s*(I'm sorry|I am sorry|I can't|I cannot|As an AI)"],
        }),
        /**
         * Escalate when the answer's confidence — exp(mean token log-probability), from the upstream's
         * logprobs (asked for automatically) — is below this; 0 = no confidence check.
         */
        minConfidence: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
        /** An answer without logprobs (e.g. Anthropic) when `minConfidence` is set: accept it or escalate. */
        withoutLogprobs: Type.Union([Type.Literal('accept'), Type.Literal('escalate')], { default: 'accept' }),
        /**
         * Streamed requests: `buffer` holds a lower tier's answer until it passes the checks, then replays it
         * (the last tier streams live); `off` streams the chosen tier live and never escalates.
         */
        stream: Type.Union([Type.Literal('buffer'), Type.Literal('off')], { default: 'buffer' }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Exact cache over route, messages and sampling parameters; by default only deterministic requests. */
    cache: Type.Object(
      {
        exact: Type.Boolean({ default: true }),
        /** Also cache sampled (temperature > 0, unseeded) answers. */
        includeSampled: Type.Boolean({ default: false }),
        ttlSeconds: Type.Integer({ minimum: 1, default: 3600 }),
        /** Semantic cache: answers for prompts whose embedding is at least this similar (cosine); 0 = off. */
        semanticThreshold: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Largest prompt in tokens (0 = the provider's business); older turns are trimmed to fit. */
    maxPromptTokens: Type.Integer({ minimum: 0, default: 0 }),
    /**
     * Compression: when the history does not fit `maxPromptTokens`, the older turns are summarised by the
     * targets of `tier` (a tier of this route, normally the cheapest) instead of being dropped; the
     * summary goes in front of the newest turns as a system message. Empty `tier`: only trimming.
     */
    compress: Type.Object(
      {
        tier: Type.String({ default: '' }),
        /** The summary's max_tokens; the newest turns are trimmed to leave room for it. */
        maxSummaryTokens: Type.Integer({ minimum: 16, default: 256 }),
        /** The summariser's system prompt (`{maxTokens}` is replaced by maxSummaryTokens). */
        instructions: Type.String({
          minLength: 1,
          default:
            'Summarise the conversation below in at most {maxTokens} tokens, for the assistant that continues it. ' +
            'Keep names, numbers, dates, decisions, open questions and what the user wants. Write only the summary.',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** `keep-newest`: keep system prompts and the newest turns that fit; `refuse`: 400 when over. */
    trim: Type.Union([Type.Literal('keep-newest'), Type.Literal('refuse')], { default: 'keep-newest' }),
    /** `max_tokens` when the request sets none (also the spend estimate's completion size). */
    defaultMaxTokens: Type.Integer({ minimum: 1, default: 512 }),
  },
  { additionalProperties: false },
);
export type LlmRouteConfig = Static<typeof LlmRouteSchema>;

export const LlmBudgetSchema = Type.Object(
  {
    /** What is counted separately: each API key, each tenant, each route, or everything (`global`). */
    scope: Type.Union([Type.Literal('key'), Type.Literal('tenant'), Type.Literal('route'), Type.Literal('global')]),
    /** Only this key id / tenant / route (empty: each one gets its own budget of this size). */
    match: Type.String({ default: '' }),
    window: Type.Union([Type.Literal('minute'), Type.Literal('day'), Type.Literal('month')]),
    /** Tokens (prompt + completion) per window; 0 = not limited. */
    tokens: Type.Integer({ minimum: 0, default: 0 }),
    /** USD per window; 0 = not limited. */
    usd: Type.Number({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false },
);
export type LlmBudgetConfig = Static<typeof LlmBudgetSchema>;

// Providers, routes and budgets are checked (and their defaults filled) by `resolveLlmConfig` when the
// gateway is built: the config loader fills defaults of fixed objects only, not of map entries.
export const LlmConfigSchema = Type.Object(
  {
    /** Upstreams by name: see LlmProviderSchema. */
    providers: Type.Record(Type.String({ pattern: NAME }), Type.Unknown(), { default: {} }),
    /** Routes by the name apps put in `model`: see LlmRouteSchema. */
    routes: Type.Record(Type.String({ pattern: NAME }), Type.Unknown(), { default: {} }),
    /** Token and spend budgets: see LlmBudgetSchema. */
    budgets: Type.Array(Type.Unknown(), { default: [] }),
    cache: Type.Object(
      {
        /** Entries the in-process cache holds (embedded default; Redis when redis.url is set). */
        maxEntries: Type.Integer({ minimum: 1, default: 10_000 }),
        keyPrefix: Type.String({ default: 'ferry:llm:' }),
        /**
         * `memory`, `redis`, or `store` (the SQLite or PostgreSQL store: shared by replicas on one PostgreSQL);
         * empty: redis when redis.url is set, else memory.
         */
        backend: Type.Union([Type.Literal(''), Type.Literal('memory'), Type.Literal('redis'), Type.Literal('store')], {
          default: '',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * A price table (packages/tools/prices.yaml or your copy): its `llm:` list prices upstream models by
     * name; a provider's own `prices` entry for a model wins. Empty: only providers' `prices`.
     */
    pricesFile: Type.String({ default: '' }),
    /** Where budget counters live: empty = redis when redis.url is set, else the store. */
    budgetBackend: Type.Union([Type.Literal(''), Type.Literal('redis'), Type.Literal('store')], { default: '' }),
    /** Embedding source for the semantic cache: a provider's /embeddings API, or a Ferry model giving a vector. */
    embeddings: Type.Object(
      {
        /** A provider with an `/embeddings` API, or empty / a `ferry` provider for a model served here. */
        provider: Type.String({ default: '' }),
        model: Type.String({ default: '' }),
        /** The text feature of a Ferry embedding model. */
        field: Type.String({ default: 'text' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);
export type RawLlmConfig = Static<typeof LlmConfigSchema>;

/** The gateway's config with every provider, route and budget checked and completed with its defaults. */
export type LlmConfig = Omit<RawLlmConfig, 'providers' | 'routes' | 'budgets'> & {
  providers: Record<string, LlmProviderConfig>;
  routes: Record<string, LlmRouteConfig>;
  budgets: LlmBudgetConfig[];
};

export class LlmConfigError extends Error {}

function complete<T extends TSchema>(schema: T, value: unknown, where: string): Static<T> {
  const v = Value.Default(schema, Value.Clone(value ?? {}));
  const first = [...Value.Errors(schema, v)][0];
  if (first) throw new LlmConfigError(`${where}${first.path.replaceAll('/', '.')}: ${first.message}`);
  return v as Static<T>;
}

/** Checks providers, routes and budgets against their schemas and fills their defaults; throws naming the path. */
export function resolveLlmConfig(raw: RawLlmConfig): LlmConfig {
  const map = <T extends TSchema>(rec: Record<string, unknown>, schema: T, where: string) =>
    Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, complete(schema, v, `${where}.${k}`)]));
  return {
    ...raw,
    providers: map(raw.providers, LlmProviderSchema, 'llm.providers'),
    routes: map(raw.routes, LlmRouteSchema, 'llm.routes'),
    budgets: raw.budgets.map((b, i) => complete(LlmBudgetSchema, b, `llm.budgets[${i}]`)),
  };
}

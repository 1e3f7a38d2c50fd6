// The `generation` section of the server config: the decode worker, concurrency and stream limits.
import { Type, type Static } from '@sinclair/typebox';

export const GenerationConfigSchema = Type.Object(
  {
    /** Dedicated decode worker threads for generative models (each holds every generative model). */
    workers: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
    /** Generations running at once, server-wide; past it a request gets 503 server-overloaded with Retry-After. */
    maxConcurrent: Type.Integer({ minimum: 1, default: 16 }),
    /** Tokens the model may run ahead of what the client's socket has accepted. */
    creditTokens: Type.Integer({ minimum: 1, maximum: 4096, default: 16 }),
    /** A stream whose socket stays full this long (the client stopped reading) is closed with a reason. */
    stallTimeoutMs: Type.Integer({ minimum: 1, default: 30_000 }),
    /** `max_tokens` when neither the request nor the model sets it. */
    defaultMaxTokens: Type.Integer({ minimum: 1, default: 256 }),
    /** Largest `max_tokens` a request may ask for. */
    maxTokensLimit: Type.Integer({ minimum: 1, default: 4096 }),
    /** Largest prompt, in characters, before tokenisation. */
    maxPromptChars: Type.Integer({ minimum: 1, default: 200_000 }),
    /** Largest number of chat messages. */
    maxMessages: Type.Integer({ minimum: 1, default: 256 }),
    /** Most generations of one model advanced together in one ORT run per step (continuous batching). */
    maxBatchSize: Type.Integer({ minimum: 1, maximum: 1024, default: 32 }),
    /** Most prompt tokens prefilled in one run; longer prompts are prefilled in chunks between decode steps. */
    prefillChunkTokens: Type.Integer({ minimum: 1, default: 256 }),
    /**
     * KV-cache memory that running generations may reserve (prompt + max_tokens, per generation), in MiB
     * per decode worker; past it a request gets 503 server-overloaded with Retry-After.
     */
    maxKvMiB: Type.Number({ exclusiveMinimum: 0, default: 512 }),
    /** Prefix cache per model and decode worker, in tokens of keys and values kept (0 turns it off). */
    prefixCacheTokens: Type.Integer({ minimum: 0, default: 8192 }),
    /** Prefix cache granularity: prompts share cache entries in whole blocks of this many tokens. */
    prefixBlockTokens: Type.Integer({ minimum: 1, maximum: 4096, default: 16 }),
    /** Largest `n` (choices per request). */
    maxChoices: Type.Integer({ minimum: 1, maximum: 128, default: 8 }),
  },
  { additionalProperties: false, default: {} },
);

export type GenerationConfig = Static<typeof GenerationConfigSchema>;

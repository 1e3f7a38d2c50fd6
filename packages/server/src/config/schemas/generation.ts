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
  },
  { additionalProperties: false, default: {} },
);

export type GenerationConfig = Static<typeof GenerationConfigSchema>;

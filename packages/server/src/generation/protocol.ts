// Messages between the main thread and the decode worker. The main thread grants `credit` (tokens the
// worker may produce ahead of the client); when the client's socket is full no credit comes, and the
// worker takes that generation out of the batch: backpressure reaches the model, not a buffer.
import type { OrtSessionOptions } from '../serving/runtime/session-options.js';

export interface DecoderLayout {
  layers: number;
  /**
   * Heads of the key/value cache (dimension 1 of `past_key_values.*`): fewer than the model's attention
   * heads when it uses grouped-query or multi-query attention, and then the cache is that much smaller.
   */
  heads: number;
  headDim: number;
  vocabSize: number;
  /** Whether the export takes `position_ids` (some older GPT-2 exports do not). */
  positionIds: boolean;
  inputs: string[];
  outputs: string[];
}

export interface GenerateRequest {
  key: string;
  promptIds: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  eosIds: number[];
  /** Tokens the worker may produce before waiting for more credit. */
  credit: number;
  /** Report each token's log-probability and this many alternatives (`logprobs` / `top_logprobs`). */
  topLogprobs?: number;
  /** Further choices (`n` > 1) sharing this prompt's prefill: their generation ids and seeds. */
  forks?: { id: number; seed: number }[];
}

/** How the decode worker batches, from the `generation` config. */
export interface SchedulerOptions {
  maxBatchSize: number;
  prefillChunkTokens: number;
  /** Prefix cache bound, in tokens per model (0 turns it off). */
  prefixCacheTokens: number;
  prefixBlockTokens: number;
}

/** Counters of one model in one decode worker (tests, bench, metrics). */
export interface DecoderStats {
  /** Sequences of the model in the worker now (prefilling, decoding or paused). */
  sequences: number;
  decodeRuns: number;
  decodeRows: number;
  maxRows: number;
  prefillRuns: number;
  prefillTokens: number;
  rebuilds: number;
  prefixLookups: number;
  prefixHits: number;
  prefixHitTokens: number;
  prefixCachedTokens: number;
}

export type ToDecoder =
  | {
      type: 'load';
      id: number;
      key: string;
      modelPath: string;
      options: OrtSessionOptions;
      scheduler: SchedulerOptions;
    }
  | { type: 'stats'; id: number; key: string }
  | { type: 'unload'; id: number; key: string }
  | { type: 'generate'; id: number; request: GenerateRequest }
  | { type: 'credit'; id: number; tokens: number }
  /** Credit for several generations at once: [generation id, tokens] pairs. */
  | { type: 'credits'; id: 0; grants: [number, number][] }
  | { type: 'cancel'; id: number }
  | { type: 'shutdown'; id: number };

export type FinishReason = 'stop' | 'length' | 'cancelled';

export type FromDecoder =
  | { type: 'loaded'; id: number; layout: DecoderLayout; loadMs: number }
  | { type: 'unloaded'; id: number }
  | {
      type: 'token';
      id: number;
      token: number;
      /** ms since the request reached the worker, for the first token */ sinceStartMs: number;
      logprob?: number;
      top?: [number, number][];
    }
  | {
      type: 'done';
      id: number;
      reason: FinishReason;
      completionTokens: number;
      cachedPromptTokens: number;
      prefillMs: number;
      decodeMs: number;
    }
  | { type: 'stats'; id: number; stats: DecoderStats | undefined }
  /** Several generations' messages of one step, in order (id 0: it answers no request). */
  | { type: 'batch'; id: 0; messages: FromDecoder[] }
  | { type: 'error'; id: number; message: string; code?: string };

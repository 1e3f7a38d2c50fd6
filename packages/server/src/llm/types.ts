// The gateway's own words for a chat request and its answer, independent of any upstream's wire
// format. Providers translate to and from these; the HTTP layer translates OpenAI's JSON to them.

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatRequest {
  messages: ChatMessage[];
  /** Completion tokens at most (the route's default when the client set none). */
  maxTokens: number;
  temperature?: number;
  topP?: number;
  stop: string[];
  seed?: number;
  /** Whether the caller wants a stream (providers stream upstream too, so the first token comes early). */
  stream: boolean;
  /** Ask the upstream for each token's log-probability (the cascade's confidence check). */
  logprobs?: boolean;
  /** OpenAI's `response_format` as the caller sent it (passed to OpenAI-compatible upstreams). */
  responseFormat?: Record<string, unknown>;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens the provider served from its own prompt cache (priced as cached input). */
  cachedPromptTokens: number;
}

export interface ChatAnswer {
  text: string;
  /** OpenAI's finish reasons: `stop`, `length` (or whatever the upstream said). */
  finishReason: string;
  usage: Usage;
  /** The upstream's own model name as it answered. */
  model: string;
  /** Each completion token's log-probability, when asked for and the upstream gives them. */
  logprobs?: number[];
}

/** Called with each piece of text as it arrives from the upstream (streamed requests). */
export type DeltaSink = (text: string) => void;

/** One call to an upstream. Throws `UpstreamError` for failures the gateway may retry or fall back on. */
export interface ChatProvider {
  readonly name: string;
  readonly kind: 'openai' | 'anthropic' | 'ferry';
  chat(model: string, req: ChatRequest, signal: AbortSignal, onDelta?: DeltaSink): Promise<ChatAnswer>;
}

/** A vector per input text (the semantic cache's embedding source). */
export interface EmbeddingSource {
  readonly name: string;
  embed(texts: string[], signal: AbortSignal): Promise<number[][]>;
}

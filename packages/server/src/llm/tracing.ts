// The attributes of an upstream attempt's CLIENT span, in OpenTelemetry's gen_ai semantic conventions
// (gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.*, gen_ai.response.*, gen_ai.usage.*)
// where they fit, and `ferry.llm.*` for what they have no name for (the configured provider, the attempt).
// Called only with tracing on (resilience.ts starts the span); never holds prompts or answers.
import type { Attributes } from '@opentelemetry/api';
import type { LlmProviderConfig } from '../config/schemas/llm.js';
import { UpstreamError } from './upstream-error.js';
import type { ChatAnswer, ChatProvider, ChatRequest } from './types.js';

function server(baseUrl: string): Attributes {
  try {
    const u = new URL(baseUrl);
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    return { 'server.address': u.hostname, 'server.port': port };
  } catch {
    return {}; // a Ferry model, or no URL
  }
}

/** What is known before the call. `attempt` counts from 0 (the first try); the span says 1 for it. */
export function attemptSpanAttributes(
  provider: Pick<ChatProvider, 'name' | 'kind'>,
  cfg: Pick<LlmProviderConfig, 'baseUrl' | 'maxRetries'>,
  model: string,
  req: ChatRequest,
  attempt: number,
): Attributes {
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': provider.kind,
    'gen_ai.request.model': model,
    'gen_ai.request.max_tokens': req.maxTokens,
    ...(req.temperature !== undefined && { 'gen_ai.request.temperature': req.temperature }),
    ...(req.topP !== undefined && { 'gen_ai.request.top_p': req.topP }),
    ...(req.seed !== undefined && { 'gen_ai.request.seed': req.seed }),
    ...(req.stop.length > 0 && { 'gen_ai.request.stop_sequences': req.stop }),
    ...server(cfg.baseUrl),
    'ferry.llm.provider': provider.name,
    'ferry.llm.stream': req.stream,
    'ferry.llm.attempt': attempt + 1,
    'ferry.llm.retries': attempt,
    'ferry.llm.max_retries': cfg.maxRetries,
  };
}

/** What the attempt ended with: the answer's model, finish reason and usage, or the failure. */
export function attemptSpanOutcome(answer: ChatAnswer | undefined, error?: unknown): Attributes {
  if (answer)
    return {
      'gen_ai.response.model': answer.model,
      'gen_ai.response.finish_reasons': [answer.finishReason],
      'gen_ai.usage.input_tokens': answer.usage.promptTokens,
      'gen_ai.usage.output_tokens': answer.usage.completionTokens,
      'ferry.llm.usage.cached_input_tokens': answer.usage.cachedPromptTokens,
    };
  if (!(error instanceof UpstreamError)) return { 'error.type': error instanceof Error ? error.name : 'error' };
  return {
    // HTTP failures by status code, as the HTTP conventions name them; the rest by Ferry's failure kind.
    'error.type': error.status !== undefined ? String(error.status) : error.failure,
    'ferry.llm.failure': error.failure,
    'ferry.llm.retryable': error.retryable,
    ...(error.status !== undefined && { 'http.response.status_code': error.status }),
  };
}

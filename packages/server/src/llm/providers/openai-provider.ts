// An OpenAI-compatible upstream: OpenAI, Azure OpenAI's v1 surface, vLLM, Ollama, llama.cpp server, or
// another Ferry's /openai/v1. Requests are the chat completions wire format; streamed answers are read
// as SSE chunks until `[DONE]`, with `stream_options.include_usage` so the last chunk carries usage.
import type { LlmProviderConfig } from '../../config/schemas/llm.js';
import { UpstreamError } from '../upstream-error.js';
import type { ChatAnswer, ChatProvider, ChatRequest, DeltaSink, Usage } from '../types.js';
import { HttpAttempt, num, parseChunk } from './http-attempt.js';

function usageOf(u: unknown): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const o = u as Record<string, unknown>;
  const details = o.prompt_tokens_details as Record<string, unknown> | undefined;
  return {
    promptTokens: num(o.prompt_tokens),
    completionTokens: num(o.completion_tokens),
    cachedPromptTokens: num(details?.cached_tokens),
  };
}

/** The request body in OpenAI's wire format. */
export function openAiBody(model: string, req: ChatRequest): Record<string, unknown> {
  return {
    model,
    messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
    max_tokens: req.maxTokens,
    ...(req.temperature !== undefined && { temperature: req.temperature }),
    ...(req.topP !== undefined && { top_p: req.topP }),
    ...(req.stop.length > 0 && { stop: req.stop }),
    ...(req.seed !== undefined && { seed: req.seed }),
    ...(req.stream && { stream: true, stream_options: { include_usage: true } }),
    ...(req.logprobs && { logprobs: true }),
    ...(req.responseFormat && { response_format: req.responseFormat }),
  };
}

/** The `logprob` of each entry of a choice's `logprobs.content` (OpenAI's chat shape), appended to `into`. */
function logprobsInto(choice: Record<string, unknown> | undefined, into: number[] | undefined): number[] | undefined {
  const content = (choice?.logprobs as { content?: unknown } | null | undefined)?.content;
  if (!Array.isArray(content)) return into;
  const out = into ?? [];
  for (const e of content) {
    const lp = (e as { logprob?: unknown } | null)?.logprob;
    if (typeof lp === 'number') out.push(lp);
  }
  return out;
}

export class OpenAiProvider implements ChatProvider {
  readonly kind = 'openai' as const;

  constructor(
    readonly name: string,
    private readonly cfg: LlmProviderConfig,
    private readonly apiKey: string | undefined,
  ) {}

  #headers(): Record<string, string> {
    return { ...this.cfg.headers, ...(this.apiKey && { authorization: `Bearer ${this.apiKey}` }) };
  }

  async chat(model: string, req: ChatRequest, signal: AbortSignal, onDelta?: DeltaSink): Promise<ChatAnswer> {
    const at = new HttpAttempt(this.name, this.cfg, signal);
    try {
      const url = `${this.cfg.baseUrl.replace(/\/+$/, '')}/chat/completions`;
      const res = await at.post(url, this.#headers(), openAiBody(model, req));
      if (!req.stream) return this.#whole(at, await at.json(res), model);
      let text = '';
      let finish: string | undefined;
      let usage: Usage | undefined;
      let answeredModel = model;
      let logprobs: number[] | undefined;
      let done = false;
      await at.events(res, (ev) => {
        if (ev.data === '[DONE]') {
          done = true;
          return;
        }
        const c = parseChunk(this.name, ev.data);
        if (c.error) throw new UpstreamError(this.name, 'http', `${this.name}: error event in the stream`, 502);
        if (typeof c.model === 'string') answeredModel = c.model;
        usage = usageOf(c.usage) ?? usage;
        const choice = (c.choices as Record<string, unknown>[] | undefined)?.[0];
        if (!choice) return;
        if (req.logprobs) logprobs = logprobsInto(choice, logprobs);
        const delta = choice.delta as Record<string, unknown> | undefined;
        const piece = delta?.content;
        if (typeof piece === 'string' && piece.length > 0) {
          at.firstToken();
          text += piece;
          onDelta?.(piece);
        }
        if (typeof choice.finish_reason === 'string') finish = choice.finish_reason;
      });
      if (!done || finish === undefined)
        throw new UpstreamError(this.name, 'stream-cut', `${this.name}: the stream ended before [DONE]`);
      return {
        text,
        finishReason: finish,
        usage: usage ?? { promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0 },
        model: answeredModel,
        ...(logprobs && { logprobs }),
      };
    } catch (e) {
      throw at.failure(e);
    } finally {
      at.end();
    }
  }

  #whole(at: HttpAttempt, body: unknown, model: string): ChatAnswer {
    const o = body as Record<string, unknown>;
    const choice = (o.choices as Record<string, unknown>[] | undefined)?.[0];
    const message = choice?.message as Record<string, unknown> | undefined;
    if (!message || typeof message.content !== 'string')
      throw new UpstreamError(at.provider, 'malformed', `${at.provider}: a response without choices[0].message`);
    const logprobs = logprobsInto(choice, undefined);
    return {
      text: message.content,
      finishReason: typeof choice?.finish_reason === 'string' ? choice.finish_reason : 'stop',
      usage: usageOf(o.usage) ?? { promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0 },
      model: typeof o.model === 'string' ? o.model : model,
      ...(logprobs && { logprobs }),
    };
  }
}

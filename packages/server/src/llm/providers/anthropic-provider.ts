// The Anthropic Messages API, translated both ways: OpenAI-shaped requests become a Messages request
// (system prompts lifted into `system`, consecutive turns of one role merged, `max_tokens` always set),
// and its answer — whole, or the streamed events message_start / content_block_delta / message_delta /
// message_stop — becomes the gateway's answer and OpenAI chunks.
import type { LlmProviderConfig } from '../../config/schemas/llm.js';
import { UpstreamError } from '../upstream-error.js';
import type { ChatAnswer, ChatProvider, ChatRequest, DeltaSink } from '../types.js';
import { HttpAttempt, num, parseChunk } from './http-attempt.js';

const ANTHROPIC_VERSION = '2023-06-01';

/** Anthropic's stop reasons in OpenAI's words. */
export function finishFromAnthropic(reason: unknown): string {
  if (reason === 'max_tokens') return 'length';
  if (reason === 'tool_use') return 'tool_calls';
  if (reason === 'refusal') return 'content_filter';
  return 'stop';
}

/** The Messages request for an OpenAI-shaped chat. */
export function anthropicBody(model: string, req: ChatRequest): Record<string, unknown> {
  const system = req.messages
    .filter((m) => m.role === 'system' || m.role === 'developer')
    .map((m) => m.content)
    .join('\n\n');
  const turns: { role: 'user' | 'assistant'; content: string }[] = [];
  for (const m of req.messages) {
    if (m.role === 'system' || m.role === 'developer') continue;
    const last = turns.at(-1);
    if (last && last.role === m.role) last.content += `\n\n${m.content}`;
    else turns.push({ role: m.role, content: m.content });
  }
  // The Messages API wants a user turn first.
  if (turns[0]?.role !== 'user') turns.unshift({ role: 'user', content: '' });
  return {
    model,
    max_tokens: req.maxTokens,
    messages: turns,
    ...(system && { system }),
    ...(req.temperature !== undefined && { temperature: Math.min(1, req.temperature) }),
    ...(req.topP !== undefined && { top_p: req.topP }),
    ...(req.stop.length > 0 && { stop_sequences: req.stop }),
    ...(req.stream && { stream: true }),
  };
}

export class AnthropicProvider implements ChatProvider {
  readonly kind = 'anthropic' as const;

  constructor(
    readonly name: string,
    private readonly cfg: LlmProviderConfig,
    private readonly apiKey: string | undefined,
  ) {}

  async chat(model: string, req: ChatRequest, signal: AbortSignal, onDelta?: DeltaSink): Promise<ChatAnswer> {
    const at = new HttpAttempt(this.name, this.cfg, signal);
    const headers = {
      'anthropic-version': ANTHROPIC_VERSION,
      ...this.cfg.headers,
      ...(this.apiKey && { 'x-api-key': this.apiKey }),
    };
    try {
      const url = `${this.cfg.baseUrl.replace(/\/+$/, '')}/messages`;
      const res = await at.post(url, headers, anthropicBody(model, req));
      if (!req.stream) {
        const o = (await at.json(res)) as Record<string, unknown>;
        const blocks = o.content as { type?: string; text?: string }[] | undefined;
        if (!Array.isArray(blocks))
          throw new UpstreamError(this.name, 'malformed', `${this.name}: a message without content`);
        const u = (o.usage ?? {}) as Record<string, unknown>;
        return {
          text: blocks.map((b) => (b.type === 'text' && typeof b.text === 'string' ? b.text : '')).join(''),
          finishReason: finishFromAnthropic(o.stop_reason),
          usage: {
            promptTokens: num(u.input_tokens) + num(u.cache_read_input_tokens) + num(u.cache_creation_input_tokens),
            completionTokens: num(u.output_tokens),
            cachedPromptTokens: num(u.cache_read_input_tokens),
          },
          model: typeof o.model === 'string' ? o.model : model,
        };
      }
      let text = '';
      let answeredModel = model;
      let prompt = 0;
      let cached = 0;
      let completion = 0;
      let finish: string | undefined;
      let stopped = false;
      await at.events(res, (ev) => {
        const c = parseChunk(this.name, ev.data);
        switch (c.type) {
          case 'message_start': {
            const m = (c.message ?? {}) as Record<string, unknown>;
            if (typeof m.model === 'string') answeredModel = m.model;
            const u = (m.usage ?? {}) as Record<string, unknown>;
            cached = num(u.cache_read_input_tokens);
            prompt = num(u.input_tokens) + cached + num(u.cache_creation_input_tokens);
            completion = num(u.output_tokens);
            break;
          }
          case 'content_block_delta': {
            const d = (c.delta ?? {}) as Record<string, unknown>;
            if (d.type === 'text_delta' && typeof d.text === 'string' && d.text) {
              at.firstToken();
              text += d.text;
              onDelta?.(d.text);
            }
            break;
          }
          case 'message_delta': {
            const d = (c.delta ?? {}) as Record<string, unknown>;
            if (d.stop_reason !== undefined && d.stop_reason !== null) finish = finishFromAnthropic(d.stop_reason);
            const u = (c.usage ?? {}) as Record<string, unknown>;
            if (u.output_tokens !== undefined) completion = num(u.output_tokens);
            break;
          }
          case 'message_stop':
            stopped = true;
            break;
          case 'error': {
            const err = (c.error ?? {}) as Record<string, unknown>;
            // overloaded_error is Anthropic's 529: worth another try elsewhere.
            throw new UpstreamError(this.name, 'http', `${this.name}: stream error ${String(err.type)}`, 529);
          }
          default: // ping, content_block_start/stop
        }
      });
      if (!stopped)
        throw new UpstreamError(this.name, 'stream-cut', `${this.name}: the stream ended before message_stop`);
      return {
        text,
        finishReason: finish ?? 'stop',
        usage: { promptTokens: prompt, completionTokens: completion, cachedPromptTokens: cached },
        model: answeredModel,
      };
    } catch (e) {
      throw at.failure(e);
    } finally {
      at.end();
    }
  }
}

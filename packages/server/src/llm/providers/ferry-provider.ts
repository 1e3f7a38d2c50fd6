// Ferry's own generative models as a provider: the same decode workers that serve /openai/v1, called
// in process (no HTTP hop). A route target `{provider: local, model: ham-chat}` names the model.
import { performance } from 'node:perf_hooks';
import { FerryError } from '../../errors.js';
import type { GenerationService } from '../../generation/index.js';
import { UpstreamError } from '../upstream-error.js';
import type { ChatAnswer, ChatProvider, ChatRequest, DeltaSink } from '../types.js';

export class FerryProvider implements ChatProvider {
  readonly kind = 'ferry' as const;

  constructor(
    readonly name: string,
    private readonly generation: GenerationService,
  ) {}

  async chat(model: string, req: ChatRequest, signal: AbortSignal, onDelta?: DeltaSink): Promise<ChatAnswer> {
    const gv = this.generation.resolve(model);
    const ids = this.generation.encodePrompt(gv, { messages: req.messages });
    const room = gv.contextLength - ids.length;
    if (room < 1)
      throw new FerryError('context-length-exceeded', { detail: `the prompt does not fit ${gv.version.key}` });
    let gen;
    try {
      gen = this.generation.start(
        gv,
        ids,
        {
          maxTokens: Math.min(req.maxTokens, room),
          temperature: req.temperature ?? gv.version.manifest.generation?.defaults?.temperature ?? 1,
          topP: req.topP ?? 1,
          stop: req.stop,
          ...(req.seed !== undefined && { seed: req.seed }),
          ...(req.logprobs && { topLogprobs: 0 }),
        },
        performance.now(),
      );
    } catch (e) {
      // Full decode slots are an upstream's 503: retried, then another provider.
      if (e instanceof FerryError && e.code === 'server-overloaded')
        throw new UpstreamError(this.name, 'http', `${this.name}: ${e.detail}`, 503, 1000);
      throw e;
    }
    const onAbort = () => gen.cancel('disconnected');
    signal.addEventListener('abort', onAbort, { once: true });
    gen.onDelta = (d) => {
      gen.ack(1);
      onDelta?.(d);
    };
    try {
      const r = await gen.done;
      if (r.reason === 'disconnected') throw new UpstreamError(this.name, 'total-timeout', `${this.name}: cancelled`);
      return {
        text: r.text,
        finishReason: r.reason === 'length' ? 'length' : 'stop',
        usage: { promptTokens: r.promptTokens, completionTokens: r.completionTokens, cachedPromptTokens: 0 },
        model: gv.version.key,
        ...(r.logprobs && { logprobs: r.logprobs.map((l) => l.logprob) }),
      };
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}

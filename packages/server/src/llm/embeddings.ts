// Embedding sources for the semantic cache. An OpenAI-compatible `/embeddings` API (OpenAI, vLLM,
// Ollama, another Ferry once it serves embeddings), or a model served by this Ferry whose prediction is
// a vector (any version whose output holds an array of numbers, e.g. an embeddings postprocess).
import type { LlmProviderConfig } from '../config/schemas/llm.js';
import { HttpAttempt } from './providers/http-attempt.js';
import { UpstreamError } from './upstream-error.js';
import type { EmbeddingSource } from './types.js';

export class HttpEmbeddings implements EmbeddingSource {
  constructor(
    readonly name: string,
    private readonly cfg: LlmProviderConfig,
    private readonly apiKey: string | undefined,
    private readonly model: string,
  ) {}

  async embed(texts: string[], signal: AbortSignal): Promise<number[][]> {
    const at = new HttpAttempt(this.name, this.cfg, signal);
    try {
      const res = await at.post(
        `${this.cfg.baseUrl.replace(/\/+$/, '')}/embeddings`,
        { ...this.cfg.headers, ...(this.apiKey && { authorization: `Bearer ${this.apiKey}` }) },
        { model: this.model, input: texts },
      );
      const body = (await at.json(res)) as { data?: { index?: number; embedding?: unknown }[] };
      const out: number[][] = [];
      for (const [i, d] of (body.data ?? []).entries()) {
        if (!Array.isArray(d.embedding) || !d.embedding.every((x) => typeof x === 'number'))
          throw new UpstreamError(this.name, 'malformed', `${this.name}: an embedding that is not a number array`);
        out[d.index ?? i] = d.embedding as number[];
      }
      if (out.length !== texts.length)
        throw new UpstreamError(
          this.name,
          'malformed',
          `${this.name}: ${out.length} embeddings for ${texts.length} inputs`,
        );
      return out;
    } catch (e) {
      throw at.failure(e);
    } finally {
      at.end();
    }
  }
}

/** The first number array in a prediction: the prediction itself, or its first field that is one. */
export function vectorOf(prediction: unknown): number[] | undefined {
  const isVec = (v: unknown): v is number[] =>
    Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number');
  if (isVec(prediction)) return prediction;
  if (prediction && typeof prediction === 'object') for (const v of Object.values(prediction)) if (isVec(v)) return v;
  return undefined;
}

/** A Ferry model as embedding source; `predict` is the server's predict path (given by the composition root). */
export class FerryModelEmbeddings implements EmbeddingSource {
  constructor(
    readonly name: string,
    private readonly predict: (text: string) => Promise<unknown>,
  ) {}

  async embed(texts: string[]): Promise<number[][]> {
    return Promise.all(
      texts.map(async (t) => {
        const v = vectorOf(await this.predict(t));
        if (!v) throw new UpstreamError(this.name, 'malformed', `${this.name}: the model's prediction holds no vector`);
        return v;
      }),
    );
  }
}

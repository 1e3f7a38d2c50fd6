// OpenAI-style token streams (`/openai/v1/chat/completions` with `stream: true`): SSE `data:` chunks
// until `data: [DONE]`, turned into one small object per token.
import type { CallOptions, FerryClient } from './client.js';
import { ERROR_CATALOGUE, isErrorCode } from '@ferry/core';
import { errorFromProblem } from './errors.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
  seed?: number;
}
export interface TokenChunk {
  /** The new text of this chunk. */
  token: string;
  /** Everything received so far. */
  text: string;
  finishReason: string | null;
}

interface OpenAiChunk {
  choices?: Array<{ delta?: { content?: string }; text?: string; finish_reason?: string | null }>;
  /** An error after the stream started (`stream-stalled`, a model failure): the last event, no [DONE]. */
  error?: { message?: string; code?: string; type?: string; param?: string };
}

export async function* openAiStream(
  client: FerryClient,
  path: string,
  req: object,
  o: CallOptions,
): AsyncGenerator<TokenChunk> {
  let text = '';
  for await (const e of client.sse(path, { ...o, method: 'POST', body: { ...req, stream: true } })) {
    if (e.data === '[DONE]') return;
    let chunk: OpenAiChunk;
    try {
      chunk = JSON.parse(e.data) as OpenAiChunk;
    } catch {
      continue;
    }
    if (chunk.error) {
      const code = chunk.error.code ?? 'internal';
      const status = isErrorCode(code) ? ERROR_CATALOGUE[code].status : 500;
      throw errorFromProblem(status, { code, status, detail: chunk.error.message ?? code, error: chunk.error });
    }
    const c = chunk.choices?.[0];
    const token = c?.delta?.content ?? c?.text ?? '';
    const finishReason = c?.finish_reason ?? null;
    // The first chat chunk only announces the role, and the usage chunk has no choices: no token in either.
    if (token === '' && finishReason === null) continue;
    text += token;
    yield { token, text, finishReason };
  }
}

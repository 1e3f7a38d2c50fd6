// A PROVIDER EMULATOR for tests and benchmarks: it stands in for hosted LLM APIs (OpenAI, Anthropic) that
// tests cannot reach, not for any part of Ferry. It speaks the real wire protocols — OpenAI
// POST /v1/chat/completions (JSON, or SSE chunks ending `data: [DONE]`, usage in the last chunk when
// asked), POST /v1/embeddings, and Anthropic POST /v1/messages (JSON, or the named SSE events
// message_start / content_block_* / message_delta / message_stop) — and can be told to misbehave the ways
// real providers do: 429 with Retry-After, 500, a slow first byte, a stream cut midway, a malformed chunk,
// wrong `usage`. Answers are deterministic: by default `reply: <last user message>`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { createHash } from 'node:crypto';

export type EmulatorFault =
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'slow-first-byte'; ms: number }
  | { kind: 'cut-stream'; afterChunks: number }
  | { kind: 'malformed-chunk'; afterChunks: number }
  | { kind: 'wrong-usage'; promptTokens: number; completionTokens: number }
  | { kind: 'no-usage' };

export interface EmulatorRequest {
  api: 'openai' | 'anthropic' | 'embeddings';
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface LlmEmulatorOptions {
  /** Serve HTTPS with this key and certificate (PEM), as a hosted API does; the URL is then https://. */
  tls?: { key: string; cert: string };
  /** The answer text for a request's messages (default: `reply: ` + the last user message). */
  answer?: (messages: { role: string; content: string }[], model: string) => string;
  /** Delay before every response (simulated upstream latency), ms. */
  latencyMs?: number;
  /**
   * The log-probability reported for each word of an answer when a request asks for `logprobs`
   * (OpenAI chat API only; default -0.01, a confident model).
   */
  logprob?: (word: string, model: string, messages: { role: string; content: string }[]) => number;
}

export interface LlmEmulator {
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: EmulatorRequest[];
  /** Faults applied to the next requests, one each, in order (chat requests only). */
  readonly faults: EmulatorFault[];
  /** A fault applied to every chat request until cleared. */
  always: EmulatorFault | undefined;
  latencyMs: number;
  /** Stops listening and destroys open connections (an upstream that dies). */
  kill(): Promise<void>;
  close(): Promise<void>;
}

/** Words, the emulator's token unit (so tests can predict usage exactly). */
export const emulatorTokens = (s: string) => s.split(/\s+/).filter(Boolean).length;

/** A deterministic embedding: hashed character trigrams of lowercase words, L2-normalised, 256 dimensions. */
export function emulatorEmbedding(text: string, dims = 256): number[] {
  const v = new Array<number>(dims).fill(0);
  for (const word of text.toLowerCase().match(/[a-z0-9']+/g) ?? []) {
    const w = ` ${word} `;
    for (let i = 0; i + 3 <= w.length; i++) {
      const h = createHash('md5')
        .update(w.slice(i, i + 3))
        .digest();
      v[h.readUInt32LE(0) % dims]! += h[4]! & 1 ? 1 : -1;
    }
  }
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Cuts the connection after what was written has left (an SSE comment flushes it), like a dying upstream. */
async function cut(res: ServerResponse): Promise<void> {
  await new Promise<void>((r) => res.write(':\n\n', () => r()));
  await sleep(20);
  res.socket?.destroy();
}

type Msg = { role: string; content: string };

function messagesOf(body: Record<string, unknown>): Msg[] {
  const out: Msg[] = [];
  if (typeof body.system === 'string') out.push({ role: 'system', content: body.system });
  for (const m of (body.messages as { role: string; content: unknown }[] | undefined) ?? []) {
    const content = typeof m.content === 'string' ? m.content : JSON.stringify(m.content);
    out.push({ role: m.role, content });
  }
  return out;
}

/** Starts the emulator on 127.0.0.1 (a free port). */
// eslint-disable-next-line max-lines-per-function -- one emulator, three protocols
export async function startLlmEmulator(o: LlmEmulatorOptions = {}): Promise<LlmEmulator> {
  const answerFor =
    o.answer ?? ((messages: Msg[]) => `reply: ${messages.filter((m) => m.role === 'user').at(-1)?.content ?? ''}`);
  const sockets = new Set<Socket>();
  const emu: LlmEmulator = {
    url: '',
    requests: [],
    faults: [],
    always: undefined,
    latencyMs: o.latencyMs ?? 0,
    kill: async () => {
      await new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      });
    },
    close: async () => {
      if (!server.listening) return;
      await emu.kill();
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = await readBody(req);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"bad json"}}');
      return;
    }
    const path = (req.url ?? '').split('?')[0]!;
    const api = path.endsWith('/embeddings') ? 'embeddings' : path.endsWith('/messages') ? 'anthropic' : 'openai';
    emu.requests.push({ api, path, headers: req.headers, body });
    if (emu.latencyMs > 0) await sleep(emu.latencyMs);
    if (api === 'embeddings') {
      const input = Array.isArray(body.input) ? (body.input as string[]) : [String(body.input)];
      const data = input.map((t, index) => ({ object: 'embedding', index, embedding: emulatorEmbedding(t) }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ object: 'list', data, model: body.model, usage: { prompt_tokens: 0, total_tokens: 0 } }),
      );
      return;
    }
    const fault = emu.faults.shift() ?? emu.always;
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, {
        'content-type': 'application/json',
        ...(fault.retryAfter !== undefined && { 'retry-after': fault.retryAfter }),
      });
      res.end(JSON.stringify({ error: { message: `emulated ${fault.status}`, type: 'emulated' } }));
      return;
    }
    if (fault?.kind === 'slow-first-byte') await sleep(fault.ms);
    const messages = messagesOf(body);
    const model = String(body.model);
    const text = answerFor(messages, model);
    const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : Infinity;
    const words = text.split(/(?<=\s)/).slice(0, maxTokens);
    const finalText = words.join('');
    const truncated = words.length < text.split(/(?<=\s)/).length;
    let prompt = messages.reduce((n, m) => n + emulatorTokens(m.content), 0);
    let completion = words.length;
    if (fault?.kind === 'wrong-usage') {
      prompt = fault.promptTokens;
      completion = fault.completionTokens;
    }
    const noUsage = fault?.kind === 'no-usage';
    const cutAt = fault?.kind === 'cut-stream' || fault?.kind === 'malformed-chunk' ? fault.afterChunks : Infinity;
    const id = `emu-${emu.requests.length}`;
    const lpOf = (w: string) => ({
      token: w,
      logprob: o.logprob?.(w, model, messages) ?? -0.01,
      bytes: null,
      top_logprobs: [],
    });
    const wantLogprobs = body.logprobs === true;
    if (api === 'openai') {
      const finish = truncated ? 'length' : 'stop';
      const usage = noUsage
        ? undefined
        : { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id,
            object: 'chat.completion',
            created: 0,
            model,
            choices: [
              {
                index: 0,
                message: { role: 'assistant', content: finalText },
                logprobs: wantLogprobs ? { content: words.map(lpOf) } : null,
                finish_reason: finish,
              },
            ],
            ...(usage && { usage }),
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const send = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
      const chunk = (delta: unknown, finish: string | null, word?: string) => ({
        id,
        object: 'chat.completion.chunk',
        created: 0,
        model,
        choices: [
          {
            index: 0,
            delta,
            logprobs: wantLogprobs && word !== undefined ? { content: [lpOf(word)] } : null,
            finish_reason: finish,
          },
        ],
      });
      send(chunk({ role: 'assistant', content: '' }, null));
      for (const [i, w] of words.entries()) {
        if (i === cutAt) {
          if (fault?.kind === 'malformed-chunk') {
            res.write('data: {"id": "broken", "choices": [\n\n');
            continue;
          }
          await cut(res);
          return;
        }
        send(chunk({ content: w }, null, w));
      }
      send(chunk({}, finish));
      const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
      if (includeUsage && usage) send({ id, object: 'chat.completion.chunk', created: 0, model, choices: [], usage });
      res.end('data: [DONE]\n\n');
      return;
    }
    // Anthropic Messages.
    const stop = truncated ? 'max_tokens' : 'end_turn';
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id,
          type: 'message',
          role: 'assistant',
          model,
          content: [{ type: 'text', text: finalText }],
          stop_reason: stop,
          stop_sequence: null,
          usage: noUsage ? {} : { input_tokens: prompt, output_tokens: completion },
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const ev = (type: string, data: Record<string, unknown>) =>
      res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    ev('message_start', {
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        usage: noUsage ? {} : { input_tokens: prompt, output_tokens: 1 },
      },
    });
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    ev('ping', {});
    for (const [i, w] of words.entries()) {
      if (i === cutAt) {
        if (fault?.kind === 'malformed-chunk') {
          res.write('event: content_block_delta\ndata: {"type": "content_block_delta", "delta": \n\n');
          continue;
        }
        await cut(res);
        return;
      }
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: w } });
    }
    ev('content_block_stop', { index: 0 });
    ev('message_delta', {
      delta: { stop_reason: stop, stop_sequence: null },
      usage: noUsage ? {} : { output_tokens: completion },
    });
    ev('message_stop', {});
    res.end();
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => res.destroy());
  };
  const server: Server = o.tls ? createHttpsServer(o.tls, onRequest) : createServer(onRequest);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  (emu as { url: string }).url =
    `${o.tls ? 'https' : 'http'}://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/v1`;
  return emu;
}

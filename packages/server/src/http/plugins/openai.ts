// The OpenAI-compatible API at /openai/v1: chat and text completions (streamed as server-sent events
// or whole) and the model list. Errors are Ferry's problem+json documents that also carry OpenAI's
// `error` object ({message, type, param, code}), so the official openai client raises a typed APIError
// with the message, and problem+json clients keep working. Mid-stream failures arrive as a last
// `data: {"error": ...}` event, which the openai client also raises.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { FerryError, logRequestError, toProblem } from '../../errors.js';
import { asFerryError } from '../problem.js';
import { openEventStream } from '../sse.js';
import { OPENAI_SCHEMAS } from '../openapi/openai.js';
import type { GenerationConfig } from '../../config/schemas/generation.js';
import { parseOpenAiRequest, type OpenAiRequest } from '../../generation/request.js';
import type {
  Generation,
  GenerationResult,
  GenerationService,
  GenerativeVersion,
  TokenLogprob,
} from '../../generation/service.js';
import type { TextCodec } from '../../generation/text-codec.js';
import { assertModelAllowed, modelVisible } from './auth.js';
import { routeRequest, type RequestRouter } from '../route-request.js';
import type { LlmGateway } from '../../llm/index.js';
import { gatewayChat } from './openai-gateway.js';

export const OPENAI_PREFIX = '/openai/v1';

export interface OpenAiOptions {
  generation: GenerationService;
  config: GenerationConfig;
  bodyLimitBytes: number;
  /** Reported as `system_fingerprint`. */
  serverVersion: string;
  /** Canary routing and deprecation of the `model` field (docs/rollout.md); without it, plain resolution. */
  router?: RequestRouter;
  /** The LLM gateway: a `model` naming one of its routes is answered by it (docs/llm-gateway.md). */
  llm?: LlmGateway;
}

/** `/messages/0/content` → `messages[0].content`, the way OpenAI names a parameter. */
function paramName(pointer: string): string | null {
  if (!pointer) return null;
  return pointer
    .slice(1)
    .split('/')
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

function openAiType(err: FerryError): string {
  if (err.status === 404) return 'not_found_error';
  if (err.code === 'server-overloaded') return 'rate_limit_error';
  if (err.status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** The OpenAI `error` object for a Ferry error. */
export function openAiError(err: FerryError): { message: string; type: string; param: string | null; code: string } {
  const errors = err.extra.errors as { pointer?: string }[] | undefined;
  return { message: err.detail, type: openAiType(err), param: paramName(errors?.[0]?.pointer ?? ''), code: err.code };
}

function sendError(req: FastifyRequest, reply: FastifyReply, err: FerryError): FastifyReply {
  const body: Record<string, unknown> = toProblem(err, req.url.split('?')[0]);
  body.requestId = req.id;
  body.error = openAiError(err);
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply.code(err.status).type('application/problem+json').send(body);
}

interface Shape {
  id: string;
  created: number;
  model: string;
  fingerprint: string;
  kind: 'chat' | 'completion';
}

function chunk(
  s: Shape,
  content: string | undefined,
  finish: string | null,
  first: boolean,
  index = 0,
  logprobs: unknown = null,
): unknown {
  if (s.kind === 'chat') {
    const delta = finish ? {} : { ...(first && { role: 'assistant' }), content: content ?? '' };
    return {
      id: s.id,
      object: 'chat.completion.chunk',
      created: s.created,
      model: s.model,
      system_fingerprint: s.fingerprint,
      choices: [{ index, delta, logprobs, finish_reason: finish }],
    };
  }
  return {
    id: s.id,
    object: 'text_completion',
    created: s.created,
    model: s.model,
    system_fingerprint: s.fingerprint,
    choices: [{ index, text: content ?? '', logprobs, finish_reason: finish }],
  };
}

/** Usage of a request's choices: the prompt counted once (its prefill is shared), completions summed. */
function usage(results: readonly GenerationResult[]) {
  const prompt = results[0]?.promptTokens ?? 0;
  const completion = results.reduce((a, r) => a + r.completionTokens, 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: results[0]?.cachedPromptTokens ?? 0 },
  };
}

/**
 * Log-probabilities in OpenAI's shapes: chat's `{content: [{token, logprob, bytes, top_logprobs}]}`,
 * or the completions API's `{tokens, token_logprobs, top_logprobs, text_offset}`.
 */
function formatLogprobs(kind: 'chat' | 'completion', codec: TextCodec, entries: readonly TokenLogprob[], offset = 0) {
  const text = (id: number) => codec.tokenText(id);
  if (kind === 'chat') {
    const item = (id: number, logprob: number) => {
      const t = text(id);
      return { token: t, logprob, bytes: [...Buffer.from(t, 'utf8')] };
    };
    return {
      content: entries.map((e) => ({
        ...item(e.token, e.logprob),
        top_logprobs: e.top.map((a) => item(a.token, a.logprob)),
      })),
      refusal: null,
    };
  }
  const tokens = entries.map((e) => text(e.token));
  const textOffset: number[] = [];
  let at = offset;
  for (const t of tokens) {
    textOffset.push(at);
    at += t.length;
  }
  return {
    tokens,
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((a) => [text(a.token), a.logprob]))),
    text_offset: textOffset,
  };
}

/** OpenAI's finish reasons: a stop sequence or an eos token is `stop`, running out of max_tokens `length`. */
const finishReason = (r: GenerationResult): string => (r.reason === 'length' ? 'length' : 'stop');

/** The OpenAI-compatible API over generative models; registered with `prefix: OPENAI_PREFIX`. */
// eslint-disable-next-line max-lines-per-function -- one plugin, one place for its routes
export const openAiPlugin: FastifyPluginAsync<OpenAiOptions> = async (api, deps) => {
  const { generation, config: cfg } = deps;
  api.setErrorHandler((err, req, reply) => {
    const fe = asFerryError(err, deps.bodyLimitBytes);
    logRequestError(req.log, fe, err, 'generation request failed');
    return sendError(req, reply, fe);
  });
  api.setNotFoundHandler((req, reply) =>
    sendError(
      req,
      reply,
      new FerryError('route-not-found', {
        detail: `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}; the OpenAI-compatible API has GET /models, POST /chat/completions and POST /completions`,
      }),
    ),
  );

  const modelObject = (id: string, created: number) => ({ id, object: 'model', created, owned_by: 'ferry' });
  // A key limited to some models lists and describes only those, as on /v1/models (docs/security.md).
  api.get('/models', { schema: OPENAI_SCHEMAS.models }, async (req) => {
    const versions = generation.versions().filter((gv) => modelVisible(req, gv.version.name));
    // The bare name (its default version) and each exact `name@version` are all valid `model` values.
    const names = [...new Set(versions.map((gv) => gv.version.name))];
    const routes = (deps.llm?.routeNames() ?? []).filter((n) => modelVisible(req, n));
    return {
      object: 'list',
      data: [
        ...names.map((n) => modelObject(n, 0)),
        ...versions.map((gv) => modelObject(gv.version.key, 0)),
        ...routes.map((n) => ({ ...modelObject(n, 0), owned_by: 'ferry-llm-gateway' })),
      ],
    };
  });
  api.get<{ Params: { model: string } }>('/models/:model', { schema: OPENAI_SCHEMAS.model }, async (req) => {
    assertModelAllowed(req, req.params.model);
    if (deps.llm?.has(req.params.model)) return { ...modelObject(req.params.model, 0), owned_by: 'ferry-llm-gateway' };
    const gv = generation.resolve(req.params.model);
    return modelObject(req.params.model === gv.version.name ? gv.version.name : gv.version.key, 0);
  });

  const complete = (kind: 'chat' | 'completion') => async (req: FastifyRequest, reply: FastifyReply) => {
    const startedAt = performance.now();
    const named = (req.body as { model?: unknown } | null)?.model;
    if (deps.llm && typeof named === 'string' && deps.llm.has(named)) {
      assertModelAllowed(req, named);
      if (kind !== 'chat')
        throw new FerryError('invalid-request', {
          detail: `${named} is an LLM gateway route; routes answer POST /chat/completions`,
          extra: { errors: [{ pointer: '/model', reason: 'a gateway route' }] },
        });
      return gatewayChat({ llm: deps.llm, config: cfg, serverVersion: deps.serverVersion, openAiError }, req, reply);
    }
    const r = parseOpenAiRequest(req.body, kind, cfg);
    // The model is in the body, so the scope table cannot see it: a key limited to other models stops here.
    assertModelAllowed(req, r.model);
    // `ham-chat` takes the client's canary arm; `ham-chat@1`, `@1.0.0` or `@alias` are pinned and never re-routed.
    const gv = deps.router
      ? generation.forVersion(routeRequest(deps.router, req, reply, r.model))
      : generation.resolve(r.model);
    reply.header('ferry-model-version', gv.version.version);
    const promptIds = generation.encodePrompt(gv, r.prompt);
    const maxTokens = budget(gv, r, promptIds.length);
    const gens = generation.startChoices(
      gv,
      promptIds,
      {
        maxTokens,
        temperature: r.temperature ?? gv.version.manifest.generation?.defaults?.temperature ?? 1,
        topP: r.topP ?? gv.version.manifest.generation?.defaults?.topP ?? 1,
        stop: r.stop,
        ...(r.seed !== undefined && { seed: r.seed }),
        ...(r.topLogprobs !== undefined && { topLogprobs: r.topLogprobs }),
      },
      startedAt,
      r.n,
    );
    const shape: Shape = {
      id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`,
      created: Math.floor(Date.now() / 1000),
      model: gv.version.key,
      fingerprint: `ferry-${deps.serverVersion}`,
      kind,
    };
    // The client going away (socket closed before the response finished) ends the generation and frees its worker slot.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) for (const g of gens) g.cancel('disconnected');
    });
    if (!r.stream) {
      for (const g of gens) g.onDelta = () => g.ack(1);
      const results = await Promise.all(gens.map((g) => g.done));
      if (results.some((x) => x.reason === 'disconnected')) return reply; // nobody to answer
      const choices = results.map((result, index) => {
        const logprobs = result.logprobs ? formatLogprobs(kind, gv.codec, result.logprobs) : null;
        return kind === 'chat'
          ? {
              index,
              message: { role: 'assistant', content: result.text, refusal: null },
              logprobs,
              finish_reason: finishReason(result),
            }
          : { index, text: result.text, logprobs, finish_reason: finishReason(result) };
      });
      return {
        id: shape.id,
        object: kind === 'chat' ? 'chat.completion' : 'text_completion',
        created: shape.created,
        model: shape.model,
        system_fingerprint: shape.fingerprint,
        choices,
        usage: usage(results),
      };
    }
    streamTo(reply, req, gens, shape, r.includeUsage, gv.codec);
    return reply;
  };

  /** max_tokens: the request's, else the model's default, else the server's; prompt + completion must fit the context.
   */
  const budget = (gv: GenerativeVersion, r: OpenAiRequest, promptTokens: number): number => {
    const room = gv.contextLength - promptTokens;
    if (room < 1) {
      throw new FerryError('context-length-exceeded', {
        detail: `the prompt is ${promptTokens} tokens; model ${gv.version.key} takes at most ${gv.contextLength} tokens of prompt and completion together`,
        extra: {
          errors: [
            { pointer: r.prompt && 'messages' in r.prompt ? '/messages' : '/prompt', reason: 'too many tokens' },
          ],
          limit: gv.contextLength,
          promptTokens,
        },
      });
    }
    if (r.maxTokens !== undefined) {
      if (r.maxTokens > room) {
        throw new FerryError('context-length-exceeded', {
          detail: `max_tokens ${r.maxTokens} + ${promptTokens} prompt tokens exceed the context of ${gv.contextLength} tokens of model ${gv.version.key}; ask for at most ${room}`,
          extra: {
            errors: [{ pointer: '/max_tokens', reason: `at most ${room} for this prompt` }],
            limit: gv.contextLength,
            promptTokens,
          },
        });
      }
      return r.maxTokens;
    }
    return Math.min(room, gv.version.manifest.generation?.defaults?.maxTokens ?? cfg.defaultMaxTokens);
  };

  /**
   * Writes the generations (one per choice) as SSE. Each written token is acknowledged to the worker
   * at once while the socket accepts writes; once `write` reports a full buffer, acknowledgements wait
   * for 'drain', so the worker stops after its credit. A socket still full after `stallTimeoutMs` ends
   * the stream with a `stream-stalled` error event (delivered if the client ever reads again) and is
   * destroyed later. Each choice's finish chunk goes out when it ends; `[DONE]` after the last.
   */
  const streamTo = (
    reply: FastifyReply,
    req: FastifyRequest,
    gens: readonly Generation[],
    shape: Shape,
    includeUsage: boolean,
    codec: TextCodec,
  ) => {
    // Headers already set on the reply (Ferry-Model-Version, rollout, CORS) go out with it (http/sse.ts).
    const stream = openEventStream(req, reply);
    const res: ServerResponse = stream.raw;
    // Tokens are small writes that must leave at once: Nagle's algorithm would hold each one for the previous ACK.
    res.socket?.setNoDelay(true);
    const first = gens.map(() => true);
    /** Log-probability entries already sent, per choice, and the text length they cover (completions' text_offset). */
    const sentLogprobs = gens.map(() => 0);
    const sentChars = gens.map(() => 0);
    let blocked = false;
    const unacked = gens.map(() => 0);
    let closed = false;
    let stallTimer: NodeJS.Timeout | undefined;
    const write = (data: unknown): boolean => stream.data(data);
    const newLogprobs = (g: Generation): unknown => {
      if (!g.logprobs) return null;
      const from = sentLogprobs[g.index]!;
      sentLogprobs[g.index] = g.logprobs.length;
      return formatLogprobs(shape.kind, codec, g.logprobs.slice(from), sentChars[g.index]!);
    };
    // OpenAI's first chat chunk carries the role with empty content; sent at once so the client sees the stream open.
    if (shape.kind === 'chat')
      for (const g of gens) {
        write(chunk(shape, '', null, true, g.index));
        first[g.index] = false;
      }
    const onStall = () => {
      if (closed) return;
      closed = true;
      for (const g of gens) g.cancel('stalled');
      const err = new FerryError('stream-stalled', {
        detail: `the client did not read for ${cfg.stallTimeoutMs} ms (generation.stallTimeoutMs); the stream was closed`,
      });
      req.log.warn({ code: err.code }, 'closing a stalled generation stream');
      stream.end({ error: openAiError(err) });
      // Ended but unread: keep it only as long again for a reader that wakes up, then drop the connection.
      setTimeout(() => res.destroy(), cfg.stallTimeoutMs).unref();
    };
    res.on('drain', () => {
      if (!blocked || closed) return;
      blocked = false;
      clearTimeout(stallTimer);
      for (const g of gens) {
        g.ack(unacked[g.index]!);
        unacked[g.index] = 0;
      }
    });
    res.on('close', () => clearTimeout(stallTimer));
    for (const g of gens) {
      g.onDelta = (delta) => {
        if (closed) return;
        const ok = write(chunk(shape, delta, null, first[g.index]!, g.index, newLogprobs(g)));
        sentChars[g.index]! += delta.length;
        first[g.index] = false;
        if (ok && !blocked) {
          g.ack(1);
          return;
        }
        unacked[g.index]!++;
        if (!blocked) {
          blocked = true;
          stallTimer = setTimeout(onStall, cfg.stallTimeoutMs);
        }
      };
      void g.done.then(
        (result) => {
          if (closed || result.reason === 'disconnected' || result.reason === 'stalled') return;
          write(chunk(shape, undefined, finishReason(result), first[g.index]!, g.index, newLogprobs(g)));
        },
        () => undefined,
      );
    }
    Promise.all(gens.map((g) => g.done)).then(
      (results) => {
        if (closed || results.some((x) => x.reason === 'disconnected' || x.reason === 'stalled')) return;
        closed = true;
        clearTimeout(stallTimer);
        if (includeUsage)
          write({
            id: shape.id,
            object: shape.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
            created: shape.created,
            model: shape.model,
            system_fingerprint: shape.fingerprint,
            choices: [],
            usage: usage(results),
          });
        stream.end('[DONE]');
      },
      (e: unknown) => {
        if (closed) return;
        closed = true;
        clearTimeout(stallTimer);
        for (const g of gens) g.cancel('disconnected');
        const fe = asFerryError(e, deps.bodyLimitBytes);
        req.log.error({ err: e }, 'generation failed mid-stream');
        stream.end({ error: openAiError(fe) });
      },
    );
  };

  api.post('/chat/completions', { schema: OPENAI_SCHEMAS.chat }, complete('chat'));
  api.post('/completions', { schema: OPENAI_SCHEMAS.completion }, complete('completion'));
};

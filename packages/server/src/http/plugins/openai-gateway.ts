// The LLM gateway's side of /openai/v1/chat/completions: a `model` that names an `llm.routes` entry is
// answered by the gateway (llm/). OpenAI's JSON in, OpenAI's JSON or SSE chunks out, plus who answered and
// why: a `ferry` member in the body (and in every streamed chunk) and `Ferry-LLM-*` response headers.
// Also the gateway's admin routes: the ledger summary behind the dashboard page and cache invalidation.
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { FerryError } from '../../errors.js';
import type { GenerationConfig } from '../../config/schemas/generation.js';
import { parseOpenAiRequest } from '../../generation/request.js';
import type { AnswerMeta, LlmGateway } from '../../llm/index.js';
import { UpstreamError } from '../../llm/index.js';
import { openEventStream } from '../sse.js';
import { json, problem, route } from '../schemas.js';

const TENANT = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

function headersFor(meta: AnswerMeta): Record<string, string> {
  return {
    'ferry-llm-route': meta.route,
    'ferry-llm-tier': meta.tier,
    'ferry-llm-provider': meta.provider,
    'ferry-llm-model': meta.model,
    'ferry-llm-cache': meta.cache,
    // Header values must be latin-1 without newlines: the reason is ours, but keep it safe.
    'ferry-llm-reason': meta.reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 300),
  };
}

/** Who is asking, for budgets and tiering: the API key's id, the tenant (Ferry-Tenant header, else `user`). */
function who(req: FastifyRequest, body: Record<string, unknown>): { keyId?: string; tenant?: string } {
  const h = req.headers['ferry-tenant'];
  const raw = typeof h === 'string' ? h : typeof body.user === 'string' && body.user ? body.user : undefined;
  if (raw !== undefined && !TENANT.test(raw))
    throw new FerryError('invalid-request', {
      detail: 'the tenant (Ferry-Tenant header or `user`) must be 1-128 characters of A-Z a-z 0-9 . _ : @ -',
      extra: { errors: [{ pointer: typeof h === 'string' ? '' : '/user', reason: 'not a valid tenant id' }] },
    });
  const keyId = req.ferryPrincipal?.id;
  return { ...(keyId && { keyId }), ...(raw !== undefined && { tenant: raw }) };
}

function metadataOf(body: Record<string, unknown>): Record<string, string> {
  const md = body.metadata;
  if (md === undefined || md === null) return {};
  if (typeof md !== 'object' || Array.isArray(md))
    throw new FerryError('invalid-request', {
      detail: '`metadata` must be an object of strings',
      extra: { errors: [{ pointer: '/metadata', reason: 'must be an object' }] },
    });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md)) {
    if (typeof v !== 'string' || k.length > 64 || v.length > 512)
      throw new FerryError('invalid-request', {
        detail: `metadata.${k.slice(0, 64)} must be a string of at most 512 characters (keys at most 64)`,
        extra: { errors: [{ pointer: `/metadata/${k.slice(0, 64)}`, reason: 'must be a short string' }] },
      });
    out[k] = v;
  }
  return out;
}

export interface GatewayChatOptions {
  llm: LlmGateway;
  config: GenerationConfig;
  serverVersion: string;
  /** The OpenAI `error` object for a Ferry error (mid-stream failures). */
  openAiError: (err: FerryError) => unknown;
}

/** Answers one chat completion through the gateway. */
// eslint-disable-next-line max-lines-per-function -- whole and streamed answers side by side
export async function gatewayChat(o: GatewayChatOptions, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = req.body as Record<string, unknown>;
  // Routes take JSON modes too (the gateway checks them in its cascade); Ferry's own decoders do not.
  const { response_format: rf, ...rest } = body;
  if (rf !== undefined && rf !== null && (typeof rf !== 'object' || Array.isArray(rf)))
    throw new FerryError('invalid-request', {
      detail: '/response_format: must be an object',
      extra: { errors: [{ pointer: '/response_format', reason: 'must be an object' }] },
    });
  const r = parseOpenAiRequest(rest, 'chat', o.config);
  if (!('messages' in r.prompt)) throw new FerryError('internal');
  const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
  const created = Math.floor(Date.now() / 1000);
  const ctl = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) ctl.abort();
  });
  const gwReq = {
    route: r.model,
    messages: r.prompt.messages as { role: 'system' | 'developer' | 'user' | 'assistant'; content: string }[],
    stop: r.stop,
    stream: r.stream,
    requestId: req.id,
    metadata: metadataOf(body),
    ...who(req, body),
    ...(r.maxTokens !== undefined && { maxTokens: r.maxTokens }),
    ...(r.temperature !== undefined && { temperature: r.temperature }),
    ...(r.topP !== undefined && { topP: r.topP }),
    ...(r.seed !== undefined && { seed: r.seed }),
    ...(rf && { responseFormat: rf as Record<string, unknown> }),
  };
  const fingerprint = `ferry-${o.serverVersion}`;
  if (!r.stream) {
    const a = await o.llm.chat(gwReq, ctl.signal);
    for (const [k, v] of Object.entries(headersFor(a.meta))) reply.header(k, v);
    const u = a.answer.usage;
    return {
      id,
      object: 'chat.completion',
      created,
      model: a.meta.model,
      system_fingerprint: fingerprint,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: a.answer.text, refusal: null },
          logprobs: null,
          finish_reason: a.answer.finishReason,
        },
      ],
      usage: {
        prompt_tokens: u.promptTokens,
        completion_tokens: u.completionTokens,
        total_tokens: u.promptTokens + u.completionTokens,
        prompt_tokens_details: { cached_tokens: u.cachedPromptTokens },
      },
      ferry: a.meta,
    };
  }
  // Streamed: the SSE response opens when the answering provider sends its first token (so a provider
  // that fails before that is replaced without the client seeing anything), headers naming it.
  let stream: ReturnType<typeof openEventStream> | undefined;
  let meta: AnswerMeta | undefined;
  const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model: meta?.model ?? r.model,
    system_fingerprint: fingerprint,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ferry: meta,
  });
  const open = (m: AnswerMeta) => {
    meta = m;
    for (const [k, v] of Object.entries(headersFor(m))) reply.header(k, v);
    stream = openEventStream(req, reply);
    stream.raw.socket?.setNoDelay(true);
    stream.data(chunk({ role: 'assistant', content: '' }, null));
  };
  try {
    const a = await o.llm.chat(gwReq, ctl.signal, {
      onStart: open,
      onDelta: (text) => stream?.data(chunk({ content: text }, null)),
    });
    if (!stream) open(a.meta);
    stream!.data(chunk({}, a.answer.finishReason));
    if (r.includeUsage) {
      const u = a.answer.usage;
      stream!.data({
        id,
        object: 'chat.completion.chunk',
        created,
        model: a.meta.model,
        system_fingerprint: fingerprint,
        choices: [],
        usage: {
          prompt_tokens: u.promptTokens,
          completion_tokens: u.completionTokens,
          total_tokens: u.promptTokens + u.completionTokens,
        },
        ferry: a.meta,
      });
    }
    stream!.end('[DONE]');
  } catch (e) {
    if (!stream) throw e; // nothing sent yet: an ordinary problem+json answer
    // Cut after tokens went out: the stream ends with OpenAI's error event (the client raises it).
    const fe =
      e instanceof FerryError
        ? e
        : new FerryError('upstream-failed', {
            detail: `the provider ${e instanceof UpstreamError ? e.provider : ''} failed after the stream began (${e instanceof UpstreamError ? e.failure : 'error'})`,
          });
    req.log.warn({ err: e }, 'LLM stream failed after it began');
    stream.end({ error: o.openAiError(fe) });
  }
  return reply;
}

const SUMMARY_SCHEMA = route(
  'llm',
  'LLM gateway spend and savings from the ledger: by control, route, key, tier, cache and provider',
  {
    querystring: {
      type: 'object',
      properties: { sinceMs: { type: 'integer', minimum: 0, description: 'Epoch ms; default: the last 30 days' } },
      additionalProperties: false,
    },
    response: {
      200: json(
        '`{since, byControl, byRoute, byKey, byTier, byCache, byProvider}`: byControl rows of control, requests, savedUsd; the others rows of requests, calls, tokens, costUsd, savedUsd',
      ),
    },
  },
);

const INVALIDATE_SCHEMA = route(
  'llm',
  "Drop a route's cached answers (exact and semantic), optionally for one tenant",
  {
    params: { type: 'object', required: ['route'], properties: { route: { type: 'string' } } },
    querystring: {
      type: 'object',
      properties: { tenant: { type: 'string', maxLength: 128 } },
      additionalProperties: false,
    },
    response: { 200: json('`{route, tenant, removed}`'), 404: problem('No such route') },
  },
);

/** GET /v1/llm/spend (dashboard; any key) and POST /v1/admin/llm/routes/:route/cache:invalidate (admin scope). */
export const llmAdminPlugin: FastifyPluginAsync<{ llm: LlmGateway }> = async (app, { llm }) => {
  app.get<{ Querystring: { sinceMs?: number } }>('/v1/llm/spend', { schema: SUMMARY_SCHEMA }, async (req) =>
    llm.ledgerSummary(req.query.sinceMs ?? Date.now() - 30 * 86_400_000),
  );
  app.post<{ Params: { route: string }; Querystring: { tenant?: string } }>(
    '/v1/admin/llm/routes/:route/cache\\:invalidate',
    { schema: INVALIDATE_SCHEMA },
    async (req) => ({
      route: req.params.route,
      tenant: req.query.tenant ?? null,
      removed: await llm.invalidate(req.params.route, req.query.tenant),
    }),
  );
};

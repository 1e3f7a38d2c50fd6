// The one error handler: every failure leaves as application/problem+json. 5xx bodies never leak
// internals; Open Inference Protocol routes also carry the protocol's `error` string.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FerryError, logRequestError, toProblem, type ErrorCode } from '../errors.js';
import { isStoreOutage, storeUnavailable } from '../store/outage.js';
import type { Principal } from '../auth/keys.js';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body-too-large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid-request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid-json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid-json',
  FST_ERR_VALIDATION: 'invalid-request',
  FST_ERR_BAD_URL: 'invalid-request',
};

/** Converts anything thrown into a FerryError (unknown errors become a sanitised 500). */
export function asFerryError(err: unknown, bodyLimit: number): FerryError {
  if (err instanceof FerryError) return err;
  const e = err as FastifyError;
  const mapped = e?.code ? FASTIFY_CODES[e.code] : undefined;
  if (mapped === 'body-too-large') {
    return new FerryError(mapped, {
      detail: `the body exceeds the limit of ${bodyLimit} bytes (server.bodyLimitBytes)`,
      extra: { limit: bodyLimit },
    });
  }
  if (mapped) return new FerryError(mapped, { detail: e.message });
  if (e instanceof SyntaxError || (e?.statusCode === 400 && /JSON/i.test(e.message))) {
    return new FerryError('invalid-json', { detail: e.message });
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new FerryError('invalid-request', { detail: e.message });
  }
  // The database is down, locked or full: the request may succeed later, so a retryable 503.
  if (isStoreOutage(err)) return storeUnavailable(err);
  return new FerryError('internal', {
    detail: 'an unexpected error occurred; see the server log for this request id',
    cause: err,
  });
}

/**
 * A key limited to some models must not learn the others' names from a 404: the list of available
 * models (and pipelines) is narrowed to what the key may see.
 */
function forPrincipal(principal: Principal | undefined, err: FerryError): FerryError {
  const models = principal?.models;
  if (!models || models.size === 0 || err.code !== 'model-not-found' || !Array.isArray(err.extra.available)) return err;
  const available = (err.extra.available as string[]).filter((m) => models.has(m));
  const name = /^model "([^"]*)"/.exec(err.detail)?.[1] ?? '';
  return new FerryError('model-not-found', {
    detail: `model "${name}" does not exist; available: ${available.join(', ') || '(none)'}`,
    extra: { ...err.extra, available },
  });
}

/** A refusal as it leaves over HTTP: status, the error's own headers and the problem+json body. */
export function problemResponse(
  error: FerryError,
  url: string,
  requestId: string,
  principal: Principal | undefined,
): { status: number; headers: Readonly<Record<string, string>>; body: Record<string, unknown> } {
  const err = forPrincipal(principal, error);
  const body: Record<string, unknown> = toProblem(err, url.split('?')[0]);
  body.requestId = requestId;
  if (url.startsWith('/v2')) body.error = err.detail;
  return { status: err.status, headers: err.headers, body };
}

export function sendProblem(req: FastifyRequest, reply: FastifyReply, error: FerryError): FastifyReply {
  const p = problemResponse(error, req.url, req.id, req.ferryPrincipal);
  for (const [k, v] of Object.entries(p.headers)) reply.header(k, v);
  return reply.code(p.status).type('application/problem+json').send(p.body);
}

export function installErrorHandling(app: FastifyInstance, bodyLimit: number): void {
  app.setErrorHandler((err, req, reply) => {
    const fe = asFerryError(err, bodyLimit);
    logRequestError(req.log, fe, err);
    return sendProblem(req, reply, fe);
  });
  app.setNotFoundHandler((req, reply) =>
    sendProblem(
      req,
      reply,
      new FerryError('route-not-found', {
        detail: `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}; see /openapi.json`,
      }),
    ),
  );
}

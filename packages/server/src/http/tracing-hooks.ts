// HTTP server spans: each request continues the caller's W3C `traceparent` (or starts a trace), runs
// in that span's context so the predict path's spans and log lines join it, and ends with the status.
// Installed only when tracing is on (telemetry/), so a server without it has no extra hooks at all.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Span } from '@opentelemetry/api';
import { endServerSpan, exemplarLabels, runInContext, startServerSpan } from '../telemetry/index.js';

const spans = new WeakMap<FastifyRequest, Span>();

/** The request's trace as exemplar labels for its latency (undefined: not traced, or not sampled). */
export function requestExemplar(req: FastifyRequest): { trace_id: string; span_id: string } | undefined {
  const span = spans.get(req);
  return span && exemplarLabels(span);
}

export function installTracingHooks(app: FastifyInstance): void {
  // Callback style on purpose: the rest of the request (parsing, auth, handler) runs inside done(),
  // so it inherits the span's context through AsyncLocalStorage.
  app.addHook('onRequest', (req, _reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const started = startServerSpan(`${req.method} ${route}`, req.headers, {
      'http.request.method': req.method,
      'http.route': route,
      'url.path': req.url.split('?', 1)[0]!.slice(0, 512),
    });
    if (!started) return done();
    spans.set(req, started.span);
    runInContext(started.context, done);
  });
  app.addHook('onResponse', (req, reply, done) => {
    const v = req.ferryModel;
    endServerSpan(
      spans.get(req),
      {
        'http.response.status_code': reply.statusCode,
        ...(v && { 'ferry.model': v.name, 'ferry.model_version': v.version }),
      },
      reply.statusCode >= 500,
    );
    done();
  });
}

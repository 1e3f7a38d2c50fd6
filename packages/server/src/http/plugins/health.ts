// Probes and metrics: /healthz (the process answers), /readyz (every model loaded and warmed, with
// per-model queue state) and /metrics (Prometheus text, or OpenMetrics with trace exemplars when the
// scraper's Accept prefers it). Draining turns /readyz into a 503 before it gets here
// (http/lifecycle-hooks.ts).
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { OPENMETRICS_CONTENT_TYPE, openMetricsText, prefersOpenMetrics } from '../../metrics/openmetrics.js';
import type { ServerDeps } from '../deps.js';
import { json, route } from '../schemas.js';

export type HealthOptions = Pick<ServerDeps, 'service' | 'metrics'>;

const SCHEMAS = {
  healthz: route('health', 'Liveness: the process answers', { response: { 200: json('`{"status": "ok"}`') } }),
  readyz: route('health', 'Readiness: 200 once every model is loaded and warmed, else 503', {
    response: {
      200: json('`{ready: true, models: [...]}` with queue depth, in-flight and breaker per version'),
      503: json('Not ready yet (or draining)'),
    },
  }),
  metrics: route('health', 'Prometheus metrics; OpenMetrics (with trace exemplars) when Accept prefers it', {
    response: {
      200: {
        description: 'Prometheus text format, or OpenMetrics for `Accept: application/openmetrics-text`',
        content: {
          'text/plain': { schema: Type.String() },
          'application/openmetrics-text': { schema: Type.String() },
        },
      },
    },
  }),
};

/** Liveness is a constant: sent as is, with no serialisation and no promise per probe. */
const LIVE = '{"status":"ok"}';

export const healthPlugin: FastifyPluginAsync<HealthOptions> = async (app, deps) => {
  // Probes come every few seconds from each kubelet, load balancer and monitor: their request lines stay
  // out of the info log (which costs the HTTP thread a write each), and the answer does the least work.
  app.get('/healthz', { schema: SCHEMAS.healthz, logLevel: 'warn' }, (_req, reply) => {
    reply.type('application/json; charset=utf-8').send(LIVE);
  });
  app.get('/readyz', { schema: SCHEMAS.readyz }, async (_req, reply) => {
    const queues = new Map(deps.service.queues().map((q) => [q.key, q]));
    const models = deps.service.states().map((s) => {
      const q = queues.get(s.key);
      return q ? { ...s, queueDepth: q.depth, inFlight: q.inFlight, overloaded: q.overloaded, breaker: q.breaker } : s;
    });
    const ready = deps.service.ready();
    return reply.code(ready ? 200 : 503).send({ ready, models });
  });
  app.get('/metrics', { schema: SCHEMAS.metrics }, async (req, reply) => {
    reply.header('vary', 'accept');
    if (prefersOpenMetrics(req.headers.accept)) {
      reply.type(OPENMETRICS_CONTENT_TYPE);
      return openMetricsText(deps.metrics.registry);
    }
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
};

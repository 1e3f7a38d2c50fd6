// What draining means over HTTP: readiness answers 503 at once, responses ask clients and proxies
// to drop their keep-alive connection (so the next request opens one to another replica), and the
// in-flight count and the draining flag are exported for autoscalers and dashboards.
import type { FastifyInstance } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import type { Lifecycle } from '../lifecycle/lifecycle.js';

const READINESS_ROUTES = new Set(['/readyz', '/v2/health/ready']);

export interface LifecycleMetrics {
  inFlight: Gauge;
  draining: Gauge;
}

/** `inFlight` reads the count when the registry is read (no gauge update per request). */
export function registerLifecycleMetrics(registry: Registry, inFlight: () => number): LifecycleMetrics {
  return {
    inFlight: new Gauge({
      name: 'ferry_http_in_flight_requests',
      help: 'HTTP requests being served now (the per-pod HPA metric)',
      registers: [registry],
      collect() {
        this.set(inFlight());
      },
    }),
    draining: new Gauge({
      name: 'ferry_draining',
      help: '1 while the process is shutting down and readiness is false',
      registers: [registry],
    }),
  };
}

/** The in-flight count, for requests served outside Fastify's hooks (http/predict-lane.ts). */
export interface InFlight {
  enter(req: object): void;
  /** Counted once, however many times it is called for one request. */
  leave(req: object): void;
}

export function installLifecycleHooks(app: FastifyInstance, lifecycle: Lifecycle, registry: Registry): InFlight {
  let inFlight = 0;
  const metrics = registerLifecycleMetrics(registry, () => inFlight);
  lifecycle.on('draining', () => metrics.draining.set(1));
  const open = new WeakSet<object>();
  const enter = (req: object) => {
    open.add(req);
    inFlight++;
  };
  const done = (req: object) => {
    if (!open.delete(req)) return;
    inFlight--;
  };
  // Callback hooks, not async ones: every request passes all four, and a promise per hook per
  // request is measurable at tens of thousands of requests a second.
  app.addHook('onRequest', (req, reply, next) => {
    enter(req);
    if (lifecycle.draining && READINESS_ROUTES.has(req.routeOptions.url ?? '')) {
      // Answered here: the route never runs (Fastify's early reply from a callback hook: no next()).
      reply.code(503).header('connection', 'close');
      void reply.send(
        req.routeOptions.url === '/readyz'
          ? { ready: false, draining: true, reason: lifecycle.reason }
          : { ready: false },
      );
      return;
    }
    next();
  });
  app.addHook('onSend', (_req, reply, payload, next) => {
    if (lifecycle.draining) reply.header('connection', 'close');
    next(null, payload);
  });
  app.addHook('onResponse', (req, _reply, next) => {
    done(req);
    next();
  });
  // A client that goes away mid-request may fire no onResponse; the set keeps the count from going twice.
  app.addHook('onRequestAbort', (req, next) => {
    done(req);
    next();
  });
  return { enter, leave: done };
}

/**
 * `app.close()` that does not wait for keep-alive connections to time out, and does not reset a
 * request a proxy has already sent.
 *
 * Node's `server.close()` (and Fastify's, with `forceCloseConnections: 'idle'`) closes every idle
 * connection at once, and Node counts a just-accepted connection whose request bytes have not been
 * read yet as idle: behind nginx, a POST written to such a connection is reset and comes back as a
 * 502 that nginx may not retry. So the close-time sweep is held back: connections accepted before
 * the listener closed get `firstSweepMs` to deliver their requests (served with `Connection: close`),
 * then idle connections are closed every `sweepMs`, each sweep after the event loop's poll phase
 * (setImmediate), so bytes that arrived with the timer are parsed first. Connections whose request
 * finishes later (a long inference, a stream ended by a drain handler) close at the next sweep
 * instead of staying open until keepAliveTimeout (72 s in Fastify), past the shutdown deadline.
 * The listener itself closes first, at once: no connection is accepted once the close has begun.
 */
export async function closeHttp(app: FastifyInstance, sweepMs = 100, firstSweepMs = 250): Promise<void> {
  const server = app.server;
  const closeIdle = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = () => undefined;
  // The listener stops accepting now. Fastify closes it only after its preClose hooks, and the
  // WebSocket plugin's waits the stream grace there: connections accepted meanwhile were swept
  // before their request was read, and reset (issue 24, item 7). Fastify's own close() later finds
  // the listener closed and still waits for the open connections.
  if (server.listening) server.close();
  const sweepOnce = () => {
    setImmediate(closeIdle);
  };
  let sweep: NodeJS.Timeout | undefined;
  const start = setTimeout(() => {
    sweepOnce();
    sweep = setInterval(sweepOnce, sweepMs);
  }, firstSweepMs);
  try {
    await app.close();
  } finally {
    clearTimeout(start);
    clearInterval(sweep);
    server.closeIdleConnections = closeIdle;
  }
}

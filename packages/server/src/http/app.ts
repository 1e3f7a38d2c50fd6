// Builds the Fastify application from its dependencies, apart from `listen()`, so tests drive it
// with `inject()` and the CLI serves it on a port.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ServerDeps } from './deps.js';
import { asFerryError, installErrorHandling, sendProblem } from './problem.js';
import { registerV1Routes } from './plugins/v1.js';
import { registerV2Routes } from './plugins/v2.js';
import { registerWebRoutes } from './plugins/web.js';
import { registerJobRoutes } from './plugins/jobs.js';
import { registerAdminRoutes } from './plugins/admin.js';
import { registerAccessControl, authRefusalCounter, type KeyRing } from '../auth/index.js';
import { addRolloutPaths } from './openapi/rollout.js';
import { registerStreaming } from '../streaming/index.js';
import { buildOpenApi } from './openapi/document.js';
import { registerOpenAiRoutes, OPENAI_PREFIX } from './plugins/openai.js';
import { openAiOpenApiPaths } from './openapi/openai.js';
import { FerryError } from '../errors.js';
import { SERVER_VERSION } from '../version.js';

declare module 'fastify' {
  interface FastifyInstance {
    ferryKeyRing: KeyRing;
  }
}

export interface AppOptions {
  logger: Logger | false;
}

/** Per-request lines at debug level: at the default info level the hot path writes no log line. */
class QuietRequestLog extends LogController {
  override incomingRequest(request: Parameters<LogController['incomingRequest']>[0]): void {
    request.log.trace({ url: request.url }, 'incoming request');
  }
  override requestCompleted(error: Parameters<LogController['requestCompleted']>[0], request: Parameters<LogController['requestCompleted']>[1], reply: Parameters<LogController['requestCompleted']>[2]): void {
    request.log.debug({ url: request.url, statusCode: reply.statusCode, ms: reply.elapsedTime, ...(error && { err: error }) }, 'request completed');
  }
}

export async function buildApp(deps: ServerDeps, opts: AppOptions): Promise<FastifyInstance> {
  const common = {
    bodyLimit: deps.config.server.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    logController: new QuietRequestLog(),
    // Errors Fastify raises before routing (a URL that does not decode, bad content length) are ours to format too.
    frameworkErrors: (err: Error, req: FastifyRequest, reply: FastifyReply) =>
      sendProblem(req, reply, asFerryError(err, deps.config.server.bodyLimitBytes)),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // During a drain, a request that arrives on an open keep-alive connection is still served (the
    // lifecycle sends `Connection: close` and readiness is already false); Fastify's default would
    // answer it 503, which a proxy cannot retry for a POST.
    return503OnClosing: false,
    // The client address behind a load balancer (per-address rate limits): docs/security.md.
    // Trust the nearest `trustProxyHops` proxies (what proxy-addr does with a number); 0: the TCP peer.
    trustProxy: (_address: string, hop: number) => hop < deps.config.auth.trustProxyHops,
  };
  const app: FastifyInstance = opts.logger
    ? Fastify({ ...common, loggerInstance: opts.logger as FastifyBaseLogger })
    : Fastify({ ...common, logger: false });

  installErrorHandling(app, deps.config.server.bodyLimitBytes);
  // Before any route: every route, including those registered later, passes the scope table.
  const ring = await registerAccessControl(app, { auth: deps.config.auth, redisUrl: deps.config.redis.url, onRefused: authRefusalCounter(deps.metrics.registry) });
  // The live key set: replaced on SIGHUP, config:reload and keysFile changes (rollout/config-reload.ts).
  app.decorate('ferryKeyRing', ring);
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.config.metricsRoute;
    if (!route) return;
    const v = req.ferryModel;
    const labels = { route, model: v?.name ?? '', version: v?.version ?? '' };
    deps.metrics.requests.inc({ ...labels, status: String(reply.statusCode) });
    deps.metrics.requestDuration.observe(labels, reply.elapsedTime / 1000);
  });

  // Derived from what is served: rebuilt when a version is loaded, reloaded or unloaded after start
  // (admin API, repository:reload, --watch). The same object is refilled in place, so the static
  // document handed to @fastify/swagger (/docs) follows too.
  const buildDocument = (): Record<string, unknown> => {
    const d = buildOpenApi(deps.repository, deps.service.limits, SERVER_VERSION);
    addRolloutPaths(d, ring.size > 0);
    if (deps.generation?.versions().length) Object.assign(d.paths as object, openAiOpenApiPaths(OPENAI_PREFIX));
    return d;
  };
  const document = buildDocument();
  // Keys turned on or off by a reload change the security section too.
  const revision = () => `${deps.repository.revision}:${ring.size > 0}`;
  let documentRevision = revision();
  const currentDocument = (): Record<string, unknown> => {
    if (revision() !== documentRevision) {
      documentRevision = revision();
      const fresh = buildDocument();
      for (const k of Object.keys(document)) delete document[k];
      Object.assign(document, fresh);
    }
    return document;
  };
  await app.register(swagger, { mode: 'static', specification: { document: document as never } });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', async () => currentDocument());

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const queues = new Map(deps.service.queues().map((q) => [q.key, q]));
    const models = deps.service.states().map((s) => {
      const q = queues.get(s.key);
      return { ...s, ...(q && { queueDepth: q.depth, inFlight: q.inFlight, overloaded: q.overloaded, breaker: q.breaker }) };
    });
    const ready = deps.service.ready();
    return reply.code(ready ? 200 : 503).send({ ready, models });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  await registerV1Routes(app, deps);
  await registerV2Routes(app, deps, SERVER_VERSION);
  if (deps.generation) await registerOpenAiRoutes(app, { generation: deps.generation, config: deps.config.generation, bodyLimitBytes: deps.config.server.bodyLimitBytes, serverVersion: SERVER_VERSION, router: deps.service });
  if (deps.jobs) await registerJobRoutes(app, { jobs: deps.jobs, repository: deps.repository, bodyLimitBytes: deps.config.server.bodyLimitBytes, maxInstances: deps.config.limits.maxInstances, ...(deps.lifecycle && { lifecycle: deps.lifecycle }), router: deps.service });
  await registerAdminRoutes(app, deps, { manager: deps.manager, rollout: deps.rollout });
  await registerStreaming(app, deps);

  await registerWebRoutes(app, deps);
  app.all('/v1/*', async (req) => {
    throw new FerryError('route-not-found', { detail: `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}; see /openapi.json` });
  });
  return app;
}

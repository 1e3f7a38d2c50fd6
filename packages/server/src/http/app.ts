// Builds the Fastify application from its dependencies, apart from `listen()`, so tests drive it
// with `inject()` and the CLI serves it on a port.
import { tracingEnabled } from '../telemetry/index.js';
import { installTracingHooks, requestExemplar } from './tracing-hooks.js';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { rateLimited } from '../auth/rate-limit-store.js';
import { Counter } from 'prom-client';
import { createPredictLane, type PredictLane } from './predict-lane.js';
import type { Logger } from 'pino';
import type { ServerDeps } from './deps.js';
import { asFerryError, installErrorHandling, sendProblem } from './problem.js';
import { installLifecycleHooks } from './lifecycle-hooks.js';
import { jsonBodyParser } from './json-depth.js';
import { lazyChildLoggerFactory } from './lazy-request-logger.js';
import { defaultMaxConnections, installConnectionCap } from './connection-cap.js';
import { addSharedSchemas, json, route } from './schemas.js';
import { modelPaths } from './openapi/document.js';
import { authPlugin } from './plugins/auth.js';
import { healthPlugin } from './plugins/health.js';
import { v1Plugin } from './plugins/v1.js';
import { v2Plugin } from './plugins/v2.js';
import { openAiPlugin, OPENAI_PREFIX } from './plugins/openai.js';
import { llmAdminPlugin } from './plugins/openai-gateway.js';
import { jobsPlugin } from './plugins/jobs.js';
import { pipelinesPlugin } from './plugins/pipelines.js';
import { adminPlugin } from './plugins/admin.js';
import { streamPlugin } from './plugins/stream.js';
import { artifactPlugin } from './plugins/artifact.js';
import { webPlugin } from './plugins/web.js';
import { authRefusalCounter } from '../auth/metrics.js';
import { requestMetricsRecorder } from './request-metrics.js';
import { FerryError } from '../errors.js';
import { SERVER_VERSION } from '../version.js';

type Doc = Record<string, unknown>;

export interface AppOptions {
  logger: Logger | false;
  /** Sees every route as it is registered (the OpenAPI coverage test lists them with it). */
  onRoute?: (route: RouteOptions) => void;
}

/** Per-request lines at debug level: at the default info level the hot path writes no log line. */
class QuietRequestLog extends LogController {
  override incomingRequest(request: Parameters<LogController['incomingRequest']>[0]): void {
    request.log.trace({ url: request.url }, 'incoming request');
  }
  override requestCompleted(
    error: Parameters<LogController['requestCompleted']>[0],
    request: Parameters<LogController['requestCompleted']>[1],
    reply: Parameters<LogController['requestCompleted']>[2],
  ): void {
    request.log.debug(
      { url: request.url, statusCode: reply.statusCode, ms: reply.elapsedTime, ...(error && { err: error }) },
      'request completed',
    );
  }
}

/** Node 20's default stream highWaterMark, kept on Node 22 (see `http.highWaterMark` below). */
const SOCKET_BUFFER_BYTES = 16 * 1024;

// eslint-disable-next-line max-lines-per-function -- one plugin, one place for its routes
export async function buildApp(deps: ServerDeps, opts: AppOptions): Promise<FastifyInstance> {
  // The predict lane (http/predict-lane.ts) sees each request before Fastify; set once the app is built.
  let lane: PredictLane | undefined;
  const common = {
    // Node's server, built here so the predict lane sits in front of Fastify's handler; configured as
    // Fastify configures its own (the `http` options below, keep-alive and request timeouts).
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const server = createHttpServer(common.http, (req, res) => {
        if (!lane?.(req, res)) handler(req, res);
      });
      server.keepAliveTimeout = deps.config.server.keepAliveTimeoutMs;
      server.requestTimeout = deps.config.server.requestTimeoutMs;
      return server;
    },
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
    // Slow clients (docs/deployment.md#timeouts): the headers, then the whole request, must arrive in
    // time; Node checks on `connectionsCheckingInterval`. Responses (streams) are not limited.
    keepAliveTimeout: deps.config.server.keepAliveTimeoutMs,
    requestTimeout: deps.config.server.requestTimeoutMs,
    http: {
      headersTimeout: deps.config.server.headersTimeoutMs,
      connectionsCheckingInterval: deps.config.server.timeoutCheckIntervalMs,
      // Each connection's stream buffers, the same on every supported Node: Node 22 raised the default
      // from 16 KiB to 64 KiB, and what an event stream computes ahead for a reader that stopped reading
      // (http/plugins/sse-predict.ts waits on 'drain') is bounded by this buffer plus the kernel's.
      highWaterMark: SOCKET_BUFFER_BYTES,
    },
  };
  const app: FastifyInstance = opts.logger
    ? Fastify({ ...common, loggerInstance: opts.logger as FastifyBaseLogger })
    : Fastify({ ...common, logger: false });
  // Each request's child logger is built on its first written line (http/lazy-request-logger.ts).
  if (opts.logger)
    app.setChildLoggerFactory(
      lazyChildLoggerFactory as unknown as Parameters<FastifyInstance['setChildLoggerFactory']>[0],
    );

  if (opts.onRoute) app.addHook('onRoute', opts.onRoute);
  installConnectionCap(app.server, deps.config.server.maxConnections || defaultMaxConnections());
  installErrorHandling(app, deps.config.server.bodyLimitBytes);
  // Route schemas document and do not validate: each route checks its input itself, naming the bad
  // field with Ferry's codes (hostile-input tests); Fastify's validator would answer differently.
  // Responses are written as before, by JSON.stringify (a response schema would drop fields).
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  addSharedSchemas(app);
  // Before any plugin: the hooks are copied into each plugin's scope when it is registered.
  if (tracingEnabled()) installTracingHooks(app);
  const inFlight = deps.lifecycle ? installLifecycleHooks(app, deps.lifecycle, deps.metrics.registry) : undefined;
  // App-wide body parsers (every surface gets them): an image model takes the picture as the body,
  // and the v2 binary tensor extension sends its JSON header and tensor bytes as one octet stream.
  // JSON with a nesting limit checked before parsing (limits.maxJsonDepth), then Fastify's own parser
  // (secure-json-parse: `__proto__` and `constructor.prototype` keys refused).
  const parseJson = jsonBodyParser(app, deps.config.limits.maxJsonDepth);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    let parsed: unknown;
    try {
      parsed = parseJson(body as string);
    } catch (e) {
      done(e as Error, undefined);
      return;
    }
    done(null, parsed);
  });
  app.addContentTypeParser(/^image\//, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // Before any route: every route, including those registered later, passes the scope table.
  await app.register(authPlugin, {
    auth: deps.config.auth,
    ring: deps.keyRing,
    startKeys: deps.startKeys,
    rateLimitRedis: deps.rateLimitRedis,
    onRefused: authRefusalCounter(deps.metrics.registry),
  });
  // Callback hooks, not async ones: each request passes both, and a promise per hook per request is
  // measurable at tens of thousands of requests a second.
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-request-id', req.id);
    done(null, payload);
  });
  const recordRequest = requestMetricsRecorder(deps.metrics);
  // What the lane does not implement turns it off as a whole: spans, CORS headers, rate limits.
  const { auth } = deps.config;
  if (
    deps.config.server.predictLane &&
    !tracingEnabled() &&
    !auth.cors.origins.length &&
    !rateLimited(auth, deps.startKeys)
  )
    lane = createPredictLane({
      service: deps.service,
      ring: deps.keyRing,
      bodyLimit: deps.config.server.bodyLimitBytes,
      parseJson,
      recordRequest,
      inFlight,
      lifecycle: deps.lifecycle,
      trustProxyHops: auth.trustProxyHops,
      log: opts.logger,
      taken: deps.metrics.tallies.of(
        new Counter({
          name: 'ferry_http_predict_lane_requests_total',
          help: 'Predictions answered on the predict lane (the rest of the v1 predict requests went through Fastify)',
          registers: [deps.metrics.registry],
          collect: deps.metrics.tallies.flush,
        }),
      ),
    });
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.config.metricsRoute;
    if (route) {
      const v = req.ferryModel;
      recordRequest(
        route,
        v?.name ?? '',
        v?.version ?? '',
        reply.statusCode,
        reply.elapsedTime / 1000,
        requestExemplar(req),
      );
    }
    done();
  });

  // /openapi.json: @fastify/swagger collects every route's schema (dynamic mode); the per-model
  // predict paths with their contract-derived schemas and the security section are laid over it,
  // again whenever a version is loaded, reloaded or unloaded after start (admin API,
  // repository:reload, --watch) or keys are turned on or off. swagger() caches one object, which is
  // refilled in place, so /docs (swagger-ui) shows the same document.
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Ferry',
        version: SERVER_VERSION,
        description: 'Model serving for TypeScript web apps. Errors are application/problem+json with a stable `code`.',
      },
    },
    // Shared schemas (addSchema) keep their $id as their name under components.schemas.
    refResolver: {
      buildLocalReference: (schema: Doc, _base: unknown, _fragment: unknown, i: number) =>
        typeof schema.$id === 'string' ? schema.$id : `def-${i}`,
    },
  });
  let routeDocument: { paths: Doc; schemas: Doc } | undefined;
  let documentRevision: string | undefined;
  const revision = () => `${deps.repository.revision}:${deps.keyRing.size > 0}`;
  const currentDocument = (): Doc => {
    const doc = app.swagger() as unknown as Doc & { paths: Doc; components: Doc & { schemas: Doc } };
    routeDocument ??= { paths: { ...doc.paths }, schemas: { ...doc.components.schemas } };
    if (revision() === documentRevision) return doc;
    documentRevision = revision();
    const models = modelPaths(deps.repository, deps.service.limits);
    doc.jsonSchemaDialect = 'https://json-schema.org/draft/2020-12/schema';
    doc.paths = { ...models.paths, ...routeDocument.paths };
    doc.components.schemas = { ...routeDocument.schemas, ...models.schemas };
    if (deps.keyRing.size > 0) {
      const description = 'An API key (docs/security.md); scopes: predict, jobs, pipelines:read, admin';
      doc.components.securitySchemes = { bearer: { type: 'http', scheme: 'bearer', description } };
      doc.security = [{ bearer: [] }];
    } else {
      delete doc.components.securitySchemes;
      delete doc.security;
    }
    return doc;
  };
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    transformSpecification: () => currentDocument(),
    transformSpecificationClone: false,
  });
  const documentSchema = route('docs', 'This document (OpenAPI 3.1)', { response: { 200: json('OpenAPI 3.1') } });
  app.get('/openapi.json', { schema: documentSchema }, async () => currentDocument());

  const { config } = deps;
  const bodyLimitBytes = config.server.bodyLimitBytes;
  const { repository, service, rollout, lifecycle } = deps;
  await app.register(healthPlugin, { service, metrics: deps.metrics });
  await app.register(v1Plugin, { config, repository, service, drift: deps.drift, lifecycle });
  await app.register(v2Plugin, {
    repository,
    service,
    serverVersion: SERVER_VERSION,
    repositoryControl: () => deps.keyRing.size > 0,
  });
  if (deps.generation) {
    await app.register(openAiPlugin, {
      prefix: OPENAI_PREFIX,
      generation: deps.generation,
      config: config.generation,
      bodyLimitBytes,
      serverVersion: SERVER_VERSION,
      router: service,
      ...(deps.llm && { llm: deps.llm }),
    });
  }
  if (deps.llm) await app.register(llmAdminPlugin, { llm: deps.llm });
  if (deps.jobs) {
    await app.register(jobsPlugin, {
      jobs: deps.jobs,
      repository,
      bodyLimitBytes,
      maxInstances: config.limits.maxInstances,
      router: service,
      ...(lifecycle && { lifecycle }),
    });
  }
  await app.register(pipelinesPlugin, { config, ...deps.pipelines });
  await app.register(adminPlugin, { config, manager: deps.manager, rollout, reloadConfig: deps.reloadConfig });
  await app.register(streamPlugin, { streaming: deps.streaming, service, lifecycle });
  await app.register(artifactPlugin, { repository });
  await app.register(webPlugin, { config, repository, drift: deps.drift, timeseries: deps.timeseries });
  // Unknown /v1 paths: a problem that points at the document (kept out of it).
  app.all('/v1/*', { schema: { hide: true } }, async (req) => {
    const path = req.url.split('?')[0]!.slice(0, 200);
    throw new FerryError('route-not-found', { detail: `no route ${req.method} ${path}; see /openapi.json` });
  });
  return app;
}

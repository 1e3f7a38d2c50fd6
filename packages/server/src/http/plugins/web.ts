// The web side of the server: the dashboard's static files at `/`, the monitoring time series its
// charts read.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import fastifyStatic from '@fastify/static';
import { Type } from '@sinclair/typebox';
import type { ServerDeps } from '../deps.js';
import { driftHistogramRoute } from './drift-histograms.js';
import { allowedModels } from './auth.js';
import { FerryError } from '../../errors.js';
import { ALL_MODELS, type TimeseriesRecorder } from '../../monitoring/timeseries.js';
import { json, problem, route, text } from '../schemas.js';

export { WebConfigSchema } from '../../config/schemas/web.js';

export interface WebOptions extends Pick<ServerDeps, 'config' | 'repository' | 'drift'> {
  /** The recorder behind `/v1/metrics/timeseries`, started and stopped by the composition root. */
  readonly timeseries: TimeseriesRecorder;
}

/**
 * Where the dashboard's static files are, found from this file (`<server>/dist/http/plugins/web.js`):
 * `<server>/dashboard` when the package was installed from its tarball (`prepack` copies the build
 * there), else `packages/dashboard/dist` in the monorepo.
 */
export function defaultDashboardDir(): string {
  const bundled = resolve(fileURLToPath(new URL('../../../dashboard', import.meta.url)));
  if (existsSync(join(bundled, 'index.html'))) return bundled;
  return resolve(fileURLToPath(new URL('../../../../dashboard/dist', import.meta.url)));
}

const NOT_BUILT = (dir: string) => `<!doctype html><meta charset="utf-8"><title>Ferry</title>
<body style="font-family:system-ui;max-width:40rem;margin:3rem auto">
<h1>Ferry is running</h1>
<p>The dashboard is not built (no <code>index.html</code> in <code>${dir.replace(/[<>&]/g, '')}</code>).
Build it with <code>npm run build</code> (or <code>npm run build -w @ferry/dashboard</code>), then restart.</p>
<p>Meanwhile: <a href="/docs">API docs</a> · <a href="/v1/models">/v1/models</a> · <a href="/metrics">/metrics</a></p>`;

/** The dashboard's static files at `/`, and the monitoring series and histograms its charts read. */
export const webPlugin: FastifyPluginAsync<WebOptions> = async (app, deps) => {
  driftHistogramRoute(app, deps);

  const web = deps.config.web;
  const recorder = deps.timeseries;
  const timeseriesSchema = route(
    'monitoring',
    "Request rate, latency and errors over time, per model (the dashboard's charts)",
    {
      querystring: Type.Object({
        model: Type.Optional(Type.String({ description: 'a model name, or `*` (default) for all' })),
      }),
      response: { 200: json('intervalSeconds, model, models, points'), 404: problem('Unknown model') },
    },
  );
  app.get<{ Querystring: { model?: string } }>('/v1/metrics/timeseries', { schema: timeseriesSchema }, async (req) => {
    const model = req.query.model;
    // A key limited to some models sees their series only: the all-models series mixes in the others.
    const allowed = allowedModels(req);
    if (allowed && (model === undefined || model === ALL_MODELS || !allowed.has(model.split('@', 1)[0]!)))
      throw new FerryError('forbidden', {
        detail: `key "${req.ferryPrincipal!.id}" is limited to the models ${[...allowed].join(', ')}; name one of them (?model=)`,
        extra: { required: `model:${String(model ?? ALL_MODELS).slice(0, 64)}` },
      });
    if (model !== undefined && model !== ALL_MODELS) deps.repository.resolve(model);
    return {
      intervalSeconds: recorder.intervalSeconds,
      model: model ?? ALL_MODELS,
      models: recorder.models().filter((m) => !allowed || allowed.has(m)),
      points: recorder.get(model ?? ALL_MODELS),
    };
  });

  const dir = web.dashboardDir ? resolve(web.dashboardDir) : defaultDashboardDir();
  const built = web.dashboard && existsSync(join(dir, 'index.html'));
  if (built) {
    await app.register(fastifyStatic, {
      root: dir,
      prefix: '/',
      index: ['index.html'],
      wildcard: true,
      // Vite fingerprints everything under assets/, so those may be cached for good; index.html may not.
      setHeaders: (res, path) => {
        res.header('cache-control', /[/\\]assets[/\\]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  } else {
    if (web.dashboard) app.log.warn({ dir }, 'dashboard not built: / shows how to build it (npm run build)');
    app.get(
      '/',
      {
        schema: route('web', 'How to build the dashboard (it is not built)', {
          response: { 200: text('An HTML page', 'text/html') },
        }),
      },
      async (_req, reply) => reply.type('text/html; charset=utf-8').send(NOT_BUILT(dir)),
    );
  }
};

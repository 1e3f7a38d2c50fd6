// Ferry's own REST API (v1): model listing and description, and predictions in feature form.
// Routes are thin: they resolve the model, call the ModelService, and shape the response.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { predictRequestSchema, predictResponseSchema, instanceSchema } from '@ferry/core';
import { FerryError } from '../../errors.js';
import { routeRequest, type HeaderSink } from '../route-request.js';
import type { ModelEntry, ModelVersion } from '../../serving/repository/index.js';
import { exampleInstance, instancesFromBody, type PredictResult } from '../../serving/index.js';
import type { ServerDeps } from '../deps.js';
import { modelVisible } from './auth.js';
import { streamPredict, wantsEventStream } from './sse-predict.js';
import {
  json,
  ModelParams as ModelPath,
  ModelVersionParams,
  PREDICT_ERRORS,
  problem,
  route,
  WindowQuery,
} from '../schemas.js';

interface ModelParams {
  model: string;
  version?: string;
}

function versionSummary(deps: Pick<ServerDeps, 'service'>, v: ModelVersion) {
  const lv = deps.service.get(v);
  return {
    version: v.version,
    state: lv.state,
    // Why a version is `failed` (its load, warm-up or contract check), as /readyz shows it.
    ...(lv.state === 'failed' && lv.error !== undefined && { error: lv.error }),
    ...(v.manifest.description && { description: v.manifest.description }),
    ...(lv.loadMs !== undefined && { loadMs: Math.round(lv.loadMs) }),
    ...(lv.warmupMs !== undefined && { warmupMs: Math.round(lv.warmupMs) }),
    ...(lv.batching && { batching: lv.batching }),
    // Where batches run; pipelines and generative models have their own runtimes.
    ...(lv.batching && !v.manifest.pipeline && !v.manifest.generation && { placement: lv.placement }),
  };
}

function modelSummary(deps: Pick<ServerDeps, 'service' | 'repository'>, m: ModelEntry) {
  const def = deps.repository.resolve(m.name);
  return {
    name: m.name,
    defaultVersion: def.version,
    aliases: m.aliases,
    versions: m.versions.map((v) => versionSummary(deps, v)),
  };
}

export function describeVersion(deps: Pick<ServerDeps, 'service'>, v: ModelVersion) {
  const m = v.manifest;
  const example = exampleInstance(v);
  return {
    name: v.name,
    ...versionSummary(deps, v),
    contract: m,
    schemas: {
      instance: instanceSchema(m, deps.service.limits),
      request: predictRequestSchema(m, deps.service.limits),
      response: predictResponseSchema(m),
    },
    ...(v.card !== undefined && { card: v.card }),
    // One instance this version takes: its warm-up instance, the first row of its reference data, or one
    // built from the contract (the dashboard's playground starts from it).
    ...(example !== undefined && { example }),
  };
}

/** Reads the instances from a v1 predict body: `{instances: [...]}` or `{inputs: {...}}`. */

/** `?window=24h` → seconds (s, m, h or d; at most 90 days). */
export function windowSeconds(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const m = /^(\d{1,7})(s|m|h|d)$/.exec(raw);
  const n = m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'] : NaN;
  if (!(n > 0 && n <= 90 * 86400)) {
    throw new FerryError('invalid-request', {
      detail: `window must look like 30m, 24h or 7d (at most 90d), got "${raw.slice(0, 40)}"`,
      extra: { errors: [{ pointer: '/query/window', reason: 'expected a duration like 24h' }] },
    });
  }
  return n;
}

/** Parses `Ferry-Timeout-Ms`: a positive integer of milliseconds, or absent. */
export function requestTimeout(raw: string | string[] | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? raw[0]! : raw;
  if (!/^\d{1,9}$/.test(text) || Number(text) === 0) {
    throw new FerryError('invalid-request', {
      detail: `Ferry-Timeout-Ms must be a positive whole number of milliseconds, got "${text.slice(0, 40)}"`,
    });
  }
  return Number(text);
}

export type V1Options = Pick<ServerDeps, 'config' | 'repository' | 'service' | 'drift' | 'lifecycle'>;

const predictBody = {
  content: {
    'application/json': {
      schema: {
        type: 'object',
        description:
          '`{"instances": [...]}` (rows) or `{"inputs": {...}}` (columns); per-model schemas under /v1/models/<name>/predict',
      },
    },
    'image/*': { schema: { type: 'string', format: 'binary', description: 'the picture itself, for image models' } },
  },
};
const predictSchema = (params: typeof ModelPath | typeof ModelVersionParams, summary: string) =>
  route('models', summary, {
    params,
    body: predictBody,
    headers: {
      type: 'object',
      properties: {
        'ferry-timeout-ms': { type: 'string', description: 'milliseconds' },
        'ferry-client-id': { type: 'string' },
      },
    },
    response: {
      200: {
        description:
          'One prediction per instance (`Accept: text/event-stream`: one `row` event per instance, then `done`)',
        content: {
          'application/json': { schema: { type: 'object' } },
          'text/event-stream': { schema: { type: 'string' } },
        },
      },
      ...PREDICT_ERRORS,
    },
  });
const driftSchema = (params: typeof ModelPath | typeof ModelVersionParams) =>
  route('monitoring', "Drift of recent traffic against the version's reference data", {
    params,
    querystring: WindowQuery,
    response: {
      200: json('Drift report per column'),
      400: problem('No reference data or a bad window'),
      404: problem('Unknown model or version'),
    },
  });

/** A v1 prediction's headers (the predict route and the predict lane set the same). */
export function predictHeaders(reply: HeaderSink, r: PredictResult): void {
  reply.header('ferry-model-version', r.version.version);
  if (r.cache) reply.header('ferry-cache', r.cache);
  if (r.fallback) reply.header('ferry-fallback', r.fallback.reason);
}

/** A v1 prediction's body. */
export function predictAnswer(r: PredictResult) {
  return {
    model: r.version.name,
    version: r.version.version,
    predictions: r.predictions,
    ...(r.fallback && { fallback: r.fallback }),
  };
}

/** `JSON.stringify(predictAnswer(r))`, using the predictions' text when the decoder wrote it. */
export function predictAnswerText(r: PredictResult): string {
  if (r.json === undefined || r.fallback) return JSON.stringify(predictAnswer(r));
  return `{"model":${JSON.stringify(r.version.name)},"version":${JSON.stringify(r.version.version)},"predictions":${r.json}}`;
}

/** Ferry's own REST API (v1): model listing and description, and predictions. */
// eslint-disable-next-line max-lines-per-function -- one plugin, one place for its routes
export const v1Plugin: FastifyPluginAsync<V1Options> = async (app, deps) => {
  const resolve = (req: FastifyRequest<{ Params: ModelParams }>): ModelVersion => {
    const v = deps.repository.resolve(req.params.model, req.params.version);
    req.ferryModel = v;
    return v;
  };

  // A key limited to some models lists only those (auth/: `models` of the key).
  app.get(
    '/v1/models',
    { schema: route('models', 'List models, their versions and aliases', { response: { 200: json('The models') } }) },
    async (req) => ({
      models: deps.repository
        .models()
        .filter((m) => modelVisible(req, m.name))
        .map((m) => modelSummary(deps, m)),
    }),
  );

  app.get<{ Params: ModelParams }>(
    '/v1/models/:model',
    {
      schema: route('models', 'Describe a model: contract, JSON Schemas, card', {
        params: ModelPath,
        response: { 200: json('The model'), 404: PREDICT_ERRORS[404] },
      }),
    },
    async (req) => {
      const v = resolve(req);
      const entry = deps.repository.get(v.name)!;
      return {
        ...describeVersion(deps, v),
        defaultVersion: deps.repository.resolve(v.name).version,
        aliases: entry.aliases,
        versions: entry.versions.map((x) => versionSummary(deps, x)),
      };
    },
  );

  app.get<{ Params: ModelParams }>(
    '/v1/models/:model/versions/:version',
    {
      schema: route('models', 'Describe one version', {
        params: ModelVersionParams,
        response: { 200: json('The version'), 404: PREDICT_ERRORS[404] },
      }),
    },
    async (req) => describeVersion(deps, resolve(req)),
  );

  const predict = async (req: FastifyRequest<{ Params: ModelParams }>, reply: import('fastify').FastifyReply) => {
    // Canary routing and deprecation headers (or 410 after sunset): the predict path's routing step.
    const v = routeRequest(deps.service, req, reply, req.params.model, req.params.version);
    req.ferryModel = v;
    // An image model also takes the picture itself as the body (Content-Type: image/*).
    const image = Buffer.isBuffer(req.body) ? v.manifest.inputs.find((f) => f.type === 'image') : undefined;
    const { instances, base } = image
      ? { instances: [{ [image.name]: req.body }], base: '/instances' }
      : instancesFromBody(req.body);
    const timeoutMs = requestTimeout(req.headers['ferry-timeout-ms']);
    // Accept: text/event-stream → one SSE event per row as rows finish, then `done`.
    if (wantsEventStream(req))
      return streamPredict(deps, req, reply, v, instances, { base, ...(timeoutMs !== undefined && { timeoutMs }) });
    const r = await deps.service.predict(v, instances, base, {
      requestId: req.id,
      ...(timeoutMs !== undefined && { timeoutMs }),
    });
    predictHeaders(reply, r);
    return predictAnswer(r);
  };
  const config = { metricsRoute: 'v1_predict' };
  app.post<{ Params: ModelParams }>(
    '/v1/models/:model/predict',
    { config, schema: predictSchema(ModelPath, 'Predict with a model (its default version, or the canary arm)') },
    predict,
  );
  app.post<{ Params: ModelParams }>(
    '/v1/models/:model/versions/:version/predict',
    { config, schema: predictSchema(ModelVersionParams, 'Predict with one version') },
    predict,
  );

  // Drift of recent traffic against the version's reference data.
  const drift = async (req: FastifyRequest<{ Params: ModelParams; Querystring: { window?: string } }>) => {
    const v = resolve(req);
    if (v.manifest.reference === undefined) {
      throw new FerryError('invalid-request', {
        detail: `${v.key} ships no reference data (the \`reference\` key of its ferry.yaml), so drift cannot be measured`,
      });
    }
    return deps.drift.report(v, windowSeconds(req.query.window, deps.config.monitoring.driftWindowSeconds));
  };
  app.get<{ Params: ModelParams; Querystring: { window?: string } }>(
    '/v1/models/:model/drift',
    { schema: driftSchema(ModelPath) },
    drift,
  );
  app.get<{ Params: ModelParams; Querystring: { window?: string } }>(
    '/v1/models/:model/versions/:version/drift',
    { schema: driftSchema(ModelVersionParams) },
    drift,
  );

  // A GET on a predict URL is a common mistake; say what to do instead of a bare 404.
  const wrongMethod = route('models', 'Not a route: predict takes POST (a 405 that says so)', {
    params: ModelPath,
    response: { 405: problem('Use POST') },
  });
  app.get('/v1/models/:model/predict', { schema: wrongMethod }, async () => {
    throw new FerryError('method-not-allowed', {
      detail: 'use POST with {"instances": [...]}',
      headers: { allow: 'POST' },
    });
  });
};

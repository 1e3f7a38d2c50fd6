// Read-only HTTP routes over pipeline results. They read the store and never run a model: a
// prediction served here costs one indexed lookup. POST …/runs queues a run for the job workers.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { allowedModels } from './auth.js';
import { Type } from '@sinclair/typebox';
import { json, problem, route } from '../schemas.js';
import type { FerryConfig } from '../../config/index.js';
import { FerryError } from '../../errors.js';
import { pipelinesOf } from '../../config/schemas/pipelines.js';
import type { RunRecord, RunStore, RunSummaryRow } from '../../pipelines/run-store.js';
import { MAX_SHARDS, RUN_ID, type QueuedRun } from '../../pipelines/queue-shards.js';

export interface PipelinesOptions {
  config: FerryConfig;
  /** Where runs and their predictions are read. */
  runs: RunStore;
  /** Whether a pipeline has a run going in this process (the scheduler). */
  isRunning?: (name: string) => boolean;
  /** Queues a run's shards on the job queue for `ferry worker`s (POST /v1/pipelines/{name}/runs). */
  queueRun?: (
    name: string,
    model: string,
    runId: string | undefined,
    shards: number,
  ) => Promise<QueuedRun & { queue: string }>;
}

/** Most keys one batchGet may ask for. */
export const MAX_BATCH_GET_KEYS = 1000;
const MAX_KEY_LENGTH = 1000;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function runJson(r: RunSummaryRow) {
  return {
    runId: r.runId,
    status: r.status,
    model: r.model,
    version: r.version,
    trigger: r.trigger,
    shards: r.shards,
    shardsCompleted: r.shardsCompleted,
    chunkRows: r.chunkRows,
    chunks: r.chunks,
    rowsScored: r.rowsScored,
    rowsRejected: r.rowsRejected,
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    ...(r.error && { error: r.error }),
  };
}

const Name = Type.Object({ name: Type.String({ description: 'pipeline name' }) });
const notFound = problem('No such pipeline');
const SCHEMAS = {
  list: route('pipelines', 'Pipelines, their schedule, last run and last completed run', {
    response: { 200: json('`{pipelines: [...]}`') },
  }),
  runs: route('pipelines', 'Recent runs of a pipeline, newest first', {
    params: Name,
    querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 20 })) }),
    response: { 200: json('`{pipeline, runs: [...]}`'), 400: problem('Bad limit'), 404: notFound },
  }),
  queue: route('pipelines', 'Start a run now: its shards are queued as jobs for the workers (admin)', {
    params: Name,
    body: Type.Object(
      {
        shards: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_SHARDS, default: 1 })),
        runId: Type.Optional(Type.String({ pattern: RUN_ID.source })),
      },
      { additionalProperties: false },
    ),
    response: {
      202: json('pipeline, runId, shards, created, queue'),
      400: problem('Bad shards or runId'),
      404: notFound,
    },
  }),
  prediction: route('pipelines', 'The stored prediction for one key, from the latest completed run', {
    params: Type.Object({ name: Type.String(), key: Type.String({ maxLength: MAX_KEY_LENGTH }) }),
    response: {
      200: json('pipeline, key, runId, model, version, scoredAt, prediction'),
      404: problem('No such pipeline, no completed run or no prediction for the key'),
      409: problem('The pipeline writes files'),
    },
  }),
  batchGet: route('pipelines', 'Stored predictions for many keys, from the latest completed run', {
    params: Name,
    body: Type.Object({
      keys: Type.Array(Type.String({ minLength: 1, maxLength: MAX_KEY_LENGTH }), {
        minItems: 1,
        maxItems: MAX_BATCH_GET_KEYS,
      }),
    }),
    response: {
      200: json('pipeline, runId, model, version, predictions (found or not, in order)'),
      400: problem('Bad keys'),
      404: notFound,
    },
  }),
};

/** Pipeline results as reads, and queued runs; the scheduler and queueRun come from the composition root. */
// eslint-disable-next-line max-lines-per-function -- one plugin, one place for its routes
export const pipelinesPlugin: FastifyPluginAsync<PipelinesOptions> = async (app, deps) => {
  const { runs } = deps;
  const pipelines = pipelinesOf(deps.config);

  // A key limited to some models sees only the pipelines that score with them (others do not exist for it).
  const visible = (req: FastifyRequest, model: string) => {
    const allowed = allowedModels(req);
    return !allowed || allowed.has(model.split('@', 1)[0]!);
  };
  const pipelineOf = (name: string, req?: FastifyRequest) => {
    const found = Object.hasOwn(pipelines, name) ? pipelines[name] : undefined;
    const p = found && (!req || visible(req, found.model)) ? found : undefined;
    if (!p) {
      throw new FerryError('pipeline-not-found', {
        detail: `no pipeline "${name.slice(0, 100)}"; available: ${names(req).join(', ') || '(none)'}`,
        extra: { available: names(req) },
      });
    }
    return p;
  };

  const names = (req?: FastifyRequest) =>
    Object.entries(pipelines)
      .filter(([, p]) => !req || visible(req, p.model))
      .map(([n]) => n);

  /** The latest completed run whose results are in the store, or a problem saying why there is none. */
  const servedRun = async (name: string, req: FastifyRequest): Promise<RunRecord | undefined> => {
    const p = pipelineOf(name, req);
    if (p.sink && p.sink.kind !== 'table') {
      throw new FerryError('pipeline-results-not-served', {
        detail: `pipeline "${name}" writes ${p.sink.kind} files under ${p.sink.dir}; read them there`,
      });
    }
    return runs.latestCompleted(name);
  };

  app.get('/v1/pipelines', { schema: SCHEMAS.list }, async (req) => {
    const out = [];
    for (const [name, p] of Object.entries(pipelines)) {
      if (!visible(req, p.model)) continue;
      const [last] = await runs.runs(name, 1);
      const done = await runs.latestCompleted(name);
      out.push({
        name,
        ...(p.description && { description: p.description }),
        model: p.model,
        key: p.key,
        source: p.source.kind,
        sink: p.sink?.kind ?? 'table',
        schedule: p.schedule || null,
        timezone: p.timezone,
        running: deps.isRunning?.(name) ?? false,
        lastRun: last ? runJson(last) : null,
        lastCompletedRun: done ? { runId: done.runId, version: done.version, finishedAt: iso(done.finishedAt) } : null,
      });
    }
    return { pipelines: out };
  });

  app.get<{ Params: { name: string }; Querystring: { limit?: string } }>(
    '/v1/pipelines/:name/runs',
    { schema: SCHEMAS.runs },
    async (req) => {
      pipelineOf(req.params.name, req);
      const raw = req.query.limit;
      const limit = raw === undefined ? 20 : Number(raw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
        throw new FerryError('invalid-request', {
          detail: `limit: expected an integer from 1 to 500, got "${String(raw).slice(0, 50)}"`,
          extra: { errors: [{ pointer: '/query/limit', reason: 'expected an integer from 1 to 500' }] },
        });
      }
      return { pipeline: req.params.name, runs: (await runs.runs(req.params.name, limit)).map(runJson) };
    },
  );

  // Starts a run now, its shards queued as jobs for the `ferry worker`s (admin; the scope table).
  // The same runId with the same shard count finds the jobs already queued (`created: 0`).
  if (deps.queueRun) {
    const queueRun = deps.queueRun;
    app.post<{ Params: { name: string }; Body: unknown }>(
      '/v1/pipelines/:name/runs',
      { schema: SCHEMAS.queue },
      async (req, reply) => {
        const p = pipelineOf(req.params.name, req);
        const body = (req.body ?? {}) as Record<string, unknown>;
        const bad = (pointer: string, reason: string) =>
          new FerryError('invalid-request', {
            detail: `${pointer}: ${reason}`,
            extra: { errors: [{ pointer, reason }] },
          });
        if (typeof body !== 'object' || Array.isArray(body))
          throw bad('/', 'expected an object {"shards": n, "runId": "…"} (both optional)');
        for (const k of Object.keys(body))
          if (k !== 'shards' && k !== 'runId') throw bad(`/${k}`, 'unknown field; expected shards or runId');
        const shards = body.shards ?? 1;
        if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS)
          throw bad('/shards', `expected a whole number from 1 to ${MAX_SHARDS}`);
        const runId = body.runId;
        if (runId !== undefined && (typeof runId !== 'string' || !RUN_ID.test(runId)))
          throw bad('/runId', 'expected 1-128 letters, digits, _ . : - (starting with a letter or digit)');
        const queued = await queueRun(req.params.name, p.model, runId, shards);
        reply.code(202).header('location', `/v1/pipelines/${encodeURIComponent(req.params.name)}/runs`);
        return { pipeline: req.params.name, ...queued };
      },
    );
  }

  app.get<{ Params: { name: string; key: string } }>(
    '/v1/pipelines/:name/predictions/:key',
    { schema: SCHEMAS.prediction },
    async (req) => {
      const { name, key } = req.params;
      if (key.length > MAX_KEY_LENGTH)
        throw new FerryError('invalid-request', {
          detail: `key: at most ${MAX_KEY_LENGTH} characters`,
          extra: { errors: [{ pointer: '/path/key', reason: `at most ${MAX_KEY_LENGTH} characters` }] },
        });
      const run = await servedRun(name, req);
      const hit = run ? (await runs.predictions(name, run.runId, [key])).get(key) : undefined;
      if (!run || !hit) {
        throw new FerryError('pipeline-prediction-not-found', {
          detail: run
            ? `the latest completed run of "${name}" (${run.runId}) has no prediction for key "${key.slice(0, 100)}"`
            : `pipeline "${name}" has no completed run yet`,
          extra: { pipeline: name, key, ...(run && { runId: run.runId }) },
        });
      }
      return {
        pipeline: name,
        key,
        runId: run.runId,
        model: run.model,
        version: run.version,
        scoredAt: iso(hit.scoredAt),
        prediction: hit.output,
      };
    },
  );

  // `:batchGet` is a custom method (Google AIP-136 style); `::` is Fastify's escape for a literal colon.
  app.post<{ Params: { name: string }; Body: unknown }>(
    '/v1/pipelines/:name/predictions::batchGet',
    { schema: SCHEMAS.batchGet },
    async (req) => {
      const { name } = req.params;
      const body = req.body as { keys?: unknown } | null | undefined;
      const bad = (pointer: string, reason: string) =>
        new FerryError('invalid-request', {
          detail: `${pointer}: ${reason}`,
          extra: { errors: [{ pointer, reason }] },
        });
      if (!body || typeof body !== 'object' || Array.isArray(body))
        throw bad('/', 'expected an object {"keys": [...]}');
      const keys = body.keys;
      if (!Array.isArray(keys)) throw bad('/keys', 'expected an array of keys');
      if (keys.length === 0) throw bad('/keys', 'at least one key is required');
      if (keys.length > MAX_BATCH_GET_KEYS)
        throw bad('/keys', `at most ${MAX_BATCH_GET_KEYS} keys per request, got ${keys.length}`);
      keys.forEach((k, i) => {
        if (typeof k !== 'string' || k.length === 0 || k.length > MAX_KEY_LENGTH)
          throw bad(`/keys/${i}`, `expected a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
      });
      const run = await servedRun(name, req);
      const found = run ? await runs.predictions(name, run.runId, [...new Set(keys as string[])]) : new Map();
      return {
        pipeline: name,
        runId: run?.runId ?? null,
        model: run?.model ?? null,
        version: run?.version ?? null,
        predictions: (keys as string[]).map((key) => {
          const hit = found.get(key);
          return hit
            ? { key, found: true, scoredAt: iso(hit.scoredAt), prediction: hit.output }
            : { key, found: false };
        }),
      };
    },
  );
};

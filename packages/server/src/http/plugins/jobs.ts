// The job API (auth scope `jobs`): submit, read, list, cancel, and watch a job as Server-Sent Events.
// Thin routes: parse and check the request, call the jobs runtime, shape the answer.
import type { Readable } from 'node:stream';
import { UploadReader } from '../upload-reader.js';
import { openEventStream } from '../sse.js';
import { eventStream, json, ModelParams as ModelPath, ModelVersionParams, problem, ref, route } from '../schemas.js';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { FerryError, invalidInput } from '../../errors.js';
import { requestTimeout } from './v1.js';
import { instancesFromBody } from '../../serving/index.js';
import type { ModelVersion, Repository } from '../../serving/repository/index.js';
import type { JobDocRow, JobListRow } from '../../jobs/job-store.js';
import type { JobsRuntime } from '../../jobs/runtime.js';
import type { Lifecycle } from '../../lifecycle/index.js';
import { routeRequest, type RequestRouter } from '../route-request.js';
import { JOB_STATES, type JobState } from '../../jobs/types.js';
import { allowedModels } from './auth.js';

interface ModelParams {
  model: string;
  version?: string;
}
interface ListQuery {
  model?: string;
  state?: string;
  limit?: string;
  cursor?: string;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const JOB_ID = /^[0-9a-f-]{36}$/;

function badQuery(name: string, reason: string): FerryError {
  return new FerryError('invalid-request', {
    detail: `${name}: ${reason}`,
    extra: { errors: [{ pointer: `/query/${name}`, reason }] },
  });
}

function encodeCursor(r: JobListRow): string {
  return Buffer.from(`${r.created_at}:${r.id}`).toString('base64url');
}

function decodeCursor(raw: string): { createdAt: number; id: string } {
  const m = /^(\d{1,15}):([0-9a-f-]{36})$/.exec(Buffer.from(raw, 'base64url').toString('utf8'));
  if (!m || raw.length > 200) throw badQuery('cursor', 'not a cursor this server returned');
  return { createdAt: Number(m[1]), id: m[2]! };
}

/** Multipart bodies are not read by Fastify: the handler streams them to the jobs' upload thread. */
const uploadBodies = new WeakMap<FastifyRequest, Readable>();
const isMultipart = (req: FastifyRequest) => uploadBodies.has(req);

/** Reads a multipart upload off this thread: files become instances of the model's image input. */
async function readMultipart(
  req: FastifyRequest,
  reply: FastifyReply,
  uploads: UploadReader,
  v: ModelVersion,
  bodyLimitBytes: number,
  maxFiles: number,
): Promise<{ instances: unknown[]; json: string; fields: Record<string, string> }> {
  const image = v.manifest.inputs.find((f) => f.type === 'image');
  if (!image)
    throw new FerryError('unsupported-media-type', {
      detail: `${v.key} takes no file input; send JSON {"instances": [...]}`,
    });
  let upload;
  try {
    upload = await uploads.read(uploadBodies.get(req)!, String(req.headers['content-type']), {
      maxBytes: bodyLimitBytes,
      maxFiles,
      imageField: image.name,
      fieldNames: ['callbackUrl', 'timeoutMs'],
      maxFieldBytes: 4096,
    });
  } catch (e) {
    // Refused mid-body: the rest is not read, so the connection cannot carry another request.
    if (!req.raw.complete) reply.header('connection', 'close');
    throw e;
  }
  if (upload.instances.length === 0)
    throw invalidInput([{ pointer: `/${image.name}`, reason: 'no image file in the upload' }]);
  return { instances: upload.instances, json: upload.json, fields: upload.fields };
}

const notFound = (id: string) =>
  new FerryError('job-not-found', {
    detail: `no job ${id.slice(0, 100)} (finished jobs are kept jobs.retentionSeconds)`,
  });

/**
 * A key limited to some models sees other models' jobs as absent (404, not 403: a job id must not
 * reveal that a job of a model the key cannot see exists).
 */
function assertJobModel(req: FastifyRequest, model: string, id: string): void {
  const allowed = allowedModels(req);
  if (allowed && !allowed.has(model)) throw notFound(id);
}

/** Whom an event stream counts against: the API key, or without one the client address. */
const clientOf = (req: FastifyRequest): string =>
  req.ferryPrincipal ? `key:${req.ferryPrincipal.id}` : `ip:${req.ip}`;

export interface JobsOptions {
  jobs: JobsRuntime;
  repository: Repository;
  bodyLimitBytes: number;
  maxInstances: number;
  lifecycle?: Lifecycle;
  /** Canary routing and deprecation of the submitted version (docs/rollout.md); without it, plain resolution. */
  router?: RequestRouter;
}

const job = (description: string) => json(description, ref('Job'));
const JobId = Type.Object({ id: Type.String({ format: 'uuid' }) });
const submitSchema = (params: typeof ModelPath | typeof ModelVersionParams) =>
  route(
    'jobs',
    'Submit an asynchronous job: a /predict body (plus optional callbackUrl, timeoutMs), a raw image, or multipart image files',
    {
      params,
      headers: Type.Object({
        'idempotency-key': Type.Optional(Type.String({ maxLength: 255 })),
        'ferry-timeout-ms': Type.Optional(Type.String()),
      }),
      querystring: Type.Object({ callbackUrl: Type.Optional(Type.String({ description: 'with a raw image body' })) }),
      body: {
        content: {
          'application/json': {
            schema: {
              type: 'object',
              properties: {
                instances: { type: 'array' },
                inputs: { type: 'object' },
                callbackUrl: { type: 'string', format: 'uri' },
                timeoutMs: { type: 'integer', minimum: 1 },
              },
            },
          },
          'multipart/form-data': {
            schema: {
              type: 'object',
              properties: {
                image: { type: 'array', items: { type: 'string', format: 'binary' } },
                callbackUrl: { type: 'string' },
                timeoutMs: { type: 'string' },
              },
            },
          },
          'image/*': { schema: { type: 'string', format: 'binary' } },
        },
      },
      response: {
        202: {
          description: 'Accepted; `Location: /v1/jobs/{id}`',
          headers: { Location: { type: 'string' } },
          content: { 'application/json': { schema: ref('Job') } },
        },
        400: problem('Invalid input, caught at submission; `errors` names each bad field'),
        404: problem('Unknown model or version'),
        415: problem('A file upload to a model without an image input'),
        422: problem('Idempotency-Key reused with another request'),
        503: problem('The queue cannot be reached'),
      },
    },
  );
const listSchema = route('jobs', 'List jobs, newest first (results left out)', {
  querystring: Type.Object({
    model: Type.Optional(Type.String()),
    state: Type.Optional(Type.Union(JOB_STATES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
    cursor: Type.Optional(Type.String()),
  }),
  response: {
    200: json('A page of jobs and the cursor of the next', {
      type: 'object',
      properties: { jobs: { type: 'array', items: ref('Job') }, nextCursor: { type: ['string', 'null'] } },
    }),
    400: problem('Bad query parameter'),
  },
});

/** Asynchronous jobs: submit, read, cancel, list, and follow as server-sent events. */
// eslint-disable-next-line max-lines-per-function -- one plugin, one place for its routes
export const jobsPlugin: FastifyPluginAsync<JobsOptions> = async (scope, deps) => {
  const { jobs, repository } = deps;
  // Encapsulated (this plugin's scope): a multipart body is left unread here and streamed by the
  // handler to the upload thread, which enforces the limits as the bytes arrive.
  scope.addContentTypeParser('multipart/form-data', (req, payload, done) => {
    uploadBodies.set(req, payload);
    done(null);
  });
  const uploads = new UploadReader();
  scope.addHook('onClose', () => uploads.close());

  /** The job without its input; a key limited to other models is told it does not exist. */
  const get = async (req: FastifyRequest, id: string): Promise<JobDocRow> => {
    const row = JOB_ID.test(id) ? await jobs.store.document(id) : undefined;
    if (!row) throw notFound(id);
    assertJobModel(req, row.model, id);
    return row;
  };

  const submit = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    // As for /predict: an unpinned job takes the client's canary arm, a deprecated version's 202 carries
    // Deprecation/Sunset/Link, a retired one is a 410 now. The job records and later runs this exact version.
    const v = deps.router
      ? routeRequest(deps.router, req, reply, req.params.model, req.params.version)
      : repository.resolve(req.params.model, req.params.version);
    req.ferryModel = v;
    const keyHeader = req.headers['idempotency-key'];
    let idempotencyKey = Array.isArray(keyHeader) ? keyHeader[0] : keyHeader;
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new FerryError('invalid-request', {
        detail: 'Idempotency-Key must be 1 to 255 visible ASCII characters',
        extra: { errors: [{ pointer: '/headers/idempotency-key', reason: 'expected 1-255 visible ASCII characters' }] },
      });
    }
    // The proxy's request id stands in for a missing key (jobs.proxyRequestIdempotency): its retry
    // of this POST on another replica then finds the first job. Namespaced apart from client keys.
    const proxyId = req.headers['x-request-id'];
    if (
      idempotencyKey === undefined &&
      jobs.config.proxyRequestIdempotency &&
      typeof proxyId === 'string' &&
      IDEMPOTENCY_KEY.test(proxyId) &&
      proxyId.length <= 200
    ) {
      idempotencyKey = `proxy-request-id:${proxyId}`;
    }
    let timeoutMs = requestTimeout(req.headers['ferry-timeout-ms']);
    let callbackUrl: unknown;
    let instances: unknown;
    let base = '/instances';
    let instancesJson: string | undefined;
    if (isMultipart(req)) {
      const form = await readMultipart(req, reply, uploads, v, deps.bodyLimitBytes, deps.maxInstances);
      instances = form.instances;
      instancesJson = form.json;
      callbackUrl = form.fields.callbackUrl;
      if (form.fields.timeoutMs !== undefined) timeoutMs = requestTimeout(form.fields.timeoutMs);
    } else if (Buffer.isBuffer(req.body)) {
      const image = v.manifest.inputs.find((f) => f.type === 'image');
      if (!image)
        throw new FerryError('unsupported-media-type', { detail: `${v.key} takes JSON: {"instances": [...]}` });
      instances = [{ [image.name]: req.body }];
      const q = (req.query ?? {}) as Record<string, unknown>;
      callbackUrl = typeof q.callbackUrl === 'string' ? q.callbackUrl : undefined;
    } else {
      const body = req.body;
      if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
        const { callbackUrl: cb, timeoutMs: t, ...rest } = body as Record<string, unknown>;
        callbackUrl = cb;
        if (t !== undefined) {
          if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 86_400_000)
            throw invalidInput([
              { pointer: '/timeoutMs', reason: 'expected a whole number of milliseconds, 1 to 86400000' },
            ]);
          timeoutMs = t;
        }
        ({ instances, base } = instancesFromBody(rest));
      } else {
        ({ instances, base } = instancesFromBody(body));
      }
    }
    const { row, created } = await jobs.submit(v, instances, base, {
      ...(callbackUrl !== undefined && { callbackUrl }),
      ...(timeoutMs !== undefined && { timeoutMs }),
      ...(idempotencyKey !== undefined && { idempotencyKey }),
      requested: `${req.params.model}${req.params.version !== undefined ? `/versions/${req.params.version}` : ''}`,
      requestId: req.id,
      ...(instancesJson !== undefined && { instancesJson }),
    });
    reply.header('location', `/v1/jobs/${row.id}`);
    reply.header('ferry-model-version', row.version);
    if (!created) reply.header('idempotent-replayed', 'true');
    return reply.code(202).send(jobs.store.toDocument(row));
  };
  const metrics = { config: { metricsRoute: 'v1_jobs' } };
  scope.post<{ Params: ModelParams }>(
    '/v1/models/:model/jobs',
    { ...metrics, schema: submitSchema(ModelPath) },
    submit,
  );
  scope.post<{ Params: ModelParams }>(
    '/v1/models/:model/versions/:version/jobs',
    { ...metrics, schema: submitSchema(ModelVersionParams) },
    submit,
  );

  scope.get<{ Params: { id: string } }>(
    '/v1/jobs/:id',
    {
      schema: route('jobs', 'A job: state, progress, result or error', {
        params: JobId,
        response: { 200: job('The job'), 404: problem('No such job') },
      }),
    },
    async (req) => jobs.store.toDocument(await get(req, req.params.id)),
  );

  const cancelSchema = route('jobs', 'Cancel a queued job (200), or ask an active one to stop (202)', {
    params: JobId,
    response: {
      200: job('Cancelled'),
      202: job('Asked to stop'),
      404: problem('No such job'),
      409: problem('The job already ended'),
    },
  });
  scope.delete<{ Params: { id: string } }>('/v1/jobs/:id', { schema: cancelSchema }, async (req, reply) => {
    // Existence and the key's model limit from the small columns: a cancel does not read the result.
    const id = req.params.id;
    const status = JOB_ID.test(id) ? await jobs.store.status(id) : undefined;
    if (!status) throw notFound(id);
    assertJobModel(req, status.model, id);
    const r = await jobs.cancel(id);
    // 200: cancelled now; 202: the active job was asked to stop and will end as cancelled (or finish first).
    return reply.code(r.immediate ? 200 : 202).send(jobs.store.toDocument(r.row));
  });

  scope.get<{ Querystring: ListQuery }>('/v1/jobs', { schema: listSchema }, async (req) => {
    const q = req.query;
    const one = (name: keyof ListQuery): string | undefined => {
      const v = q[name] as unknown;
      if (Array.isArray(v)) throw badQuery(name, 'give it once');
      return v as string | undefined;
    };
    const model = one('model');
    const state = one('state');
    const limitRaw = one('limit');
    const cursorRaw = one('cursor');
    // A key limited to some models lists only their jobs: another model (known or not) is refused.
    const allowed = allowedModels(req);
    if (model !== undefined && allowed && !allowed.has(model))
      throw new FerryError('forbidden', {
        detail: `key "${req.ferryPrincipal!.id}" is limited to the models ${[...allowed].join(', ')}`,
        extra: { required: `model:${model.slice(0, 64)}` },
      });
    if (model !== undefined && !repository.get(model))
      throw new FerryError('model-not-found', {
        detail: `no model "${model.slice(0, 100)}"`,
        extra: { errors: [{ pointer: '/query/model', reason: 'unknown model' }] },
      });
    if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state))
      throw badQuery('state', `expected one of ${JOB_STATES.join(', ')}`);
    if (limitRaw !== undefined && !/^\d{1,4}$/.test(limitRaw))
      throw badQuery('limit', 'expected a whole number from 1 to 1000');
    const limit = limitRaw === undefined ? 50 : Number(limitRaw);
    if (limit < 1 || limit > 1000) throw badQuery('limit', 'expected a whole number from 1 to 1000');
    const rows = await jobs.store.list({
      limit: limit + 1,
      ...(model !== undefined && { model }),
      ...(model === undefined && allowed && { models: [...allowed] }),
      ...(state !== undefined && { state: state as JobState }),
      ...(cursorRaw !== undefined && { cursor: decodeCursor(cursorRaw) }),
    });
    const page = rows.slice(0, limit);
    // Lists leave results out (they can be large): GET the job for its result.
    return {
      jobs: page.map((r) => ({ ...jobs.store.toDocument(r), result: undefined })),
      nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!) : null,
    };
  });

  const eventsSchema = route(
    'jobs',
    'Server-Sent Events: one event per state or progress change, ending with the final document',
    {
      params: JobId,
      response: { 200: eventStream('text/event-stream'), 404: problem('No such job') },
    },
  );
  scope.get<{ Params: { id: string } }>('/v1/jobs/:id/events', { schema: eventsSchema }, async (req, reply) => {
    const id = req.params.id;
    // The client may leave at any point, during an await included: noticed from here on.
    let left = false;
    const onLeave = () => {
      left = true;
    };
    reply.raw.once('close', onLeave);
    // A slot first (synchronous, no query): a flood of streams is refused before it reaches the store.
    const slot = jobs.watch.reserve(id, clientOf(req));
    let status;
    try {
      status = JOB_ID.test(id) ? await jobs.store.status(id) : undefined;
      if (!status) throw notFound(id);
      assertJobModel(req, status.model, id);
    } catch (e) {
      slot.release();
      throw e;
    }
    if (left || reply.raw.destroyed) {
      slot.release();
      reply.hijack();
      return;
    }
    reply.raw.off('close', onLeave);
    // CORS headers set on the reply go out with the hijacked stream (http/sse.ts).
    const stream = openEventStream(req, reply, { connection: 'keep-alive' });
    const res = stream.raw;
    let ended = false;
    let untrack: () => void = () => undefined;
    const end = () => {
      if (ended) return;
      ended = true;
      untrack();
      stop();
      res.end();
    };
    const stop = slot.attach(
      {
        change: (kind, e) => {
          // A client that does not read loses intermediate progress (the next event carries the latest), not memory.
          if (res.writableNeedDrain && kind === 'progress') return;
          stream.event(kind, { id, state: e.state, progress: e.progress }, e.seq);
        },
        final: (kind, seq, json) => {
          if (ended) return;
          stream.eventJson(kind, json, seq);
          end();
        },
        keepAlive: () => stream.comment('keep-alive'),
        gone: end,
      },
      status,
    );
    if (ended) return; // a job that had already ended was delivered whole above
    res.on('close', end);
    // On shutdown the stream ends after the grace (the client reconnects with Last-Event-ID elsewhere).
    if (deps.lifecycle) untrack = deps.lifecycle.trackStream(end);
  });
};

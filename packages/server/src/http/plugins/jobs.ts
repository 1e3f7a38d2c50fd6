// The job API (auth scope `jobs`): submit, read, list, cancel, and watch a job as Server-Sent Events.
// Thin routes: parse and check the request, call the jobs runtime, shape the answer.
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FerryError, invalidInput } from '../../errors.js';
import { instancesFromBody, requestTimeout } from './v1.js';
import type { ModelVersion, Repository } from '../../serving/repository/index.js';
import type { JobRow } from '../../jobs/job-store.js';
import type { JobsRuntime } from '../../jobs/runtime.js';
import type { Lifecycle } from '../../lifecycle/index.js';
import { routeRequest, type RequestRouter } from '../route-request.js';
import { isTerminal, JOB_STATES, type JobEvent, type JobState } from '../../jobs/types.js';

interface ModelParams { model: string; version?: string }
interface ListQuery { model?: string; state?: string; limit?: string; cursor?: string }

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const JOB_ID = /^[0-9a-f-]{36}$/;

function badQuery(name: string, reason: string): FerryError {
  return new FerryError('invalid-request', { detail: `${name}: ${reason}`, extra: { errors: [{ pointer: `/query/${name}`, reason }] } });
}

function encodeCursor(r: JobRow): string {
  return Buffer.from(`${r.created_at}:${r.id}`).toString('base64url');
}

function decodeCursor(raw: string): { createdAt: number; id: string } {
  const m = /^(\d{1,15}):([0-9a-f-]{36})$/.exec(Buffer.from(raw, 'base64url').toString('utf8'));
  if (!m || raw.length > 200) throw badQuery('cursor', 'not a cursor this server returned');
  return { createdAt: Number(m[1]), id: m[2]! };
}

/** Reads the parts of a multipart upload: files become instances of the model's image input. */
async function readMultipart(req: FastifyRequest, v: ModelVersion, bodyLimitBytes: number): Promise<{ instances: unknown[]; fields: Record<string, string> }> {
  const image = v.manifest.inputs.find((f) => f.type === 'image');
  if (!image) throw new FerryError('unsupported-media-type', { detail: `${v.key} takes no file input; send JSON {"instances": [...]}` });
  const instances: unknown[] = [];
  const fields: Record<string, string> = {};
  const tooLarge = () => new FerryError('body-too-large', { detail: `the upload exceeds the limit of ${bodyLimitBytes} bytes (server.bodyLimitBytes)`, extra: { limit: bodyLimitBytes } });
  // Each file is capped by the multipart plugin; the whole upload is capped here, like a JSON body.
  let total = 0;
  try {
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== image.name && part.fieldname !== 'file') {
          throw invalidInput([{ pointer: `/${part.fieldname.slice(0, 100)}`, reason: `unknown file field; upload the image as "${image.name}"` }]);
        }
        const data = await part.toBuffer();
        total += data.length;
        if (total > bodyLimitBytes) throw tooLarge();
        instances.push({ [image.name]: data });
        continue;
      }
      if (!['callbackUrl', 'timeoutMs'].includes(part.fieldname)) throw invalidInput([{ pointer: `/${part.fieldname.slice(0, 100)}`, reason: 'unknown form field; expected image files, callbackUrl or timeoutMs' }]);
      fields[part.fieldname] = String(part.value);
    }
  } catch (e) {
    if (e instanceof FerryError) throw e;
    const code = (e as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge();
    if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT') throw new FerryError('too-many-instances', { detail: 'too many files in one upload (limits.maxInstances)' });
    if (code === 'FST_FIELDS_LIMIT') throw new FerryError('invalid-request', { detail: 'too many form fields' });
    throw new FerryError('invalid-request', { detail: `malformed multipart body: ${String((e as Error).message).slice(0, 200)}` });
  }
  if (instances.length === 0) throw invalidInput([{ pointer: `/${image.name}`, reason: 'no image file in the upload' }]);
  return { instances, fields };
}

export interface JobRouteDeps {
  jobs: JobsRuntime;
  repository: Repository;
  bodyLimitBytes: number;
  maxInstances: number;
  lifecycle?: Lifecycle;
  /** Canary routing and deprecation of the submitted version (docs/rollout.md); without it, plain resolution. */
  router?: RequestRouter;
}

export async function registerJobRoutes(app: FastifyInstance, deps: JobRouteDeps): Promise<void> {
  const { jobs, repository } = deps;
  // Encapsulated: the multipart parser applies to these routes only.
  await app.register(async (scope) => {
    await scope.register(multipart, { limits: { fileSize: deps.bodyLimitBytes, files: deps.maxInstances, fields: 10, fieldSize: 4096, parts: deps.maxInstances + 10 } });

    const get = async (id: string): Promise<JobRow> => {
      const row = JOB_ID.test(id) ? await jobs.store.get(id) : undefined;
      if (!row) throw new FerryError('job-not-found', { detail: `no job ${id.slice(0, 100)} (finished jobs are kept jobs.retentionSeconds)` });
      return row;
    };

    const submit = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
      // As for /predict: an unpinned job takes the client's canary arm, a deprecated version's 202 carries
      // Deprecation/Sunset/Link, a retired one is a 410 now. The job records and later runs this exact version.
      const v = deps.router ? routeRequest(deps.router, req, reply, req.params.model, req.params.version) : repository.resolve(req.params.model, req.params.version);
      req.ferryModel = v;
      const keyHeader = req.headers['idempotency-key'];
      let idempotencyKey = Array.isArray(keyHeader) ? keyHeader[0] : keyHeader;
      if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
        throw new FerryError('invalid-request', { detail: 'Idempotency-Key must be 1 to 255 visible ASCII characters', extra: { errors: [{ pointer: '/headers/idempotency-key', reason: 'expected 1-255 visible ASCII characters' }] } });
      }
      // The proxy's request id stands in for a missing key (jobs.proxyRequestIdempotency): its retry
      // of this POST on another replica then finds the first job. Namespaced apart from client keys.
      const proxyId = req.headers['x-request-id'];
      if (idempotencyKey === undefined && jobs.config.proxyRequestIdempotency && typeof proxyId === 'string' && IDEMPOTENCY_KEY.test(proxyId) && proxyId.length <= 200) {
        idempotencyKey = `proxy-request-id:${proxyId}`;
      }
      let timeoutMs = requestTimeout(req.headers['ferry-timeout-ms']);
      let callbackUrl: unknown;
      let instances: unknown;
      let base = '/instances';
      if (req.isMultipart()) {
        const form = await readMultipart(req, v, deps.bodyLimitBytes);
        instances = form.instances;
        callbackUrl = form.fields.callbackUrl;
        if (form.fields.timeoutMs !== undefined) timeoutMs = requestTimeout(form.fields.timeoutMs);
      } else if (Buffer.isBuffer(req.body)) {
        const image = v.manifest.inputs.find((f) => f.type === 'image');
        if (!image) throw new FerryError('unsupported-media-type', { detail: `${v.key} takes JSON: {"instances": [...]}` });
        instances = [{ [image.name]: req.body }];
        const q = (req.query ?? {}) as Record<string, unknown>;
        callbackUrl = typeof q.callbackUrl === 'string' ? q.callbackUrl : undefined;
      } else {
        const body = req.body;
        if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
          const { callbackUrl: cb, timeoutMs: t, ...rest } = body as Record<string, unknown>;
          callbackUrl = cb;
          if (t !== undefined) {
            if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 86_400_000) throw invalidInput([{ pointer: '/timeoutMs', reason: 'expected a whole number of milliseconds, 1 to 86400000' }]);
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
      });
      reply.header('location', `/v1/jobs/${row.id}`);
      reply.header('ferry-model-version', row.version);
      if (!created) reply.header('idempotent-replayed', 'true');
      return reply.code(202).send(jobs.store.toDocument(row));
    };
    const route = { config: { metricsRoute: 'v1_jobs' } };
    scope.post<{ Params: ModelParams }>('/v1/models/:model/jobs', route, submit);
    scope.post<{ Params: ModelParams }>('/v1/models/:model/versions/:version/jobs', route, submit);

    scope.get<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => jobs.store.toDocument(await get(req.params.id)));

    scope.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (req, reply) => {
      await get(req.params.id);
      const r = await jobs.cancel(req.params.id);
      // 200: cancelled now; 202: the active job was asked to stop and will end as cancelled (or finish first).
      return reply.code(r.immediate ? 200 : 202).send(jobs.store.toDocument(r.row));
    });

    scope.get<{ Querystring: ListQuery }>('/v1/jobs', async (req) => {
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
      if (model !== undefined && !repository.get(model)) throw new FerryError('model-not-found', { detail: `no model "${model.slice(0, 100)}"`, extra: { errors: [{ pointer: '/query/model', reason: 'unknown model' }] } });
      if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state)) throw badQuery('state', `expected one of ${JOB_STATES.join(', ')}`);
      if (limitRaw !== undefined && !/^\d{1,4}$/.test(limitRaw)) throw badQuery('limit', 'expected a whole number from 1 to 1000');
      const limit = limitRaw === undefined ? 50 : Number(limitRaw);
      if (limit < 1 || limit > 1000) throw badQuery('limit', 'expected a whole number from 1 to 1000');
      const rows = await jobs.store.list({
        limit: limit + 1,
        ...(model !== undefined && { model }),
        ...(state !== undefined && { state: state as JobState }),
        ...(cursorRaw !== undefined && { cursor: decodeCursor(cursorRaw) }),
      });
      const page = rows.slice(0, limit);
      // Lists leave results out (they can be large): GET the job for its result.
      return { jobs: page.map((r) => ({ ...jobs.store.toDocument(r), result: undefined })), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!) : null };
    });

    scope.get<{ Params: { id: string } }>('/v1/jobs/:id/events', async (req, reply) => {
      const id = req.params.id;
      await get(id);
      reply.hijack();
      const res = reply.raw;
      // Headers already set on the reply (CORS from the allow-list) go out with the hijacked stream.
      res.writeHead(200, { ...(reply.getHeaders() as Record<string, string | string[] | number>), 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': req.id, 'x-accel-buffering': 'no' });
      let lastSeq = -1;
      let lastState: string | undefined;
      let ended = false;
      const write = (event: string, seq: number, data: unknown) => { res.write(`id: ${seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`); };
      let untrack: () => void = () => undefined;
      const end = () => {
        if (ended) return;
        ended = true;
        untrack();
        unsubscribe();
        clearInterval(poll);
        clearInterval(keepAlive);
        res.end();
      };
      // Events may arrive from this process, from Redis pub/sub and from polling: `seq` keeps them in order, once.
      const onEvent = async (e: JobEvent) => {
        if (ended || e.seq <= lastSeq) return;
        lastSeq = e.seq;
        const kind = e.state !== lastState ? e.state : 'progress';
        lastState = e.state;
        if (isTerminal(e.state)) {
          const row = await jobs.store.get(id).catch(() => undefined);
          if (ended) return;
          write(kind, e.seq, row ? jobs.store.toDocument(row) : e);
          end();
        } else {
          write(kind, e.seq, { id, state: e.state, progress: e.progress });
        }
      };
      const fromRow = (row: JobRow | undefined): void => {
        if (!row) { end(); return; }
        void onEvent({ id, seq: Number(row.seq), state: row.state as JobState, progress: Number(row.progress) });
      };
      const unsubscribe = jobs.events.subscribe(id, (e) => { void onEvent(e); });
      const poll = setInterval(() => { jobs.store.get(id).then(fromRow, () => undefined); }, 1000);
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      res.on('close', end);
      // On shutdown the stream ends after the grace (the client reconnects with Last-Event-ID elsewhere).
      if (deps.lifecycle) untrack = deps.lifecycle.trackStream(end);
      fromRow(await jobs.store.get(id));
    });
  });
}

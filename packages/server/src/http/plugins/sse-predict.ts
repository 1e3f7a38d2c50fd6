// `Accept: text/event-stream` on POST /v1/models/{model}/predict: the rows of a multi-row request
// run as separate predictions (so the dynamic batcher can still group them) and each is sent as an
// SSE `row` event the moment it finishes — in finishing order, with its index — then one `done`.
// The whole request is validated first, so a bad field is still a 400 problem+json before any event.
// A reader that stops reading pauses the submission of further rows (at most `window` rows are
// computed ahead of the socket), and one blocked for streaming.maxBlockedMs is disconnected.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerDeps } from '../deps.js';
import type { ModelVersion } from '../../serving/repository/index.js';
import { FerryError, toProblem } from '../../errors.js';
import { asFerryError } from '../problem.js';
import { openEventStream } from '../sse.js';

/** Whether the client asked for an event stream rather than one JSON document. */
export function wantsEventStream(req: FastifyRequest): boolean {
  return wantsEventStreamHeader(req.headers.accept);
}

/** Whether an Accept header asks for an event stream. */
export function wantsEventStreamHeader(accept: string | undefined): boolean {
  return typeof accept === 'string' && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept);
}

export interface SsePredictOptions {
  base: string;
  timeoutMs?: number;
}

export async function streamPredict(
  deps: Pick<ServerDeps, 'service' | 'config' | 'lifecycle'>,
  req: FastifyRequest,
  reply: FastifyReply,
  v: ModelVersion,
  instances: unknown,
  opts: SsePredictOptions,
): Promise<void> {
  const lv = deps.service.usable(v);
  // Throws the same 400 (naming the field) a JSON request gets, before the stream opens.
  const rows = deps.service.checkInstances(v, instances, opts.base);
  // The batch size in force (written in the contract or measured at warm-up).
  const window = Math.max(4, 2 * (lv.batching?.maxBatchSize ?? v.manifest.batching?.maxBatchSize ?? 1));
  // Rollout and CORS headers set on the reply go out with the stream (http/sse.ts).
  const stream = openEventStream(req, reply, { 'ferry-model-version': v.version });
  const raw = stream.raw;
  let gone = false;
  raw.on('close', () => {
    gone = true;
  });
  const write = (event: string, data: unknown, id?: number): void => {
    if (!gone) stream.event(event, data, id);
  };
  const limitMs = deps.config.streaming.maxBlockedMs;
  /** Resolves when the socket can take more, false if the reader went away or stayed blocked too long. */
  const drained = (): Promise<boolean> =>
    new Promise((resolve) => {
      if (gone) return resolve(false);
      if (!raw.writableNeedDrain) return resolve(true);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        raw.off('drain', onDrain);
        raw.off('close', onClose);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => {
        req.log.warn({ model: v.key, limitMs }, 'event-stream reader blocked too long; disconnecting');
        raw.destroy();
        done(false);
      }, limitMs);
      raw.on('drain', onDrain);
      raw.on('close', onClose);
    });

  // Shutdown: after lifecycle.streamGraceMs no further rows start; the rows running finish, and a
  // final `shutdown` event says why and how far the stream got (the client resubmits the rest).
  let stopped: string | undefined;
  const untrack =
    deps.lifecycle?.trackStream((reason) => {
      stopped = reason;
    }) ?? (() => undefined);
  let next = 0;
  let errors = 0;
  let version = v.version;
  const inFlight = new Set<Promise<void>>();
  const runRow = async (i: number): Promise<void> => {
    try {
      const r = await deps.service.predict(v, [rows[i]], opts.base, {
        requestId: req.id,
        ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }),
      });
      version = r.version.version;
      write(
        'row',
        {
          index: i,
          version: r.version.version,
          prediction: r.predictions[0],
          ...(r.fallback && { fallback: r.fallback }),
        },
        i,
      );
    } catch (e) {
      errors++;
      const fe = asFerryError(e, deps.config.server.bodyLimitBytes);
      write('error', { index: i, ...toProblem(fe instanceof FerryError ? fe : new FerryError('internal')) }, i);
    }
  };
  while (next < rows.length && !gone && stopped === undefined) {
    if (!(await drained())) break;
    while (inFlight.size < window && next < rows.length && stopped === undefined) {
      const p = runRow(next++).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if (inFlight.size > 0) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  untrack();
  if (gone) return;
  if (stopped !== undefined && next < rows.length) {
    write('shutdown', { model: v.name, version, reason: stopped, rows: rows.length, started: next, errors });
    raw.end();
    return;
  }
  write('done', { model: v.name, version, rows: rows.length, errors });
  raw.end();
}

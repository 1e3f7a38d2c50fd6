// The predict lane: `POST /v1/models/:model[/versions/:version]/predict` with a JSON body, answered
// straight from Node's `request` event. It runs the route's own steps (access check, body limits and
// parser, routing and rollout headers, instancesFromBody, ModelService.predict, the same answer and
// problem+json errors, metrics, in-flight count, drain) but none of Fastify's per-request lifecycle:
// no Request/Reply objects, no hook chain, no promise per hook, no child logger. At tens of thousands
// of predictions a second that lifecycle, not the prediction, was most of the HTTP thread's work
// (docs/benchmarks.md, issue 20).
//
// The lane takes a request only when nothing it leaves out applies; anything else goes to Fastify
// untouched (the lane decides before it reads a byte of the body): another method, path, content
// type or a query string, `Accept: text/event-stream`, a body without Content-Length or past the
// limit, a request the access check refuses (Fastify answers and counts the refusal), and whole
// features the lane does not implement (CORS, rate limits, tracing, debug-level request logs), for
// which buildApp does not install it at all. The equivalence is tested request by request against
// the route (predict-lane.test.ts).
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import proxyAddr from '@fastify/proxy-addr';
import type { Logger } from 'pino';
import type { KeyRing, Principal } from '../auth/keys.js';
import { authorize } from '../auth/authorize.js';
import { accessFor } from '../auth/scope-table.js';
import { logRequestError } from '../errors.js';
import type { Lifecycle } from '../lifecycle/index.js';
import { instancesFromBody, type ModelService } from '../serving/index.js';
import type { ModelVersion } from '../serving/repository/index.js';
import type { InFlight } from './lifecycle-hooks.js';
import { asFerryError, problemResponse } from './problem.js';
import type { RecordRequest } from './request-metrics.js';
import { routeRequest, type RoutedRequest } from './route-request.js';
import { credentialsOf } from './plugins/auth.js';
import { predictAnswerText, predictHeaders, requestTimeout } from './plugins/v1.js';
import { wantsEventStreamHeader } from './plugins/sse-predict.js';

/** Takes the request and answers it (true), or leaves it untouched for Fastify (false). */
export type PredictLane = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface PredictLaneOptions {
  service: Pick<ModelService, 'route' | 'predict' | 'predictBody' | 'recall' | 'remember'>;
  ring: KeyRing;
  bodyLimit: number;
  /** Ferry's JSON body parser (http/json-depth.ts jsonBodyParser): the nesting limit, then secure-json-parse. */
  parseJson: (text: string) => unknown;
  recordRequest: RecordRequest;
  /** Counts the requests the lane takes (ferry_http_predict_lane_requests_total). */
  taken?: { inc(): void };
  inFlight?: InFlight | undefined;
  lifecycle?: Lifecycle | undefined;
  /** Trusted proxy hops (auth.trustProxyHops), for the client address a canary split may ask for. */
  trustProxyHops: number;
  log: Logger | false;
}

// The router's parameters are at most 200 characters (routerOptions.maxParamLength in app.ts).
const PREDICT_PATH = /^\/v1\/models\/([^/]{1,200})(?:\/versions\/([^/]{1,200}))?\/predict$/;
const JSON_TYPE = 'application/json; charset=utf-8';
const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';

type Trust = (address: string, hop: number) => boolean;

/**
 * What routing reads of a lane request (exported for its test). The address is read by a getter on
 * the class: an object literal with `get ip()` closing over the request kept every request alive
 * through young-generation collections, as an accessor defined per object did (route-request.ts,
 * RequestClient).
 */
export class LaneRequest implements RoutedRequest {
  readonly headers: IncomingHttpHeaders;
  readonly ferryPrincipal: Principal | undefined;
  readonly #req: IncomingMessage;
  readonly #trust: Trust;
  constructor(req: IncomingMessage, principal: Principal | undefined, trust: Trust) {
    this.headers = req.headers;
    this.ferryPrincipal = principal;
    this.#req = req;
    this.#trust = trust;
  }
  get ip(): string {
    return proxyAddr(this.#req, this.#trust);
  }
}

const ignore = (): void => undefined;

/** A JSON media type as Fastify's parser for `application/json` takes it (parameters allowed). */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  if (contentType === 'application/json') return true;
  const semi = contentType.indexOf(';');
  return semi !== -1 && contentType.slice(0, semi).trim().toLowerCase() === 'application/json';
}

// eslint-disable-next-line max-lines-per-function -- the lane is one closure over its options, like a plugin
export function createPredictLane(opts: PredictLaneOptions): PredictLane {
  const { service, ring, bodyLimit, parseJson, recordRequest, inFlight, lifecycle, log } = opts;
  const trust: Trust = (_address, hop) => hop < opts.trustProxyHops;
  // Request lines only at debug level and below, which Fastify writes (QuietRequestLog): the lane steps aside.
  const quiet = () => log === false || !log.isLevelEnabled('debug');
  // Shared by every response ('close' is emitted once): no closure or once-wrapper per request.
  function leaveOnClose(this: ServerResponse): void {
    inFlight?.leave(this.req);
  }

  const send = (
    res: ServerResponse,
    status: number,
    type: string,
    body: string,
    headers: Record<string, string>,
    id: string,
  ): void => {
    headers['content-type'] = type;
    headers['content-length'] = String(Buffer.byteLength(body));
    headers['x-request-id'] = id;
    if (lifecycle?.draining) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
  };

  const serve = async (
    req: IncomingMessage,
    res: ServerResponse,
    bytes: Buffer,
    id: string,
    principal: Principal | undefined,
    model: string,
    version: string | undefined,
    t0: number,
  ): Promise<void> => {
    const headers: Record<string, string> = {};
    const sink = {
      header: (name: string, value: string) => {
        headers[name] = value;
      },
    };
    let served: ModelVersion | undefined;
    let status = 200;
    try {
      const routed = new LaneRequest(req, principal, trust);
      // The route's order of refusals: the body's JSON (Fastify parses it before the handler), the
      // routing, the body's shape, then Ferry-Timeout-Ms.
      try {
        served = routeRequest(service, routed, sink, model, version);
      } catch (e) {
        parseJson(bytes.toString('utf8'));
        throw e;
      }
      // The same body answered before (a caching model): its bytes parsed and had this shape then.
      const recalled = service.recall(served, bytes, id);
      if (recalled.answer) {
        requestTimeout(req.headers['ferry-timeout-ms']);
        served = recalled.answer.version;
        predictHeaders(sink, { version: served, predictions: [], cache: 'hit' });
        send(res, 200, JSON_TYPE, recalled.answer.payload, headers, id);
      } else {
        // A plain tensor body is read straight into the model's tensor (serving/predict/tensor-body.ts);
        // such a body parses and has the right shape, so the timeout header is the next refusal either way.
        let timeoutMs: number | undefined;
        let badTimeout: unknown;
        try {
          timeoutMs = requestTimeout(req.headers['ferry-timeout-ms']);
        } catch (e) {
          badTimeout = e;
        }
        const opts = {
          requestId: id,
          shadowSampled: recalled.shadowSampled,
          ...(timeoutMs !== undefined && { timeoutMs }),
        };
        const read = badTimeout === undefined ? service.predictBody(served, bytes, opts) : undefined;
        let r;
        if (read) r = await read;
        else {
          const { instances, base } = instancesFromBody(parseJson(bytes.toString('utf8')));
          if (badTimeout !== undefined) throw badTimeout;
          r = await service.predict(served, instances, base, opts);
        }
        predictHeaders(sink, r);
        const payload = predictAnswerText(r);
        service.remember(served, recalled, r, payload);
        send(res, 200, JSON_TYPE, payload, headers, id);
      }
    } catch (e) {
      const fe = asFerryError(e, bodyLimit);
      if (log) {
        logRequestError(log.child({ reqId: id, ...(principal && { apiKey: principal.id }) }), fe, e);
      }
      const p = problemResponse(fe, req.url!, id, principal);
      status = p.status;
      send(res, p.status, PROBLEM_TYPE, JSON.stringify(p.body), { ...headers, ...p.headers }, id);
    }
    recordRequest('v1_predict', served?.name ?? '', served?.version ?? '', status, (performance.now() - t0) / 1000);
  };

  return (req, res) => {
    if (req.method !== 'POST') return false;
    const url = req.url!;
    const m = PREDICT_PATH.exec(url);
    if (!m || url.includes('%')) return false;
    const h = req.headers;
    if (!isJson(h['content-type']) || h['transfer-encoding'] !== undefined || wantsEventStreamHeader(h.accept))
      return false;
    const length = Number(h['content-length']);
    if (!(length > 0 && length <= bodyLimit)) return false;
    if (!quiet()) return false;
    let principal: Principal | undefined;
    try {
      principal = authorize(ring, accessFor('POST', url), credentialsOf(h), 'POST', url);
    } catch {
      return false;
    }

    // The lane owns the request from here.
    const t0 = performance.now();
    opts.taken?.inc();
    const given = h['x-request-id'];
    const id = typeof given === 'string' ? given : randomUUID();
    if (inFlight) {
      inFlight.enter(req);
      // After the answer, or when the client leaves before it: counted once either way.
      res.on('close', leaveOnClose);
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      serve(req, res, bytes, id, principal, m[1]!, m[2], t0).catch((e: unknown) => {
        // Only writing the answer itself can fail here (every other failure is answered as a problem).
        if (log) log.error({ err: e, reqId: id }, 'predict lane: the answer could not be written');
        res.destroy();
      });
    });
    // A connection reset mid-body: nothing to answer; the socket is gone and 'close' counts it out.
    req.on('error', ignore);
    return true;
  };
}

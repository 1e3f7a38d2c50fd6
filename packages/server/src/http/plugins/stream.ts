// GET /v1/models/{model}/stream (and /versions/{version}/stream): upgrades to a WebSocket for model
// versions whose contract declares a streaming mode. What can be judged before the upgrade (unknown
// model, no streaming mode, bad query) is an HTTP problem+json 4xx; what happens after it (session
// limits, idle, slow reader, bad audio) is a close code and reason, which a browser can read.
import { randomUUID } from 'node:crypto';
import { type StreamingService } from '../../streaming/streaming-service.js';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import websocket from '@fastify/websocket';
import { FerryError, invalidInput } from '../../errors.js';
import { routeRequest } from '../route-request.js';
import type { FieldIssue } from '@ferry/core';
import type { ServerDeps } from '../deps.js';
import type { ModelVersion } from '../../serving/repository/index.js';
import { ModelParams, ModelVersionParams, problem, route } from '../schemas.js';
import { AudioSession } from '../../streaming/audio-session.js';
import { CLOSE } from '../../streaming/close-codes.js';
import type { SampleFormat } from '../../streaming/pcm-framer.js';
import { type StreamSpec } from '../../streaming/stream-spec.js';
import type { VadParams } from '../../streaming/vad-segmenter.js';

interface StreamParams {
  model: string;
  version?: string;
}
type StreamQuery = Record<string, string | undefined>;

export interface StreamOptions extends Pick<ServerDeps, 'service' | 'lifecycle'> {
  readonly streaming: StreamingService;
}

interface Opened {
  version: ModelVersion;
  spec: StreamSpec;
  format: SampleFormat;
  probabilityIntervalMs: number;
  vad: VadParams;
}

/** Headers the rollout sets that the 101 Switching Protocols answer repeats. */
const ROLLOUT_HEADERS = ['ferry-model-version', 'ferry-rollout', 'deprecation', 'sunset', 'link'] as const;
const VAD_KEYS = ['startThreshold', 'endThreshold', 'minSpeechMs', 'minSilenceMs', 'speechPadMs'] as const;
const QUERY_KEYS = new Set(['format', 'sampleRate', 'probabilityIntervalMs', 'clientId', ...VAD_KEYS]);

/** Reads the session's options from the query string, naming each bad parameter. */
function parseQuery(q: StreamQuery, spec: StreamSpec, minProbMs: number): Omit<Opened, 'version' | 'spec'> {
  const issues: FieldIssue[] = [];
  for (const k of Object.keys(q))
    if (!QUERY_KEYS.has(k))
      issues.push({
        pointer: `/query/${k.slice(0, 60)}`,
        reason: `unknown parameter; expected one of ${[...QUERY_KEYS].join(', ')}`,
      });
  const format = (q.format ?? 'pcm16') as SampleFormat;
  if (format !== 'pcm16' && format !== 'f32')
    issues.push({
      pointer: '/query/format',
      reason: 'expected pcm16 (16-bit little-endian) or f32 (float32 little-endian)',
    });
  const num = (k: string, lo: number, hi: number, int: boolean): number | undefined => {
    const raw = q[k];
    if (raw === undefined) return undefined;
    const n = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
    if (!(n >= lo && n <= hi) || (int && !Number.isInteger(n))) {
      issues.push({
        pointer: `/query/${k}`,
        reason: `expected ${int ? 'a whole number' : 'a number'} in [${lo}, ${hi}], got "${raw.slice(0, 40)}"`,
      });
      return undefined;
    }
    return n;
  };
  const sr = num('sampleRate', 1, 1_000_000, true);
  if (sr !== undefined && sr !== spec.sampleRate)
    issues.push({
      pointer: '/query/sampleRate',
      reason: `this model streams ${spec.sampleRate} Hz mono audio; resample on the client`,
    });
  const probabilityIntervalMs = num('probabilityIntervalMs', 0, 3_600_000, true) ?? 0;
  if (probabilityIntervalMs > 0 && probabilityIntervalMs < minProbMs)
    issues.push({
      pointer: '/query/probabilityIntervalMs',
      reason: `at least ${minProbMs} ms (streaming.minProbabilityIntervalMs), or 0 for none`,
    });
  const vad: VadParams = { ...spec.vad };
  for (const k of VAD_KEYS) {
    const threshold = k.endsWith('Threshold');
    const v = num(k, 0, threshold ? 1 : 60_000, !threshold);
    if (v !== undefined) vad[k] = v;
  }
  if (vad.endThreshold > vad.startThreshold)
    issues.push({ pointer: '/query/endThreshold', reason: `must not exceed startThreshold (${vad.startThreshold})` });
  if (issues.length) throw invalidInput(issues);
  return { format, probabilityIntervalMs, vad };
}

const streamSchema = (params: Record<string, unknown>) =>
  route(
    'streaming',
    'WebSocket: stream audio to a model with a streaming mode (101 Switching Protocols); see docs/streaming.md',
    {
      params,
      querystring: Type.Object({
        format: Type.Optional(Type.Union([Type.Literal('pcm16'), Type.Literal('f32')])),
        sampleRate: Type.Optional(Type.Integer()),
        probabilityIntervalMs: Type.Optional(Type.Integer({ minimum: 0 })),
        clientId: Type.Optional(Type.String()),
        ...Object.fromEntries(VAD_KEYS.map((k) => [k, Type.Optional(Type.Number({ minimum: 0 }))])),
      }),
      response: {
        101: { description: 'Switching Protocols: the session runs over the WebSocket', type: 'null' },
        400: problem('Bad query parameter, or the version declares no streaming mode (`not-streamable`)'),
        404: problem('Unknown model or version'),
        426: problem('A plain GET without `Upgrade: websocket`'),
      },
    },
  );

/** GET …/stream: WebSocket sessions over the shared streaming service. */
// eslint-disable-next-line max-lines-per-function -- one plugin, one place for its routes
export const streamPlugin: FastifyPluginAsync<StreamOptions> = async (app, deps) => {
  const service = deps.streaming;
  const { metrics, config: cfg } = service;
  const batcherFor = (v: ModelVersion, spec: StreamSpec) => service.batcherOf(v, spec);

  // eslint-disable-next-line max-lines-per-function -- one plugin, one place for its routes
  await app.register(async (scope) => {
    await scope.register(websocket, {
      options: {
        maxPayload: cfg.maxMessageBytes,
        // Browsers fail a handshake that offered subprotocols and got none back: answer `ferry.v1`
        // (or another offered one), never the `ferry.bearer.<key>` entry that carries an API key.
        handleProtocols: (offered: Set<string>) =>
          offered.has('ferry.v1') ? 'ferry.v1' : ([...offered].find((p) => !p.startsWith('ferry.bearer.')) ?? false),
      },
      // On shutdown every session hears why (1001) instead of a bare close without a code. While the
      // lifecycle drains, sessions first get its stream grace (it closes them with its reason).
      preClose(done) {
        const lc = deps.lifecycle;
        const until = Date.now() + (lc?.draining ? lc.options.streamGraceMs + 250 : 0);
        const finish = () => {
          for (const s of service.sessions) s.close(CLOSE.goingAway, 'server is shutting down');
          for (const client of this.websocketServer.clients) client.close(CLOSE.goingAway, 'server is shutting down');
          done();
        };
        const wait = () => {
          if (service.sessions.size === 0 || Date.now() >= until) finish();
          else setTimeout(wait, 50);
        };
        wait();
      },
    });
    const opened = new WeakMap<FastifyRequest, Opened>();
    // Rollout headers for the 101 answer: the upgrade is written by ws, not by the reply, so they are
    // kept per raw request and added in ws's 'headers' event.
    const upgradeHeaders = new WeakMap<object, string[]>();
    scope.websocketServer.on('headers', (headers: string[], raw: object) => {
      const extra = upgradeHeaders.get(raw);
      if (extra) headers.push(...extra);
    });
    // Runs before the upgrade: errors here are ordinary HTTP problem responses.
    const prepare = async (
      req: FastifyRequest<{ Params: StreamParams; Querystring: StreamQuery }>,
      reply: FastifyReply,
    ) => {
      // Canary arm (unpinned), deprecation headers, 410 version-retired before the upgrade (docs/rollout.md).
      // Browsers cannot set Ferry-Client-Id on a WebSocket: `?clientId=` stands in for it (not a secret).
      const clientId = req.query?.clientId;
      const client = clientId !== undefined ? String(clientId) : undefined;
      const v = routeRequest(deps.service, req, reply, req.params.model, req.params.version, client);
      req.ferryModel = v;
      reply.header('ferry-model-version', v.version);
      upgradeHeaders.set(
        req.raw,
        ROLLOUT_HEADERS.flatMap((h) => (reply.hasHeader(h) ? [`${h}: ${String(reply.getHeader(h))}`] : [])),
      );
      const spec = service.specOf(v);
      if (!spec)
        throw new FerryError('not-streamable', {
          detail: `${v.key} declares no streaming mode (the \`streaming\` block of its ferry.yaml); use POST /v1/models/${v.name}/predict`,
        });
      deps.service.usable(v);
      opened.set(req, { version: v, spec, ...parseQuery(req.query ?? {}, spec, cfg.minProbabilityIntervalMs) });
    };
    const handler = (socket: import('ws').WebSocket, req: FastifyRequest) => {
      const o = opened.get(req)!;
      const v = o.version;
      const labels = { model: v.name, version: v.version };
      const slot = service.limits.acquire(v.key);
      if (!slot.ok) {
        socket.close(CLOSE.tryAgainLater, slot.reason.slice(0, 123));
        metrics.closed.inc({ ...labels, code: String(CLOSE.tryAgainLater) });
        return;
      }
      metrics.sessions.inc(labels);
      // Shutdown: the session gets lifecycle.streamGraceMs to end by itself, then 1001 with the reason.
      let untrack = (): void => undefined;
      const session = new AudioSession(
        socket,
        o.spec,
        batcherFor(v, o.spec),
        {
          id: randomUUID(),
          model: v.name,
          version: v.version,
          format: o.format,
          probabilityIntervalMs: o.probabilityIntervalMs,
          vad: o.vad,
          idleTimeoutMs: cfg.idleTimeoutMs,
          maxPendingAudioMs: cfg.maxPendingAudioMs,
          maxBufferedBytes: cfg.maxBufferedBytes,
          maxBlockedMs: cfg.maxBlockedMs,
        },
        (s, code) => {
          service.sessions.delete(s);
          untrack();
          slot.release();
          metrics.sessions.dec(labels);
          metrics.closed.inc({ ...labels, code: String(code) });
          req.log.debug({ model: v.key, code, stats: s.stats }, 'stream session closed');
        },
      );
      service.sessions.add(session);
      if (deps.lifecycle) untrack = deps.lifecycle.trackStream((reason) => session.close(CLOSE.goingAway, reason));
    };
    // A plain GET whose parameters check (prepare ran) is told what it lacks, as a problem document
    // instead of the plugin's bare 404: usually a proxy that drops the Upgrade header.
    const plainGet = async (req: FastifyRequest) => {
      throw new FerryError('websocket-required', {
        detail: `${req.url.split('?')[0]} is a WebSocket endpoint: send the GET with \`Connection: Upgrade\` and \`Upgrade: websocket\` (and let any proxy pass them; docs/streaming.md)`,
        headers: { upgrade: 'websocket' },
      });
    };
    const urls = [
      ['/v1/models/:model/stream', ModelParams],
      ['/v1/models/:model/versions/:version/stream', ModelVersionParams],
    ] as const;
    for (const [url, params] of urls) {
      scope.route<{ Params: StreamParams; Querystring: StreamQuery }>({
        method: 'GET',
        url,
        schema: streamSchema(params),
        preValidation: prepare,
        handler: plainGet,
        wsHandler: handler as never,
      });
    }
  });
};

// The handlers of `inference.GRPCInferenceService`: each RPC authorises like its REST twin (the same
// scope-table row), then makes the calls the REST plugin makes: route (canary arm, deprecation, 410
// after sunset), the shared Open Inference Protocol checks, and ModelService.runTensors (batching,
// breaker, deadline, shadow copies). Nothing about a model is decided here.
import { Metadata, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { FerryError, invalidInput } from '../errors.js';
import { accessFor } from '../auth/scope-table.js';
import { authorize } from '../auth/authorize.js';
import type { Principal } from '../auth/keys.js';
import { feedsFor, ioMetadata } from '../serving/predict/open-inference.js';
import type { Routed } from '../serving/predict/routing.js';
import type { ModelVersion } from '../serving/repository/index.js';
import type { GrpcDeps } from './deps.js';
import { toServiceError } from './status.js';
import { endServerSpan, runInContext, startServerSpan, withSpan } from '../telemetry/index.js';
import { requestFromGrpc, responseOutputs, wantsRawOutputs, type GrpcInferRequest } from './tensors.js';

/** Protocol extensions, as REST's GET /v2 lists them (the binary extension is raw_*_contents here). */
const EXTENSIONS = ['model_repository'];

const first = (md: Metadata, key: string): string | undefined => {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : undefined;
};

/** The REST route whose scope-table row an RPC shares: same keys, same scopes, same model limits. */
const path = (name: string, version: string, tail: string): string =>
  `/v2/models/${encodeURIComponent(name)}${version ? `/versions/${encodeURIComponent(version)}` : ''}${tail}`;

/** The milliseconds left before the call's deadline (undefined: no deadline, or a ferry-timeout-ms entry). */
function deadlineMs(call: ServerUnaryCall<unknown, unknown>): number | undefined {
  const header = first(call.metadata, 'ferry-timeout-ms');
  if (header !== undefined) {
    const n = Number(header);
    if (!Number.isInteger(n) || n < 1 || n > 3_600_000)
      throw new FerryError('invalid-request', { detail: 'ferry-timeout-ms must be an integer of 1 to 3600000' });
    return n;
  }
  const d = call.getDeadline();
  const at = d instanceof Date ? d.getTime() : d;
  if (!Number.isFinite(at)) return undefined;
  return Math.max(1, Math.floor(at - Date.now()));
}

/** ferry-rollout, deprecation, sunset and link as response metadata (REST sends them as headers). */
function routedMetadata(r: Routed): Metadata {
  const md = new Metadata();
  md.set('ferry-model-version', r.version.version);
  if (r.arm) md.set('ferry-rollout', r.arm);
  if (r.deprecation) {
    md.set('deprecation', r.deprecation.deprecation);
    if (r.deprecation.sunset) md.set('sunset', r.deprecation.sunset);
    md.set('link', r.deprecation.link);
  }
  return md;
}

const modelAttributes = (v: ModelVersion | undefined) =>
  v ? { 'ferry.model': v.name, 'ferry.model_version': v.version } : {};

type Handler<Req, Res> = (call: ServerUnaryCall<Req, Res>, principal: Principal | undefined) => Promise<Res>;

// eslint-disable-next-line max-lines-per-function -- one service, one place for its RPCs
export function inferenceService(deps: GrpcDeps, log: Logger): UntypedServiceImplementation {
  const { service, repository } = deps;

  /** Authorises, runs, answers; every failure becomes a status and the server goes on. */
  const unary =
    <Req, Res>(
      rpcName: string,
      access: (req: Req) => [method: string, url: string],
      run: Handler<Req, Res>,
      metricsRoute?: string,
    ) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      const t0 = performance.now();
      // The caller's traceparent metadata entry continues its trace (telemetry/; nothing when tracing is off).
      const traced = startServerSpan(`inference.GRPCInferenceService/${rpcName}`, call.metadata.getMap(), {
        'rpc.system': 'grpc',
        'rpc.service': 'inference.GRPCInferenceService',
        'rpc.method': rpcName,
      });
      let model: ModelVersion | undefined;
      const count = (code: number) => {
        if (!metricsRoute) return;
        const labels = { route: metricsRoute, model: model?.name ?? '', version: model?.version ?? '' };
        deps.metrics.requests.inc({ ...labels, status: String(code) });
        deps.metrics.requestDuration.observe(labels, (performance.now() - t0) / 1000);
      };
      runInContext(traced?.context, async () => {
        const [method, url] = access(call.request);
        const principal = authorize(
          deps.keyRing,
          accessFor(method, url),
          first(call.metadata, 'authorization'),
          method,
          url,
        );
        const res = await run(call, principal);
        model = (call as { ferryModel?: ModelVersion }).ferryModel;
        return res;
      }).then(
        (res) => {
          count(200);
          endServerSpan(traced?.span, { 'rpc.grpc.status_code': 0, ...modelAttributes(model) });
          callback(null, res);
        },
        (e: unknown) => {
          model = (call as { ferryModel?: ModelVersion }).ferryModel;
          if (!(e instanceof FerryError)) log.error({ err: e }, 'gRPC handler failed');
          const err = toServiceError(e);
          count(e instanceof FerryError ? e.status : 500);
          endServerSpan(
            traced?.span,
            { 'rpc.grpc.status_code': err.code, ...modelAttributes(model) },
            !(e instanceof FerryError) || e.status >= 500,
          );
          callback(err);
        },
      );
    };

  const resolve = (name: string, version: string): ModelVersion => {
    if (!name) throw invalidInput([{ pointer: '/name', reason: 'a model name is required' }]);
    return repository.resolve(name, version || undefined);
  };

  return {
    ServerLive: unary(
      'ServerLive',
      () => ['GET', '/v2/health/live'],
      async () => ({ live: true }),
    ),
    ServerReady: unary(
      'ServerReady',
      () => ['GET', '/v2/health/ready'],
      async () => ({ ready: service.ready() && !deps.lifecycle.draining }),
    ),
    ServerMetadata: unary(
      'ServerMetadata',
      () => ['GET', '/v2'],
      async () => ({ name: 'ferry', version: deps.serverVersion, extensions: EXTENSIONS }),
    ),
    ModelReady: unary<{ name: string; version: string }, { ready: boolean }>(
      'ModelReady',
      (r) => ['GET', path(r.name, r.version, '/ready')],
      async (call) => {
        const v = resolve(call.request.name, call.request.version);
        return { ready: service.get(v).state === 'ready' };
      },
    ),
    ModelMetadata: unary<{ name: string; version: string }, unknown>(
      'ModelMetadata',
      (r) => ['GET', path(r.name, r.version, '')],
      async (call) => {
        const v = resolve(call.request.name, call.request.version);
        const entry = repository.get(v.name)!;
        return {
          name: v.name,
          versions: call.request.version ? [v.version] : entry.versions.map((x) => x.version),
          platform: 'onnxruntime_onnx',
          ...ioMetadata(service.get(v)),
        };
      },
    ),
    ModelInfer: unary<GrpcInferRequest, unknown>(
      'ModelInfer',
      (r) => ['POST', path(r.model_name, r.model_version, '/infer')],
      async (call, principal) => {
        const req = call.request;
        if (!req.model_name) throw invalidInput([{ pointer: '/model_name', reason: 'a model name is required' }]);
        const clientIdHeader = first(call.metadata, 'ferry-client-id');
        const routed = service.route(
          { model: req.model_name, ...(req.model_version && { version: req.model_version }) },
          {
            ...(clientIdHeader !== undefined && { clientIdHeader }),
            ...(principal && { principalId: principal.id }),
            ip: call.getPeer(),
          },
        );
        const v = routed.version;
        (call as { ferryModel?: ModelVersion }).ferryModel = v;
        const request = requestFromGrpc(req, service.limits.maxTensorElements);
        const lv = service.get(v);
        // A non-tensor output (a ZipMap's sequence of maps) cannot be fetched, so it is not offered.
        const known = new Set(lv.outputs.filter((o) => o.dtype !== 'non-tensor').map((o) => o.name));
        const requested = request.outputs?.map((o) => o.name);
        requested?.forEach((n, i) => {
          if (!known.has(n))
            throw invalidInput([
              {
                pointer: `/outputs/${i}/name`,
                reason: `unknown output "${n.slice(0, 100)}"; the model has ${[...known].join(', ')}`,
              },
            ]);
        });
        const feeds = withSpan('ferry.validate', () => feedsFor(service, v, lv, request));
        const timeoutMs = deadlineMs(call);
        const { outputs } = await service.runTensors(v, feeds, requested, timeoutMs === undefined ? {} : { timeoutMs });
        call.sendMetadata(routedMetadata(routed));
        return {
          model_name: v.name,
          model_version: v.version,
          id: req.id,
          ...responseOutputs(outputs, wantsRawOutputs(req, outputs)),
        };
      },
      'grpc_model_infer',
    ),
    RepositoryModelLoad: unary<{ model_name: string }, unknown>(
      'RepositoryModelLoad',
      (r) => ['POST', `/v2/repository/models/${encodeURIComponent(r.model_name)}/load`],
      async (call) => {
        const name = call.request.model_name;
        const r = await deps.manager.loadModel(name);
        if (r.failed.length)
          throw new FerryError('load-failed', { detail: r.failed.map((f) => `${f.model}: ${f.error}`).join('; ') });
        return { model_name: name, isLoaded: repository.get(name) !== undefined };
      },
    ),
    RepositoryModelUnload: unary<{ model_name: string }, unknown>(
      'RepositoryModelUnload',
      (r) => ['POST', `/v2/repository/models/${encodeURIComponent(r.model_name)}/unload`],
      async (call) => {
        const name = call.request.model_name;
        await deps.manager.unloadModel(name);
        return { model_name: name, isUnloaded: repository.get(name) === undefined };
      },
    ),
  };
}

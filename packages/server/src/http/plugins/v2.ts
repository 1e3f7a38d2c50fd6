// The Open Inference Protocol (KServe v2) REST API: server and model metadata, health, and
// `infer` with JSON tensors. Types are strict: a shape of "1" or 1.5 is a 400, never coerced.
// Inputs may be the ONNX model's own tensors, or, for models with a feature contract, one
// column per feature (shape [n] or [n, 1]) that goes through the contract's preprocessing
// (serving/predict/open-inference.ts, shared with the gRPC service).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Ajv } from 'ajv';
import type { FieldIssue } from '@ferry/core';
import { invalidInput } from '../../errors.js';
import { withSpan } from '../../telemetry/index.js';
import { routeRequest } from '../route-request.js';
import type { ModelVersion } from '../../serving/repository/index.js';
import {
  encodeV2Output,
  feedsFor,
  ioMetadata,
  V2_TO_DTYPE,
  type V2Request,
} from '../../serving/predict/open-inference.js';
import type { ServerDeps } from '../deps.js';
import { modelVisible } from './auth.js';
import { requestTimeout } from './v1.js';
import { json, ModelParams, ModelVersionParams, PREDICT_ERRORS, ref, route } from '../schemas.js';
import {
  BINARY_HEADER,
  decodeBinaryTensor,
  encodeBinaryTensor,
  splitBinaryBody,
} from '../../serving/predict/v2-binary.js';

const ajv = new Ajv({ allErrors: true, strict: false, coerceTypes: false });
const validateEnvelope = ajv.compile({
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 256 },
    parameters: { type: 'object' },
    inputs: {
      type: 'array',
      minItems: 1,
      maxItems: 64,
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 256 },
          shape: { type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: 16 },
          datatype: { type: 'string', enum: Object.keys(V2_TO_DTYPE) },
          parameters: { type: 'object' },
          data: { type: 'array' },
        },
        required: ['name', 'shape', 'datatype'],
        additionalProperties: false,
      },
    },
    outputs: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        properties: { name: { type: 'string', minLength: 1, maxLength: 256 }, parameters: { type: 'object' } },
        required: ['name'],
        additionalProperties: false,
      },
    },
  },
  required: ['inputs'],
  additionalProperties: false,
});

function envelopeIssues(errors: NonNullable<typeof validateEnvelope.errors>): FieldIssue[] {
  return errors.slice(0, 20).map((e) => {
    if (e.keyword === 'additionalProperties') {
      const k = (e.params as { additionalProperty: string }).additionalProperty;
      return { pointer: `${e.instancePath}/${k}`, reason: `unknown member "${k.slice(0, 100)}"` };
    }
    if (e.keyword === 'required')
      return {
        pointer: `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}`,
        reason: 'required',
      };
    if (e.keyword === 'enum')
      return { pointer: e.instancePath, reason: `unknown datatype; one of ${Object.keys(V2_TO_DTYPE).join(', ')}` };
    return { pointer: e.instancePath, reason: e.message ?? e.keyword };
  });
}

/** Cuts the bytes after a binary request's JSON header into the inputs that declare binary_data_size. */
function attachBinaryInputs(request: V2Request, rest: Buffer): void {
  let offset = 0;
  request.inputs.forEach((input, i) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) return;
    const pointer = `/inputs/${i}/parameters/binary_data_size`;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0)
      throw invalidInput([{ pointer, reason: 'must be a non-negative integer' }]);
    if (input.data !== undefined)
      throw invalidInput([{ pointer: `/inputs/${i}/data`, reason: 'an input sent as binary data has no "data"' }]);
    if (offset + size > rest.length)
      throw invalidInput([
        { pointer, reason: `${size} bytes declared but only ${rest.length - offset} remain in the body` },
      ]);
    const dtype = V2_TO_DTYPE[input.datatype]!;
    input.binary = decodeBinaryTensor(rest.subarray(offset, offset + size), dtype, input.shape, `/inputs/${i}`);
    offset += size;
  });
  if (offset !== rest.length)
    throw invalidInput([
      {
        pointer: '/inputs',
        reason: `${rest.length - offset} bytes of binary data are not claimed by any input's binary_data_size`,
      },
    ]);
}

export interface V2Options extends Pick<ServerDeps, 'repository' | 'service'> {
  /** Reported by GET /v2. */
  serverVersion: string;
  /**
   * Whether the repository extension's load/unload routes answer: they are management routes, which
   * exist only when API keys are configured (keys can appear on a config reload, so it is asked each time).
   */
  repositoryControl: () => boolean;
}

const oip = (summary: string, parts: Parameters<typeof route>[2] = {}) =>
  route('open-inference-protocol', `Open Inference Protocol: ${summary}`, parts);
const metadataSchema = (params: typeof ModelParams | typeof ModelVersionParams, what: string) =>
  oip(what, {
    params,
    response: { 200: json('Inputs and outputs with datatypes and shapes'), 404: PREDICT_ERRORS[404] },
  });
const readySchema = (params: typeof ModelParams | typeof ModelVersionParams) =>
  oip('model readiness', { params, response: { 200: json('{"ready": true}'), 404: PREDICT_ERRORS[404] } });
const inferSchema = (params: typeof ModelParams | typeof ModelVersionParams) =>
  oip("infer with JSON tensors (the model's tensors, or one column per contract feature)", {
    params,
    body: {
      content: {
        'application/json': { schema: ref('V2InferRequest') },
        'application/octet-stream': {
          schema: {
            type: 'string',
            format: 'binary',
            description: 'binary tensor extension: JSON header (Inference-Header-Content-Length) then tensor bytes',
          },
        },
      },
    },
    response: {
      200: {
        description: 'Output tensors',
        content: {
          'application/json': { schema: ref('V2InferResponse') },
          'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
        },
      },
      ...PREDICT_ERRORS,
    },
  });

/** The Open Inference Protocol (KServe v2) REST API. */
// eslint-disable-next-line max-lines-per-function -- one plugin, one place for its routes
export const v2Plugin: FastifyPluginAsync<V2Options> = async (app, deps) => {
  const { serverVersion } = deps;
  type P = { model: string; version?: string };
  const resolve = (req: FastifyRequest<{ Params: P }>): ModelVersion => {
    const v = deps.repository.resolve(req.params.model, req.params.version);
    req.ferryModel = v;
    return v;
  };

  app.get(
    '/v2',
    { schema: oip('server metadata', { response: { 200: json('name, version, extensions') } }) },
    async () => ({
      name: 'ferry',
      version: serverVersion,
      extensions: [
        'binary_tensor_data',
        'model_repository_index',
        ...(deps.repositoryControl() ? ['model_repository'] : []),
      ],
    }),
  );
  app.get('/v2/health/live', { schema: oip('liveness', { response: { 200: json('{"live": true}') } }) }, async () => ({
    live: true,
  }));
  app.get(
    '/v2/health/ready',
    { schema: oip('readiness', { response: { 200: json('{"ready": true}'), 503: json('{"ready": false}') } }) },
    async (_req, reply) => {
      const ready = deps.service.ready();
      return reply.code(ready ? 200 : 503).send({ ready });
    },
  );
  app.post(
    '/v2/repository/index',
    {
      schema: oip('repository index: every version and its state', {
        response: { 200: json('Versions and states', { type: 'array', items: { type: 'object' } }) },
      }),
    },
    async (req) => [
      ...deps.repository
        .allVersions()
        .filter((v) => modelVisible(req, v.name))
        .map((v) => ({
          name: v.name,
          version: v.version,
          state: deps.service.get(v).state === 'ready' ? 'READY' : deps.service.get(v).state.toUpperCase(),
          ...(deps.service.get(v).error !== undefined && { reason: deps.service.get(v).error }),
        })),
      // Models in the folder that are not served (unloaded, or not loaded yet), as Triton lists them.
      ...deps.repository
        .diskModels()
        .filter((n) => !deps.repository.get(n) && modelVisible(req, n))
        .map((name) => ({ name, state: 'UNAVAILABLE', reason: 'not loaded' })),
    ],
  );

  const metadata = async (req: FastifyRequest<{ Params: P }>) => {
    const v = resolve(req);
    const lv = deps.service.get(v);
    const entry = deps.repository.get(v.name)!;
    return {
      name: v.name,
      versions: req.params.version === undefined ? entry.versions.map((x) => x.version) : [v.version],
      platform: 'onnxruntime_onnx',
      ...ioMetadata(lv),
    };
  };
  app.get<{ Params: P }>('/v2/models/:model', { schema: metadataSchema(ModelParams, 'model metadata') }, metadata);
  app.get<{ Params: P }>(
    '/v2/models/:model/versions/:version',
    { schema: metadataSchema(ModelVersionParams, 'model version metadata') },
    metadata,
  );

  const ready = async (req: FastifyRequest<{ Params: P }>, reply: FastifyReply) => {
    const v = resolve(req);
    const isReady = deps.service.get(v).state === 'ready';
    return reply.code(isReady ? 200 : 503).send({ name: v.name, version: v.version, ready: isReady });
  };
  app.get<{ Params: P }>('/v2/models/:model/ready', { schema: readySchema(ModelParams) }, ready);
  app.get<{ Params: P }>(
    '/v2/models/:model/versions/:version/ready',
    { schema: readySchema(ModelVersionParams) },
    ready,
  );

  const infer = async (req: FastifyRequest<{ Params: P }>, reply: FastifyReply) => {
    // Canary routing, deprecation and shadow copies apply to v2 inference as to v1 (the predict path's).
    const v = routeRequest(deps.service, req, reply, req.params.model, req.params.version);
    req.ferryModel = v;
    const binaryRequest = Buffer.isBuffer(req.body);
    let body: unknown = req.body;
    let rest: Buffer = Buffer.alloc(0);
    if (binaryRequest) ({ json: body, rest } = splitBinaryBody(req.body as Buffer, req.headers[BINARY_HEADER]));
    if (!validateEnvelope(body)) throw invalidInput(envelopeIssues(validateEnvelope.errors ?? []));
    const request = body as V2Request;
    attachBinaryInputs(request, rest);
    const lv = deps.service.get(v);
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
    const feeds = withSpan('ferry.validate', () => feedsFor(deps.service, v, lv, request));
    const timeoutMs = requestTimeout(req.headers['ferry-timeout-ms']);
    const { outputs } = await deps.service.runTensors(
      v,
      feeds,
      requested,
      timeoutMs === undefined ? {} : { timeoutMs },
    );
    reply.header('ferry-model-version', v.version);
    const header = {
      model_name: v.name,
      model_version: v.version,
      ...(request.id !== undefined && { id: request.id }),
      outputs: Object.entries(outputs).map(([name, t]) => encodeV2Output(name, t)) as Array<Record<string, unknown>>,
    };
    const wantsBinary = (name: string): boolean => {
      const o = request.outputs?.find((x) => x.name === name);
      if (o?.parameters && typeof o.parameters.binary_data === 'boolean') return o.parameters.binary_data;
      return request.parameters?.binary_data_output === true;
    };
    const chunks: Buffer[] = [];
    for (const out of header.outputs) {
      const name = out.name as string;
      if (!wantsBinary(name)) continue;
      const bytes = encodeBinaryTensor(outputs[name]!);
      delete out.data;
      out.parameters = { binary_data_size: bytes.length };
      chunks.push(bytes);
    }
    if (!chunks.length) return header;
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    reply.header(BINARY_HEADER, String(json.length)).type('application/octet-stream');
    return reply.send(Buffer.concat([json, ...chunks]));
  };
  const config = { metricsRoute: 'v2_infer' };
  app.post<{ Params: P }>('/v2/models/:model/infer', { config, schema: inferSchema(ModelParams) }, infer);
  app.post<{ Params: P }>(
    '/v2/models/:model/versions/:version/infer',
    { config, schema: inferSchema(ModelVersionParams) },
    infer,
  );
};

// The Open Inference Protocol (KServe v2) REST API: server and model metadata, health, and
// `infer` with JSON tensors. Types are strict: a shape of "1" or 1.5 is a 400, never coerced.
// Inputs may be the ONNX model's own tensors, or, for models with a feature contract, one
// column per feature (shape [n] or [n, 1]) that goes through the contract's preprocessing.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Ajv } from 'ajv';
import {
  allocate,
  elementCount,
  setElement,
  toNumbers,
  type FieldIssue,
  type TensorDtype,
  type TensorValue,
} from '@ferry/core';
import { FerryError, invalidInput } from '../../errors.js';
import { routeRequest } from '../route-request.js';
import type { ModelVersion } from '../../serving/repository/index.js';
import type { LoadedVersion } from '../../serving/index.js';
import type { ServerDeps } from '../deps.js';
import { modelVisible } from './auth.js';
import { requestTimeout } from './v1.js';
import { json, ModelParams, ModelVersionParams, PREDICT_ERRORS, ref, route } from '../schemas.js';
import { float32ToFloat16Bits, float16BitsToFloat32 } from '@ferry/core';
import { BINARY_HEADER, decodeBinaryTensor, encodeBinaryTensor, splitBinaryBody } from '../v2-binary.js';

export const V2_TO_DTYPE: Record<string, TensorDtype> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};
export const DTYPE_TO_V2: Record<string, string> = Object.fromEntries(
  Object.entries(V2_TO_DTYPE).map(([k, v]) => [v, k]),
);

const INT_RANGES: Partial<Record<TensorDtype, [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

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

interface V2Input {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Record<string, unknown>;
  data?: unknown[];
  binary?: TensorValue;
}
interface V2Request {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: V2Input[];
  outputs?: Array<{ name: string; parameters?: Record<string, unknown> }>;
}

/** Flattens `data` (flat or nested, row-major) into a tensor of `dtype`, checking every element's type. */
export function decodeV2Data(input: V2Input, dtype: TensorDtype, pointer: string, maxElements: number): TensorValue {
  const count = elementCount(input.shape);
  if (count > maxElements) {
    throw new FerryError('tensor-too-large', {
      detail: `input "${input.name}" has ${count} elements; the limit (limits.maxTensorElements) is ${maxElements}`,
      extra: { limit: maxElements },
    });
  }
  if (input.binary) return input.binary;
  if (!Array.isArray(input.data))
    throw invalidInput([
      {
        pointer: `${pointer}/data`,
        reason: 'required (or send the tensor as binary data with parameters.binary_data_size)',
      },
    ]);
  const out = allocate(dtype, count);
  const issues: FieldIssue[] = [];
  let n = 0;
  const range = INT_RANGES[dtype];
  const put = (v: unknown, p: string): void => {
    if (issues.length >= 10) return;
    if (n >= count) {
      n++;
      return;
    }
    if (dtype === 'bool') {
      if (typeof v !== 'boolean') {
        issues.push({ pointer: p, reason: `expected a boolean for BOOL, got ${JSON.stringify(v)}` });
        return;
      }
      setElement(out, n++, v);
    } else if (dtype === 'string') {
      if (typeof v !== 'string') {
        issues.push({ pointer: p, reason: `expected a string for BYTES, got ${JSON.stringify(v)}` });
        return;
      }
      setElement(out, n++, v);
    } else {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        issues.push({ pointer: p, reason: `expected a finite number, got ${JSON.stringify(v)?.slice(0, 40)}` });
        return;
      }
      if (range) {
        if (!Number.isInteger(v)) {
          issues.push({ pointer: p, reason: `expected an integer for ${input.datatype}, got ${v}` });
          return;
        }
        if (v < range[0] || v > range[1]) {
          issues.push({ pointer: p, reason: `${v} is out of range for ${input.datatype}` });
          return;
        }
      }
      if (dtype === 'float16') (out as Uint16Array)[n++] = float32ToFloat16Bits(v);
      else setElement(out, n++, v);
    }
  };
  // The protocol takes `data` flat (row-major) or nested exactly as `shape` says; a ragged or
  // partly nested list would otherwise be read by element count alone and shift values across rows.
  const rank = input.shape.length;
  const nested = input.data.some((x) => Array.isArray(x));
  const walk = (v: unknown, p: string, depth: number): void => {
    if (issues.length >= 10) return;
    if (depth < rank) {
      if (!Array.isArray(v)) {
        issues.push({
          pointer: p,
          reason: `input "${input.name}": expected a list of ${input.shape[depth]} at depth ${depth} (shape [${input.shape.join(', ')}]), got ${JSON.stringify(v)?.slice(0, 40)}`,
        });
        return;
      }
      if (v.length !== input.shape[depth]) {
        issues.push({
          pointer: p,
          reason: `input "${input.name}": shape [${input.shape.join(', ')}] needs ${input.shape[depth]} items at depth ${depth}, got ${v.length}; send data flat or nested exactly as the shape`,
        });
        return;
      }
      v.forEach((x, i) => walk(x, `${p}/${i}`, depth + 1));
    } else if (Array.isArray(v)) {
      issues.push({
        pointer: p,
        reason: `input "${input.name}": nested deeper than its shape [${input.shape.join(', ')}]`,
      });
    } else put(v, p);
  };
  if (nested) walk(input.data, `${pointer}/data`, 0);
  else input.data.forEach((x, i) => put(x, `${pointer}/data/${i}`));
  if (issues.length) throw invalidInput(issues);
  if (n !== count) {
    throw invalidInput([
      {
        pointer: `${pointer}/data`,
        reason: `shape [${input.shape.join(', ')}] needs ${count} elements, data has ${n}`,
      },
    ]);
  }
  return { dtype, dims: [...input.shape], data: out };
}

export function encodeV2Output(
  name: string,
  t: TensorValue,
): { name: string; datatype: string; shape: number[]; data: unknown[] } {
  const data =
    t.dtype === 'float16'
      ? Array.from(t.data as Uint16Array, float16BitsToFloat32)
      : t.dtype === 'bool'
        ? Array.from(t.data as Uint8Array, (b) => b !== 0)
        : toNumbers(t.data);
  return { name, datatype: DTYPE_TO_V2[t.dtype] ?? t.dtype.toUpperCase(), shape: t.dims, data };
}

function ioMetadata(lv: LoadedVersion) {
  const conv = (io: { name: string; dtype: string; shape: number[] }) => ({
    name: io.name,
    datatype: DTYPE_TO_V2[io.dtype === 'float' ? 'float32' : io.dtype] ?? io.dtype.toUpperCase(),
    shape: io.shape,
  });
  return { inputs: lv.inputs.map(conv), outputs: lv.outputs.map(conv) };
}

/** Builds the model's feeds from a v2 request, raw tensors or one column per contract feature. */
// eslint-disable-next-line max-lines-per-function -- one plugin, one place for its routes
function feedsFor(
  deps: Pick<ServerDeps, 'service'>,
  v: ModelVersion,
  lv: LoadedVersion,
  req: V2Request,
): Record<string, TensorValue> {
  const modelInputs = new Map(lv.inputs.map((i) => [i.name, i]));
  const features = new Map(v.manifest.inputs.map((f) => [f.name, f]));
  const names = req.inputs.map((i) => i.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup)
    throw invalidInput([
      { pointer: `/inputs/${names.lastIndexOf(dup)}/name`, reason: `input "${dup}" is given twice` },
    ]);
  const raw = names.every((n) => modelInputs.has(n));
  const max = deps.service.limits.maxTensorElements;
  if (raw) {
    const feeds: Record<string, TensorValue> = {};
    req.inputs.forEach((input, i) => {
      const meta = modelInputs.get(input.name)!;
      const want = meta.dtype === 'float' ? 'float32' : meta.dtype;
      const dtype = V2_TO_DTYPE[input.datatype]!;
      if (dtype !== want)
        throw invalidInput([
          {
            pointer: `/inputs/${i}/datatype`,
            reason: `input "${input.name}" takes ${DTYPE_TO_V2[want] ?? want}, got ${input.datatype}`,
          },
        ]);
      if (meta.shape.length && input.shape.length !== meta.shape.length) {
        throw invalidInput([
          {
            pointer: `/inputs/${i}/shape`,
            reason: `input "${input.name}" has rank ${meta.shape.length} ([${meta.shape.join(', ')}]), got [${input.shape.join(', ')}]`,
          },
        ]);
      }
      meta.shape.forEach((d, k) => {
        if (d >= 0 && input.shape[k] !== d)
          throw invalidInput([
            {
              pointer: `/inputs/${i}/shape/${k}`,
              reason: `dimension ${k} of "${input.name}" must be ${d}, got ${input.shape[k]}`,
            },
          ]);
      });
      feeds[input.name] = decodeV2Data(input, dtype, `/inputs/${i}`, max);
    });
    const missing = [...modelInputs.keys()].filter((n) => !feeds[n]);
    if (missing.length)
      throw invalidInput(missing.map((n) => ({ pointer: '/inputs', reason: `missing input "${n}"` })));
    return feeds;
  }
  if (names.every((n) => features.has(n))) {
    // Feature columns: each a tensor of shape [n] or [n, 1] holding one value per instance.
    const columns: Record<string, unknown[]> = {};
    req.inputs.forEach((input, i) => {
      const f = features.get(input.name)!;
      if (f.type === 'tensor')
        throw invalidInput([
          { pointer: `/inputs/${i}/name`, reason: `"${input.name}" is a tensor input; send it with the model's dtype` },
        ]);
      const want =
        f.type === 'number'
          ? ['FP32', 'FP64']
          : f.type === 'integer'
            ? ['INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64']
            : f.type === 'boolean'
              ? ['BOOL']
              : ['BYTES'];
      if (!want.includes(input.datatype))
        throw invalidInput([
          {
            pointer: `/inputs/${i}/datatype`,
            reason: `feature "${input.name}" (${f.type}) takes ${want.join(' or ')}, got ${input.datatype}`,
          },
        ]);
      if (!(input.shape.length === 1 || (input.shape.length === 2 && input.shape[1] === 1))) {
        throw invalidInput([
          {
            pointer: `/inputs/${i}/shape`,
            reason: `feature columns have shape [n] or [n, 1], got [${input.shape.join(', ')}]`,
          },
        ]);
      }
      const t = decodeV2Data(input, V2_TO_DTYPE[input.datatype]!, `/inputs/${i}`, max);
      columns[input.name] =
        input.datatype === 'BOOL' ? Array.from(t.data as Uint8Array, (b) => b !== 0) : toNumbers(t.data);
    });
    const counts = new Set(Object.values(columns).map((c) => c.length));
    if (counts.size > 1)
      throw invalidInput([{ pointer: '/inputs', reason: 'every feature column must have the same number of rows' }]);
    const n = [...counts][0] ?? 0;
    const instances = Array.from({ length: n }, (_, r) =>
      Object.fromEntries(Object.entries(columns).map(([k, c]) => [k, c[r]])),
    );
    return deps.service.encode(v, instances, '/inputs');
  }
  const unknown = names.find((n) => !modelInputs.has(n) && !features.has(n)) ?? names[0]!;
  throw invalidInput([
    {
      pointer: `/inputs/${names.indexOf(unknown)}/name`,
      reason: `unknown input "${unknown.slice(0, 100)}"; the model's tensors are ${[...modelInputs.keys()].join(', ')}${v.manifest.preprocess ? `, its features ${[...features.keys()].join(', ')}` : ''} (do not mix the two)`,
    },
  ]);
}

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
    const feeds = feedsFor(deps, v, lv, request);
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

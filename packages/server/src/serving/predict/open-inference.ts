// The Open Inference Protocol's tensors, transport-free: datatype names, typed data checked element
// by element, and a request's inputs turned into the model's feeds (its own tensors, or one column per
// contract feature). The REST plugin (http/plugins/v2.ts) and the gRPC service (grpc/) both call it,
// so the two transports accept and refuse exactly the same requests.
import {
  allocate,
  elementCount,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  setElement,
  toNumbers,
  type FieldIssue,
  type TensorDtype,
  type TensorValue,
} from '@ferry/core';
import { FerryError, invalidInput } from '../../errors.js';
import type { ModelVersion } from '../repository/index.js';
import type { LoadedVersion } from '../loaded-version.js';

/** What building feeds needs from the model service: its tensor limit and the contract's encoder. */
export interface FeedEncoder {
  readonly limits: { readonly maxTensorElements: number };
  encode(v: ModelVersion, instances: unknown, base: string): Record<string, TensorValue>;
}

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

/** One input tensor of a request, whatever the transport carried it in. */
export interface V2Input {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Record<string, unknown>;
  data?: unknown[];
  binary?: TensorValue;
}
/** The parts of an infer request that decide the feeds. */
export interface V2Request {
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

/** The model's inputs and outputs with Open Inference Protocol datatypes. */
export function ioMetadata(lv: LoadedVersion) {
  const conv = (io: { name: string; dtype: string; shape: number[] }) => ({
    name: io.name,
    datatype: DTYPE_TO_V2[io.dtype === 'float' ? 'float32' : io.dtype] ?? io.dtype.toUpperCase(),
    shape: io.shape,
  });
  return { inputs: lv.inputs.map(conv), outputs: lv.outputs.map(conv) };
}

/** Builds the model's feeds from a v2 request, raw tensors or one column per contract feature. */
// eslint-disable-next-line max-lines-per-function -- the two request forms, each checked field by field
export function feedsFor(
  service: FeedEncoder,
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
  const max = service.limits.maxTensorElements;
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
    return service.encode(v, instances, '/inputs');
  }
  const unknown = names.find((n) => !modelInputs.has(n) && !features.has(n)) ?? names[0]!;
  throw invalidInput([
    {
      pointer: `/inputs/${names.indexOf(unknown)}/name`,
      reason: `unknown input "${unknown.slice(0, 100)}"; the model's tensors are ${[...modelInputs.keys()].join(', ')}${v.manifest.preprocess ? `, its features ${[...features.keys()].join(', ')}` : ''} (do not mix the two)`,
    },
  ]);
}

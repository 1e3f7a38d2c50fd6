// ModelInferRequest / ModelInferResponse messages to and from the Open Inference Protocol tensors the
// predict path takes (serving/predict/open-inference.ts). Input elements arrive either typed, in the
// `contents` field that matches the datatype, or as `raw_input_contents` (the bytes the REST binary
// extension uses); every field is checked here with the same pointers a REST error would name.
import type { FieldIssue, TensorValue } from '@ferry/core';
import { invalidInput } from '../errors.js';
import { encodeV2Output, V2_TO_DTYPE, type V2Input, type V2Request } from '../serving/predict/open-inference.js';
import { decodeBinaryTensor, encodeBinaryTensor } from '../serving/predict/v2-binary.js';

/** InferParameter as proto-loader decodes it (oneofs: true names the set field). */
export interface GrpcParameter {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param';
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
}
type Params = Record<string, GrpcParameter>;

/** InferTensorContents: one repeated field per family of datatypes. */
export interface GrpcContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: number[];
  uint_contents?: number[];
  uint64_contents?: number[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}

export interface GrpcInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Params;
  inputs: Array<{ name: string; datatype: string; shape: number[]; parameters: Params; contents: GrpcContents | null }>;
  outputs: Array<{ name: string; parameters: Params }>;
  raw_input_contents: Buffer[];
}

export interface GrpcOutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  contents?: GrpcContents;
}

/** The contents field that carries each datatype; FP16 has none (raw only). */
const CONTENTS_FIELD: Record<string, keyof GrpcContents | undefined> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
  FP16: undefined,
};
const FIELDS: Array<keyof GrpcContents> = [
  'bool_contents',
  'int_contents',
  'int64_contents',
  'uint_contents',
  'uint64_contents',
  'fp32_contents',
  'fp64_contents',
  'bytes_contents',
];

/** A parameter's value, whichever oneof member holds it. */
export function paramValue(p: GrpcParameter | undefined): boolean | number | string | undefined {
  if (!p?.parameter_choice) return undefined;
  return p[p.parameter_choice];
}

function envelopeIssues(req: GrpcInferRequest): FieldIssue[] {
  const issues: FieldIssue[] = [];
  if (req.id.length > 256) issues.push({ pointer: '/id', reason: 'longer than 256 characters' });
  if (req.inputs.length === 0) issues.push({ pointer: '/inputs', reason: 'at least one input is required' });
  if (req.inputs.length > 64) issues.push({ pointer: '/inputs', reason: 'at most 64 inputs' });
  if (req.outputs.length > 64) issues.push({ pointer: '/outputs', reason: 'at most 64 outputs' });
  req.inputs.slice(0, 64).forEach((input, i) => {
    const p = `/inputs/${i}`;
    if (!input.name || input.name.length > 256)
      issues.push({ pointer: `${p}/name`, reason: 'a name of 1 to 256 characters is required' });
    if (!(input.datatype in V2_TO_DTYPE))
      issues.push({
        pointer: `${p}/datatype`,
        reason: `unknown datatype "${input.datatype.slice(0, 40)}"; one of ${Object.keys(V2_TO_DTYPE).join(', ')}`,
      });
    if (input.shape.length > 16) issues.push({ pointer: `${p}/shape`, reason: 'at most 16 dimensions' });
    input.shape.forEach((d, k) => {
      if (!Number.isSafeInteger(d) || d < 0)
        issues.push({ pointer: `${p}/shape/${k}`, reason: `dimension ${d} is not a non-negative integer` });
    });
  });
  req.outputs.slice(0, 64).forEach((o, i) => {
    if (!o.name || o.name.length > 256)
      issues.push({ pointer: `/outputs/${i}/name`, reason: 'a name of 1 to 256 characters is required' });
  });
  return issues.slice(0, 20);
}

/** The typed elements of one input, from the one contents field its datatype allows. */
function typedData(input: GrpcInferRequest['inputs'][number], p: string): unknown[] {
  const want = CONTENTS_FIELD[input.datatype];
  const c = input.contents ?? {};
  const used = FIELDS.filter((f) => (c[f]?.length ?? 0) > 0);
  const wrong = used.find((f) => f !== want);
  if (wrong !== undefined)
    throw invalidInput([
      {
        pointer: `${p}/contents/${wrong}`,
        reason:
          want === undefined
            ? `${input.datatype} has no typed contents field; send it in raw_input_contents`
            : `${input.datatype} elements go in contents.${want}, not ${wrong}`,
      },
    ]);
  if (want === undefined)
    throw invalidInput([
      { pointer: `${p}/contents`, reason: `${input.datatype} can only be sent in raw_input_contents` },
    ]);
  const values = (c[want] ?? []) as unknown[];
  // BYTES elements are strings to the contract; bad UTF-8 is replaced, as the REST binary path does.
  return want === 'bytes_contents' ? (values as Buffer[]).map((b) => Buffer.from(b).toString('utf8')) : values;
}

/**
 * Checks a ModelInferRequest and turns it into the REST form of the same request (typed data or
 * decoded raw tensors), so both transports share one set of checks from here on.
 */
export function requestFromGrpc(req: GrpcInferRequest, maxTensorElements: number): V2Request {
  const issues = envelopeIssues(req);
  if (issues.length) throw invalidInput(issues);
  const raw = req.raw_input_contents;
  if (raw.length > 0) {
    if (raw.length !== req.inputs.length)
      throw invalidInput([
        {
          pointer: '/raw_input_contents',
          reason: `${raw.length} entries for ${req.inputs.length} inputs; send one per input, in input order`,
        },
      ]);
    const typed = req.inputs.findIndex((i) => i.contents && FIELDS.some((f) => (i.contents![f]?.length ?? 0) > 0));
    if (typed >= 0)
      throw invalidInput([
        { pointer: `/inputs/${typed}/contents`, reason: 'a request with raw_input_contents has no typed contents' },
      ]);
  }
  const inputs: V2Input[] = req.inputs.map((input, i) => {
    const p = `/inputs/${i}`;
    const shape = input.shape.map(Number);
    const base = { name: input.name, shape, datatype: input.datatype };
    if (raw.length === 0) return { ...base, data: typedData(input, p) };
    const count = shape.reduce((a, b) => a * b, 1);
    // Checked before decoding so a huge declared shape never allocates.
    if (count > maxTensorElements) return { ...base, data: [] };
    const binary: TensorValue = decodeBinaryTensor(
      raw[i]!,
      V2_TO_DTYPE[input.datatype]!,
      shape,
      `/raw_input_contents/${i}`,
    );
    return { ...base, binary };
  });
  return {
    ...(req.id && { id: req.id }),
    inputs,
    ...(req.outputs.length > 0 && { outputs: req.outputs.map((o) => ({ name: o.name })) }),
  };
}

/** Whether the response should carry raw_output_contents: asked for, answering raw with raw, or FP16. */
export function wantsRawOutputs(req: GrpcInferRequest, outputs: Record<string, TensorValue>): boolean {
  const asked = paramValue(req.parameters.binary_data_output);
  if (typeof asked === 'boolean') return asked || Object.values(outputs).some((t) => t.dtype === 'float16');
  return req.raw_input_contents.length > 0 || Object.values(outputs).some((t) => t.dtype === 'float16');
}

/** The response's output tensors, typed or raw (raw for all outputs or none, as the protocol requires). */
export function responseOutputs(
  outputs: Record<string, TensorValue>,
  raw: boolean,
): { outputs: GrpcOutputTensor[]; raw_output_contents: Buffer[] } {
  const tensors: GrpcOutputTensor[] = [];
  const bytes: Buffer[] = [];
  for (const [name, t] of Object.entries(outputs)) {
    const { datatype, shape, data } = encodeV2Output(name, t);
    if (raw) {
      tensors.push({ name, datatype, shape });
      bytes.push(encodeBinaryTensor(t));
      continue;
    }
    const field = CONTENTS_FIELD[datatype]!;
    const values = field === 'bytes_contents' ? (data as string[]).map((s) => Buffer.from(s, 'utf8')) : data;
    tensors.push({ name, datatype, shape, contents: { [field]: values } });
  }
  return { outputs: tensors, raw_output_contents: bytes };
}

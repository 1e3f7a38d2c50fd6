// A model version's streaming mode as the server runs it: the contract's `streaming` block checked
// against the contract's own inputs and outputs, with the server config's VAD overrides applied.
import { allocate, elementCount, setElement, type Manifest, type TensorFeature, type TensorValue } from '@ferry/core';
import { ManifestError } from '../serving/repository/manifest.js';
import type { ModelVersion } from '../serving/repository/index.js';
import type { StreamingConfig } from '../config/schemas/streaming.js';
import { VAD_DEFAULTS, type VadParams } from './vad-segmenter.js';

export interface StateSpec {
  input: string;
  output: string;
  batchAxis: number;
  /** Dims of one session's state (the batch axis is 1). */
  dims: number[];
  dtype: TensorFeature['dtype'];
}

export interface StreamSpec {
  kind: 'audio';
  sampleRate: number;
  frameSamples: number;
  input: string;
  output: string;
  state: StateSpec[];
  constants: Record<string, TensorValue>;
  maxBatchSize: number;
  maxQueueDelayUs: number;
  vad: VadParams;
}

function flatten(value: unknown, dims: number[], depth: number, out: unknown[]): void {
  if (Array.isArray(value)) {
    if (dims.length <= depth) dims.push(value.length);
    else if (dims[depth] !== value.length) throw new Error('ragged array');
    for (const v of value) flatten(v, dims, depth + 1, out);
  } else {
    if (dims.length !== depth) throw new Error('ragged array');
    out.push(value);
  }
}

/** A tensor from a nested array (or a scalar), typed by the contract's feature. */
function constantTensor(f: TensorFeature, value: unknown): TensorValue {
  const dims: number[] = [];
  const flat: unknown[] = [];
  flatten(value, dims, 0, flat);
  if (dims.length !== f.shape.length || dims.some((d, i) => f.shape[i] !== -1 && f.shape[i] !== d)) {
    throw new Error(`shape [${dims.join(', ')}] does not fit the declared [${f.shape.join(', ')}]`);
  }
  const data = allocate(f.dtype, flat.length);
  flat.forEach((v, i) => {
    if (typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'string')
      throw new Error(`element ${i} is not a number`);
    setElement(data, i, f.dtype === 'int64' || f.dtype === 'uint64' ? BigInt(v as number) : v);
  });
  return { dtype: f.dtype, dims, data };
}

/** The effective streaming mode of a version, or undefined when its contract declares none. */
export function streamSpecOf(v: ModelVersion, cfg: StreamingConfig): StreamSpec | undefined {
  const m: Manifest = v.manifest;
  const s = m.streaming;
  if (!s) return undefined;
  const file = `${v.dir}/ferry.yaml`;
  const tensors = new Map(m.inputs.filter((f): f is TensorFeature => f.type === 'tensor').map((f) => [f.name, f]));
  const outputs = new Set(m.outputs.map((o) => o.name));
  const input = tensors.get(s.input);
  if (!input || input.shape.length !== 2 || input.dtype !== 'float32') {
    throw new ManifestError(
      file,
      '/streaming/input',
      `"${s.input}" must be a float32 tensor input of shape [sessions, samples]`,
    );
  }
  if (input.shape[1] !== -1 && input.shape[1] !== s.frameSamples)
    throw new ManifestError(file, '/streaming/frameSamples', `the input takes ${input.shape[1]} samples per frame`);
  if (!outputs.has(s.output)) throw new ManifestError(file, '/streaming/output', `no output "${s.output}"`);
  const state = (s.state ?? []).map((b, i): StateSpec => {
    const f = tensors.get(b.input);
    if (!f || f.dtype === 'string' || f.dtype === 'bool')
      throw new ManifestError(file, `/streaming/state/${i}/input`, `"${b.input}" must be a numeric tensor input`);
    if (!outputs.has(b.output))
      throw new ManifestError(file, `/streaming/state/${i}/output`, `no output "${b.output}"`);
    const batchAxis = b.batchAxis ?? 0;
    if (batchAxis >= f.shape.length)
      throw new ManifestError(file, `/streaming/state/${i}/batchAxis`, `"${b.input}" has ${f.shape.length} axes`);
    const dims = f.shape.map((d, axis) => (axis === batchAxis ? 1 : d));
    if (dims.some((d) => d < 1))
      throw new ManifestError(
        file,
        `/inputs`,
        `state "${b.input}" needs fixed dims except its batch axis, got [${f.shape.join(', ')}]`,
      );
    return { input: b.input, output: b.output, batchAxis, dims, dtype: f.dtype };
  });
  const constants: Record<string, TensorValue> = {};
  for (const [name, value] of Object.entries(s.constants ?? {})) {
    const f = tensors.get(name);
    if (!f) throw new ManifestError(file, `/streaming/constants/${name}`, `no tensor input "${name}"`);
    try {
      constants[name] = constantTensor(f, value);
    } catch (e) {
      throw new ManifestError(file, `/streaming/constants/${name}`, (e as Error).message);
    }
  }
  const fed = new Set([s.input, ...state.map((x) => x.input), ...Object.keys(constants)]);
  const unfed = [...tensors.keys()].filter((n) => !fed.has(n));
  if (unfed.length || m.inputs.some((f) => f.type !== 'tensor')) {
    throw new ManifestError(
      file,
      '/streaming',
      `every input must be the frame, a state or a constant; not fed: ${unfed.join(', ') || 'feature inputs'}`,
    );
  }
  const vad: VadParams = { ...VAD_DEFAULTS, ...s.vad, ...cfg.vad, ...cfg.models[v.name]?.vad };
  if (vad.endThreshold > vad.startThreshold)
    throw new ManifestError(
      file,
      '/streaming/vad/endThreshold',
      `endThreshold ${vad.endThreshold} is above startThreshold ${vad.startThreshold}`,
    );
  return {
    kind: s.kind,
    sampleRate: s.sampleRate,
    frameSamples: s.frameSamples,
    input: s.input,
    output: s.output,
    state,
    constants,
    maxBatchSize: s.maxBatchSize ?? 1,
    maxQueueDelayUs: s.maxQueueDelayUs ?? 0,
    vad,
  };
}

/** Zeros for a new session's state. */
export function zeroState(spec: StreamSpec): TensorValue[] {
  return spec.state.map((st) => ({
    dtype: st.dtype,
    dims: [...st.dims],
    data: allocate(st.dtype, elementCount(st.dims)),
  }));
}

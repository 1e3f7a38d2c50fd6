// Running one ONNX Runtime session: Ferry tensors in, Ferry tensors out. Shared by the worker
// threads and by inline execution on the main thread (for models measured to be tiny).
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import type { TensorValue } from '@ferry/core';
import type { IoMeta } from './protocol.js';
import { toOrtOptions, type OrtSessionOptions } from './session-options.js';

export function createSession(modelPath: string, options: OrtSessionOptions): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(modelPath, toOrtOptions(options));
}

export function describeIo(list: readonly ort.InferenceSession.ValueMetadata[]): IoMeta[] {
  return list.map((m) =>
    m.isTensor
      ? { name: m.name, dtype: String(m.type), shape: m.shape.map((d) => (typeof d === 'number' ? d : -1)) }
      : { name: m.name, dtype: 'non-tensor', shape: [] },
  );
}

/**
 * The outputs a run may fetch: the tensor outputs. onnxruntime-node cannot return a non-tensor value (the
 * sequence of maps a scikit-learn ZipMap produces): asked for one, it throws outside the run's promise, which
 * kills the thread (and, on the main thread, the process). So a run fetches only these, named explicitly.
 */
export function tensorOutputs(session: ort.InferenceSession): readonly string[] {
  let names = TENSOR_OUTPUTS.get(session);
  if (!names) {
    names = session.outputMetadata.filter((m) => m.isTensor).map((m) => m.name);
    TENSOR_OUTPUTS.set(session, names);
  }
  return names;
}
const TENSOR_OUTPUTS = new WeakMap<ort.InferenceSession, string[]>();

/** Runs the session; output data are fresh arrays the caller owns (safe to transfer). */
export async function runSession(
  session: ort.InferenceSession,
  feeds: Record<string, TensorValue>,
  outputs?: string[],
): Promise<{ outputs: Record<string, TensorValue>; inferMs: number }> {
  const ortFeeds: Record<string, ort.Tensor> = {};
  // Ferry moves float16 as raw bits in a Uint16Array, which is what ONNX Runtime expects too.
  for (const [name, t] of Object.entries(feeds))
    ortFeeds[name] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as never, t.dims);
  const allowed = tensorOutputs(session);
  const fetches = outputs ?? [...allowed];
  const bad = fetches.find((n) => !allowed.includes(n));
  if (bad !== undefined) throw new Error(`output "${bad}" is not a tensor output of this model; it cannot be fetched`);
  if (fetches.length === 0) throw new Error('the model has no tensor output to fetch');
  // onnxruntime-node runs a session from a setImmediate: on the main thread the rest of the loop's
  // turn (other requests read and parsed) runs before it. An immediate queued just before it marks
  // when the run itself starts, so `inferMs` is the session's time, not the turn's.
  const t0 = performance.now();
  let started: number | undefined;
  const mark = setImmediate(() => {
    started = performance.now();
  });
  let result: ort.InferenceSession.ReturnType;
  try {
    result = await session.run(ortFeeds, fetches);
  } finally {
    clearImmediate(mark);
  }
  // Unmarked (a runtime that answered before the check phase): the whole call is the run.
  const inferMs = performance.now() - (started ?? t0);
  const out: Record<string, TensorValue> = {};
  for (const [name, t] of Object.entries(result)) {
    let data = t.data as TensorValue['data'];
    if (!Array.isArray(data)) {
      const buf = data.buffer as ArrayBuffer;
      // A view into a larger buffer cannot be transferred alone; copy it.
      if (data.byteOffset !== 0 || data.byteLength !== buf.byteLength) data = (data as Float32Array).slice();
    }
    out[name] = { dtype: t.type as TensorValue['dtype'], dims: [...t.dims], data };
    t.dispose();
  }
  return { outputs: out, inferMs };
}

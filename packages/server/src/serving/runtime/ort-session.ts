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
  const t0 = performance.now();
  const result = outputs ? await session.run(ortFeeds, outputs) : await session.run(ortFeeds);
  const inferMs = performance.now() - t0;
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

// A VadRunner over an onnxruntime-node session, for tests and measurements.
import * as ort from 'onnxruntime-node';
import type { TensorValue } from '@ferry/core';
import type { VadRunner } from './stream.js';

const toOrt = (t: TensorValue): ort.Tensor => new ort.Tensor(t.dtype, t.data as Float32Array, t.dims);

/** Opens the model with one intra-op thread (the setting the server's default config uses). */
export async function openVadSession(onnxPath: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(onnxPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
}

export function ortVadRunner(session: ort.InferenceSession): VadRunner {
  return async (feeds) => {
    const out = await session.run({
      input: toOrt(feeds.input),
      sr: toOrt(feeds.sr),
      h: toOrt(feeds.h),
      c: toOrt(feeds.c),
    });
    return {
      probability: (out.output!.data as Float32Array)[0]!,
      hn: out.hn!.data as Float32Array,
      cn: out.cn!.data as Float32Array,
    };
  };
}

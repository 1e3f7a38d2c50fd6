// Opens an OCR version folder outside the server: reads its ferry.yaml pipeline section, loads the
// detector and recogniser into ONNX Runtime sessions on this thread, builds the labels from the
// charset file and hands runners to @ferry/core's runOcr. For tests and measurements of the
// algorithm alone; the server does the same inside a worker.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parse } from 'yaml';
import {
  paddleOcrLabels,
  runOcr,
  type Manifest,
  type OcrLine,
  type OcrParams,
  type OcrRunners,
  type Pipeline,
  type RgbImage,
  type TensorValue,
} from '@ferry/core';

type NetworkSpec = Pipeline['detector'];

export interface OcrVersion {
  readonly manifest: Manifest;
  readonly params: OcrParams;
  readonly runners: OcrRunners;
  read(image: RgbImage): Promise<OcrLine[]>;
  dispose(): Promise<void>;
}

/** A runner over one session: float32 tensor in, its named output back as a TensorValue. */
export function sessionRunner(
  session: ort.InferenceSession,
  spec: NetworkSpec,
): (t: TensorValue) => Promise<TensorValue> {
  return async (t) => {
    const out = await session.run({ [spec.input]: new ort.Tensor('float32', t.data as Float32Array, t.dims) });
    const r = out[spec.output];
    if (!r) throw new Error(`${spec.model} has no output "${spec.output}"`);
    return { dtype: 'float32', dims: [...r.dims], data: r.data as Float32Array };
  };
}

export async function openOcrVersion(dir: string, options: { intraOpThreads?: number } = {}): Promise<OcrVersion> {
  const manifest = parse(readFileSync(join(dir, 'ferry.yaml'), 'utf8')) as Manifest;
  const p = manifest.pipeline;
  if (p?.kind !== 'ocr' || p.charset.format !== 'paddleocr') throw new Error(`${dir}: not an OCR pipeline`);
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: options.intraOpThreads ?? 2,
    interOpNumThreads: 1,
  };
  const [det, rec] = await Promise.all([
    ort.InferenceSession.create(join(dir, p.detector.model), sessionOptions),
    ort.InferenceSession.create(join(dir, p.recognizer.model), sessionOptions),
  ]);
  const labels = paddleOcrLabels(readFileSync(join(dir, p.charset.file), 'utf8'), {
    spaceChar: p.charset.spaceChar ?? true,
  });
  const params: OcrParams = { ...(p.params as Partial<OcrParams>), labels, blankIndex: p.charset.blankIndex ?? 0 };
  const runners: OcrRunners = { detect: sessionRunner(det, p.detector), recognize: sessionRunner(rec, p.recognizer) };
  return {
    manifest,
    params,
    runners,
    read: (image) => runOcr(image, runners, params),
    async dispose() {
      await Promise.all([det.release(), rec.release()]);
    },
  };
}

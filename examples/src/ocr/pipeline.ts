// Opens a staged OCR version folder the way the server will: reads ferry.draft.yaml, loads the
// detector and recogniser into ONNX Runtime sessions, builds the labels from the charset file and
// hands runners to @ferry/core's runOcr. Tests and measurements use it; the server's version will
// put the sessions in its worker pool instead.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parse } from 'yaml';
import { paddleOcrLabels, runOcr, type OcrLine, type OcrParams, type OcrRunners, type RgbImage, type TensorValue } from '@ferry/core';

interface NetworkSpec { model: string; input: string; output: string }

export interface OcrDraft {
  name: string;
  version: string;
  pipeline: {
    kind: 'ocr';
    detector: NetworkSpec;
    recognizer: NetworkSpec;
    charset: { file: string; format: 'paddleocr'; blankIndex: number; spaceChar: boolean };
    params: Omit<OcrParams, 'labels' | 'blankIndex'>;
  };
}

export interface OcrVersion {
  readonly draft: OcrDraft;
  readonly params: OcrParams;
  readonly runners: OcrRunners;
  read(image: RgbImage): Promise<OcrLine[]>;
  dispose(): Promise<void>;
}

/** A runner over one session: float32 tensor in, its named output back as a TensorValue. */
export function sessionRunner(session: ort.InferenceSession, spec: NetworkSpec): (t: TensorValue) => Promise<TensorValue> {
  return async (t) => {
    const out = await session.run({ [spec.input]: new ort.Tensor('float32', t.data as Float32Array, t.dims) });
    const r = out[spec.output];
    if (!r) throw new Error(`${spec.model} has no output "${spec.output}"`);
    return { dtype: 'float32', dims: [...r.dims], data: r.data as Float32Array };
  };
}

export async function openOcrVersion(dir: string, options: { intraOpThreads?: number } = {}): Promise<OcrVersion> {
  const draft = parse(readFileSync(join(dir, 'ferry.draft.yaml'), 'utf8')) as OcrDraft;
  const p = draft.pipeline;
  if (p?.kind !== 'ocr' || p.charset.format !== 'paddleocr') throw new Error(`${dir}: not an OCR pipeline draft`);
  const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: options.intraOpThreads ?? 2, interOpNumThreads: 1 };
  const [det, rec] = await Promise.all([
    ort.InferenceSession.create(join(dir, p.detector.model), sessionOptions),
    ort.InferenceSession.create(join(dir, p.recognizer.model), sessionOptions),
  ]);
  const labels = paddleOcrLabels(readFileSync(join(dir, p.charset.file), 'utf8'), { spaceChar: p.charset.spaceChar });
  const params: OcrParams = { ...p.params, labels, blankIndex: p.charset.blankIndex };
  const runners: OcrRunners = { detect: sessionRunner(det, p.detector), recognize: sessionRunner(rec, p.recognizer) };
  return {
    draft, params, runners,
    read: (image) => runOcr(image, runners, params),
    async dispose() {
      await Promise.all([det.release(), rec.release()]);
    },
  };
}

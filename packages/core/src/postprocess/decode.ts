// Turns a batch of output tensors into one prediction per instance, as the manifest's `postprocess` says.
import type { Manifest, ClassificationPost } from '../contract/schema.js';
import type { RowInfo } from '../preprocess/encoder.js';
import {
  embedding,
  tokenClassification,
  type EmbeddingPrediction,
  type TokenClassificationPrediction,
} from './transformer.js';
import { ContractError } from '../errors.js';
import { isBatchable } from '../contract/json-schema.js';
import { elementCount, nest, toNumbers, type TensorValue } from '../tensor.js';

export interface ClassificationPrediction {
  label: string;
  scores: Record<string, number>;
  topK?: Array<{ label: string; score: number }>;
}
export interface RegressionPrediction {
  value: number | number[];
}
export type RawPrediction = Record<string, unknown>;
export type Prediction =
  ClassificationPrediction | RegressionPrediction | RawPrediction | TokenClassificationPrediction | EmbeddingPrediction;

export interface Decoder {
  /** `info` carries each row's real sequence length (and token offsets) when the inputs were padded. */
  decode(outputs: Record<string, TensorValue>, rows: number, info?: readonly RowInfo[]): Prediction[];
  /**
   * The same predictions as JSON text, exactly `JSON.stringify(decode(outputs, rows))`, written without
   * the objects (unpadded inputs only). Only some decoders have it.
   */
  json?(outputs: Record<string, TensorValue>, rows: number): string;
}

export function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Splits an output of shape [rows, ...] into per-row flat slices. */
export function rowsOf(t: TensorValue, rows: number): Array<Array<number | string | boolean>> {
  const flat = toNumbers(t.data);
  const per = rows === 0 ? 0 : flat.length / rows;
  // A loop, not Array.from with a map function: this runs once a request on the HTTP thread.
  const out = new Array<Array<number | string | boolean>>(rows);
  for (let i = 0; i < rows; i++) out[i] = flat.slice(i * per, (i + 1) * per);
  return out;
}

/**
 * A label JSON.stringify would not write in place as an own key of `scores`: an array index moves to
 * the front, and `__proto__` is not an own key.
 */
const keyMoves = (label: string): boolean =>
  label === '__proto__' || (/^(?:0|[1-9]\d*)$/.test(label) && Number(label) < 2 ** 32 - 1);

/** A number as JSON.stringify writes it. */
const jsonNumber = (x: number): string => (Number.isFinite(x) ? String(x) : 'null');

function classification(p: ClassificationPost): Decoder {
  const activation = p.activation ?? 'none';
  const output = (outputs: Record<string, TensorValue>): TensorValue => {
    const t = outputs[p.output];
    if (!t) throw new ContractError('/postprocess/output', `model produced no output "${p.output}"`);
    return t;
  };
  /** One row's scores after the activation, and the index of the chosen label. */
  const score = (raw: ReadonlyArray<number | string | boolean>): { probs: number[]; best: number } => {
    let probs = raw.map(Number);
    if (probs.length === 1 && p.labels.length === 2) {
      const s = activation === 'sigmoid' ? sigmoid(probs[0]!) : probs[0]!;
      probs = [1 - s, s];
    } else if (activation === 'softmax') probs = softmax(probs);
    else if (activation === 'sigmoid') probs = probs.map(sigmoid);
    if (probs.length !== p.labels.length) {
      throw new ContractError(
        '/postprocess/labels',
        `output "${p.output}" has ${probs.length} scores per row but ${p.labels.length} labels are declared`,
      );
    }
    let best = 0;
    if (p.threshold !== undefined && probs.length === 2) best = probs[1]! >= p.threshold ? 1 : 0;
    else for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
    return { probs, best };
  };
  const decoder: Decoder = {
    decode(outputs, rows) {
      return rowsOf(output(outputs), rows).map((raw) => {
        const { probs, best } = score(raw);
        const scores: Record<string, number> = {};
        p.labels.forEach((l, i) => {
          scores[l] = probs[i]!;
        });
        const pred: ClassificationPrediction = { label: p.labels[best]!, scores };
        if (p.topK !== undefined) {
          pred.topK = p.labels
            .map((label, i) => ({ label, score: probs[i]! }))
            .sort((a, b) => b.score - a.score)
            .slice(0, p.topK);
        }
        return pred;
      });
    },
  };
  // Written straight from the scores: the same text as JSON.stringify(decode(…)) (decode.test.ts), for
  // the labels it can write in order; topK's ties keep sort's order, so it is left to JSON.stringify.
  if (p.topK === undefined && !p.labels.some(keyMoves)) {
    const labels = p.labels.map((l) => JSON.stringify(l));
    const keys = labels.map((l, i) => (i === 0 ? '{' : ',') + l + ':');
    decoder.json = (outputs, rows) => {
      let text = '[';
      const all = rowsOf(output(outputs), rows);
      for (let r = 0; r < all.length; r++) {
        const { probs, best } = score(all[r]!);
        text += (r === 0 ? '{"label":' : ',{"label":') + labels[best] + ',"scores":';
        for (let i = 0; i < probs.length; i++) text += keys[i] + jsonNumber(probs[i]!);
        text += '}}';
      }
      return text + ']';
    };
  }
  return decoder;
}

export function compileDecoder(manifest: Manifest): Decoder {
  const post = manifest.postprocess ?? { kind: 'raw' as const };
  const outNames = new Set(manifest.outputs.map((o) => o.name));
  if (post.kind !== 'raw' && !outNames.has(post.output)) {
    throw new ContractError(
      '/postprocess/output',
      `"${post.output}" is not one of the declared outputs (${[...outNames].join(', ')})`,
    );
  }
  if (post.kind === 'classification') return classification(post);
  if (post.kind === 'token-classification') return tokenClassification(post) as Decoder;
  if (post.kind === 'embedding') return embedding(post) as Decoder;
  if (post.kind === 'regression') {
    return {
      decode(outputs, rows) {
        const t = outputs[post.output]!;
        return rowsOf(t, rows).map((r) => ({ value: r.length === 1 ? Number(r[0]) : r.map(Number) }));
      },
    };
  }
  // A model without a batch dimension takes whole tensors as its one instance and answers whole tensors.
  const batchable = isBatchable(manifest);
  return {
    decode(outputs, rows) {
      const names = Object.keys(outputs);
      const preds: RawPrediction[] = Array.from({ length: rows }, () => ({}));
      for (const name of names) {
        const t = outputs[name]!;
        const batched = batchable && t.dims.length > 0 && t.dims[0] === rows && rows > 0;
        if (batched) {
          const inner = t.dims.slice(1);
          rowsOf(t, rows).forEach((r, i) => {
            preds[i]![name] = inner.length === 0 ? r[0] : nest(r, inner);
          });
        } else {
          // An output without a batch dimension belongs to the single instance.
          const flat = toNumbers(t.data);
          for (const p of preds)
            p[name] = t.dims.length === 0 ? flat[0] : elementCount(t.dims) === flat.length ? nest(flat, t.dims) : flat;
        }
      }
      return preds;
    },
  };
}

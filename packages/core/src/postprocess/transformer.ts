// Postprocessing for transformer encoders: token classification (entities with character spans, with Hugging
// Face's aggregation strategies) and sentence embeddings (mean or CLS pooling, optional L2 normalisation).
// Both read token-level outputs [batch, sequence, ...] and use each row's real length from the encoder, so
// padding added for batching never leaks into an answer.
import type { EmbeddingPost, TokenClassificationPost } from '../contract/schema.js';
import { ContractError } from '../errors.js';
import type { RowInfo } from '../preprocess/encoder.js';
import { toNumbers, type TensorValue } from '../tensor.js';

export interface Entity {
  /** The label (token-level) or the entity type with its B-/I- prefix removed (aggregated). */
  label: string;
  score: number;
  /** The covered text. */
  text: string;
  /** Character span [start, end) in the input text (UTF-16 indices). */
  start: number;
  end: number;
  /** 1 when the entity lies in the second text of a pair. */
  sequence?: 1;
  /** Token position, for aggregation `none`. */
  index?: number;
}
export interface TokenClassificationPrediction {
  entities: Entity[];
}
export interface EmbeddingPrediction {
  embedding: number[];
}

interface Decoder {
  decode(outputs: Record<string, TensorValue>, rows: number, info?: readonly RowInfo[]): unknown[];
}

function output(outputs: Record<string, TensorValue>, name: string): TensorValue {
  const t = outputs[name];
  if (!t) throw new ContractError('/postprocess/output', `model produced no output "${name}"`);
  return t;
}

function softmaxInPlace(xs: Float64Array): void {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i] = Math.exp(xs[i]! - m);
  for (let i = 0; i < xs.length; i++) xs[i]! /= s;
}

const argmax = (xs: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
};

/** `B-PER` → [`B`, `PER`]; a label without a prefix is its own type. */
function splitTag(label: string): [prefix: 'B' | 'I' | undefined, type: string] {
  const m = /^([BI])-(.+)$/.exec(label);
  return m ? [m[1] as 'B' | 'I', m[2]!] : [undefined, label];
}

interface TokenScore {
  index: number;
  start: number;
  end: number;
  sequence: 0 | 1;
  scores: Float64Array;
}

export function tokenClassification(p: TokenClassificationPost): Decoder {
  const ignore = new Set(p.ignoreLabels ?? ['O']);
  const aggregation = p.aggregation ?? 'simple';
  const labels = p.labels;
  const sourceOf = (info: RowInfo, seq: 0 | 1): string => (seq === 1 ? (info.pair ?? '') : (info.text ?? ''));
  return {
    decode(outputs, rows, info) {
      const t = output(outputs, p.output);
      if (t.dims.length !== 3 || t.dims[2] !== labels.length)
        throw new ContractError(
          '/postprocess/labels',
          `output "${p.output}" must be [batch, sequence, ${labels.length}] (one score per label), got [${t.dims.join(', ')}]`,
        );
      if (!info) throw new ContractError('/postprocess', 'token classification needs a tokenizer step (for offsets)');
      const flat = toNumbers(t.data) as number[];
      const seqLen = t.dims[1]!;
      const c = labels.length;
      return Array.from({ length: rows }, (_, row) => {
        const ri = info[row]!;
        const tokens: TokenScore[] = [];
        for (let k = 0; k < Math.min(ri.length, seqLen); k++) {
          const off = ri.offsets?.[k];
          if (!off) continue;
          const scores = new Float64Array(c);
          const base = (row * seqLen + k) * c;
          for (let j = 0; j < c; j++) scores[j] = Number(flat[base + j]);
          if ((p.activation ?? 'softmax') === 'softmax') softmaxInPlace(scores);
          tokens.push({ index: k, start: off.start, end: off.end, sequence: off.sequence, scores });
        }
        const entity = (label: string, score: number, seq: 0 | 1, start: number, end: number): Entity => ({
          label,
          score,
          text: sourceOf(ri, seq).slice(start, end),
          start,
          end,
          ...(seq === 1 && { sequence: 1 as const }),
        });
        if (aggregation === 'none') {
          return {
            entities: tokens.flatMap((tk) => {
              const best = argmax(tk.scores);
              const label = labels[best]!;
              if (ignore.has(label)) return [];
              return [{ ...entity(label, tk.scores[best]!, tk.sequence, tk.start, tk.end), index: tk.index }];
            }),
          };
        }
        // Units to label: tokens (`simple`) or words (`first` / `average` / `max`), each with one label and score.
        type Unit = { label: string; score: number; start: number; end: number; sequence: 0 | 1 };
        const units: Unit[] = [];
        if (aggregation === 'simple') {
          for (const tk of tokens) {
            const best = argmax(tk.scores);
            units.push({ label: labels[best]!, score: tk.scores[best]!, ...tk });
          }
        } else {
          // A word is a run of tokens with no gap between them in the text (sub-word pieces of one word touch).
          let word: TokenScore[] = [];
          const flush = () => {
            if (!word.length) return;
            let label: string;
            let score: number;
            if (aggregation === 'first') {
              const best = argmax(word[0]!.scores);
              label = labels[best]!;
              score = word[0]!.scores[best]!;
            } else if (aggregation === 'average') {
              const mean = new Float64Array(c);
              for (const tk of word) for (let j = 0; j < c; j++) mean[j]! += tk.scores[j]! / word.length;
              const best = argmax(mean);
              label = labels[best]!;
              score = mean[best]!;
            } else {
              let top = word[0]!;
              for (const tk of word) if (Math.max(...tk.scores) > Math.max(...top.scores)) top = tk;
              const best = argmax(top.scores);
              label = labels[best]!;
              score = top.scores[best]!;
            }
            units.push({
              label,
              score,
              start: word[0]!.start,
              end: word[word.length - 1]!.end,
              sequence: word[0]!.sequence,
            });
            word = [];
          };
          for (const tk of tokens) {
            const prev = word[word.length - 1];
            if (prev && (tk.start !== prev.end || tk.sequence !== prev.sequence)) flush();
            word.push(tk);
          }
          flush();
        }
        // Merge adjacent units of one entity type; a B- tag starts a new entity.
        const entities: Entity[] = [];
        let group: Unit[] = [];
        let groupType = '';
        const close = () => {
          if (!group.length) return;
          if (!ignore.has(groupType) && !ignore.has(group[0]!.label)) {
            const score = group.reduce((s, u) => s + u.score, 0) / group.length;
            entities.push(entity(groupType, score, group[0]!.sequence, group[0]!.start, group[group.length - 1]!.end));
          }
          group = [];
        };
        for (const u of units) {
          const [prefix, type] = splitTag(u.label);
          const last = group[group.length - 1];
          if (!last || type !== groupType || prefix === 'B' || u.sequence !== last.sequence) {
            close();
            groupType = type;
          }
          group.push(u);
        }
        close();
        return { entities };
      });
    },
  };
}

export function embedding(p: EmbeddingPost): Decoder {
  const pooling = p.pooling ?? 'mean';
  return {
    decode(outputs, rows, info) {
      const t = output(outputs, p.output);
      const flat = toNumbers(t.data) as number[];
      const pooled = pooling === 'none' || t.dims.length === 2;
      if (!pooled && t.dims.length !== 3)
        throw new ContractError('/postprocess/output', `output "${p.output}" must be [batch, sequence, hidden]`);
      const seqLen = pooled ? 1 : t.dims[1]!;
      const hidden = t.dims[t.dims.length - 1]!;
      return Array.from({ length: rows }, (_, row) => {
        const v = new Array<number>(hidden).fill(0);
        if (pooled || pooling === 'cls') {
          const base = row * seqLen * hidden;
          for (let h = 0; h < hidden; h++) v[h] = Number(flat[base + h]);
        } else {
          const n = Math.max(1, Math.min(info?.[row]?.length ?? seqLen, seqLen));
          for (let k = 0; k < n; k++) {
            const base = (row * seqLen + k) * hidden;
            for (let h = 0; h < hidden; h++) v[h]! += Number(flat[base + h]);
          }
          for (let h = 0; h < hidden; h++) v[h]! /= n;
        }
        if (p.normalize) {
          const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
          for (let h = 0; h < hidden; h++) v[h]! /= norm;
        }
        return { embedding: v };
      });
    },
  };
}

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileDecoder } from './decode.js';
import type { Manifest } from '../contract/schema.js';
import type { RowInfo } from '../preprocess/encoder.js';
import type { TensorValue } from '../tensor.js';

const LABELS = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'];
const manifest = (post: Manifest['postprocess']): Manifest => ({
  inputs: [{ name: 'text', type: 'string' }],
  outputs: [{ name: 'out', shape: [-1, -1, -1] }],
  postprocess: post,
});

// "Ann Lee visited Paris" as [CLS] Ann Lee vis ##ited Par ##is [SEP] [PAD]: one-hot-ish logits per token.
const text = 'Ann Lee visited Paris';
const spans: Array<[number, number] | null> = [null, [0, 3], [4, 7], [8, 11], [11, 15], [16, 19], [19, 21], null, null];
const tags = ['O', 'B-PER', 'I-PER', 'O', 'O', 'B-LOC', 'I-LOC', 'O', 'B-PER'];
function logits(): TensorValue {
  const data = new Float32Array(spans.length * LABELS.length);
  tags.forEach((t, k) => {
    data[k * LABELS.length + LABELS.indexOf(t)] = 5;
  });
  // The second piece of "Paris" leans to I-PER a little less than to I-LOC: `first` and `max` ignore it.
  data[6 * LABELS.length + LABELS.indexOf('I-PER')] = 4;
  return { dtype: 'float32', dims: [1, spans.length, LABELS.length], data };
}
const info: RowInfo[] = [
  { length: 8, text, offsets: spans.map((s) => (s ? { sequence: 0, start: s[0], end: s[1] } : null)) },
];

describe('token classification', () => {
  test('simple aggregation merges B-/I- runs into entities with character spans; padding is ignored', () => {
    const d = compileDecoder(manifest({ kind: 'token-classification', output: 'out', labels: LABELS }));
    const [p] = d.decode({ out: logits() }, 1, info) as Array<{ entities: Array<Record<string, unknown>> }>;
    assert.deepEqual(
      p!.entities.map((e) => [e.label, e.text, e.start, e.end]),
      [
        ['PER', 'Ann Lee', 0, 7],
        ['LOC', 'Paris', 16, 21],
      ],
    );
    const score = p!.entities[0]!.score as number;
    assert.ok(score > 0.95 && score < 1);
  });

  test('none reports every non-O token with its index', () => {
    const d = compileDecoder(
      manifest({ kind: 'token-classification', output: 'out', labels: LABELS, aggregation: 'none' }),
    );
    const [p] = d.decode({ out: logits() }, 1, info) as Array<{ entities: Array<Record<string, unknown>> }>;
    assert.deepEqual(
      p!.entities.map((e) => [e.label, e.text, e.index]),
      [
        ['B-PER', 'Ann', 1],
        ['I-PER', 'Lee', 2],
        ['B-LOC', 'Par', 5],
        ['I-LOC', 'is', 6],
      ],
    );
  });

  test('word-level strategies label whole words', () => {
    for (const aggregation of ['first', 'average', 'max'] as const) {
      const d = compileDecoder(manifest({ kind: 'token-classification', output: 'out', labels: LABELS, aggregation }));
      const [p] = d.decode({ out: logits() }, 1, info) as Array<{ entities: Array<Record<string, unknown>> }>;
      assert.deepEqual(
        p!.entities.map((e) => [e.label, e.text]),
        [
          ['PER', 'Ann Lee'],
          ['LOC', 'Paris'],
        ],
        aggregation,
      );
    }
  });
});

describe('embeddings', () => {
  // Two rows of [3 tokens, 2 hidden]; the second row has one real token and two padded ones.
  const out: TensorValue = {
    dtype: 'float32',
    dims: [2, 3, 2],
    data: new Float32Array([1, 2, 3, 4, 5, 6, 3, 4, 100, 100, 100, 100]),
  };
  const rows: RowInfo[] = [{ length: 3 }, { length: 1 }];

  test('mean pooling over real tokens only, then L2 normalisation', () => {
    const d = compileDecoder(manifest({ kind: 'embedding', output: 'out', pooling: 'mean', normalize: true }));
    const [a, b] = d.decode({ out }, 2, rows) as Array<{ embedding: number[] }>;
    const n = Math.hypot(3, 4);
    assert.deepEqual(
      a!.embedding.map((x) => +x.toFixed(6)),
      [+(3 / n).toFixed(6), +(4 / n).toFixed(6)],
    );
    assert.deepEqual(
      b!.embedding.map((x) => +x.toFixed(6)),
      [0.6, 0.8],
    );
  });

  test('CLS pooling takes the first token; unnormalised', () => {
    const d = compileDecoder(manifest({ kind: 'embedding', output: 'out', pooling: 'cls' }));
    const [a, b] = d.decode({ out }, 2, rows) as Array<{ embedding: number[] }>;
    assert.deepEqual(a!.embedding, [1, 2]);
    assert.deepEqual(b!.embedding, [3, 4]);
  });
});

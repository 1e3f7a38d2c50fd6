import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileDecoder, softmax } from './decode.js';
import type { Manifest } from '../contract/schema.js';
import type { TensorValue } from '../tensor.js';

const f32 = (dims: number[], xs: number[]): TensorValue => ({ dtype: 'float32', dims, data: Float32Array.from(xs) });
const base = { inputs: [{ name: 'x', type: 'tensor' as const, dtype: 'float32' as const, shape: [-1, 2] }] };

test('classification: labels, scores, argmax, top-k', () => {
  const d = compileDecoder({
    ...base,
    outputs: [{ name: 'p' }],
    postprocess: { kind: 'classification', output: 'p', labels: ['a', 'b', 'c'], topK: 2 },
  });
  const [p0, p1] = d.decode({ p: f32([2, 3], [0.1, 0.7, 0.2, 0.5, 0.2, 0.3]) }, 2) as Array<{
    label: string;
    scores: Record<string, number>;
    topK: Array<{ label: string }>;
  }>;
  assert.equal(p0!.label, 'b');
  assert.ok(Math.abs(p0!.scores.c! - 0.2) < 1e-6);
  assert.deepEqual(
    p0!.topK.map((t) => t.label),
    ['b', 'c'],
  );
  assert.equal(p1!.label, 'a');
});

test('classification with softmax over logits, and a single sigmoid score with a threshold', () => {
  const soft = compileDecoder({
    ...base,
    outputs: [{ name: 'z' }],
    postprocess: { kind: 'classification', output: 'z', labels: ['n', 'y'], activation: 'softmax' },
  });
  const [p] = soft.decode({ z: f32([1, 2], [0, Math.log(3)]) }, 1) as Array<{ scores: Record<string, number> }>;
  assert.ok(Math.abs(p!.scores.y! - 0.75) < 1e-6);
  const sig = compileDecoder({
    ...base,
    outputs: [{ name: 'z' }],
    postprocess: { kind: 'classification', output: 'z', labels: ['n', 'y'], activation: 'sigmoid', threshold: 0.8 },
  });
  const out = sig.decode({ z: f32([2, 1], [0, 2]) }, 2) as Array<{ label: string; scores: Record<string, number> }>;
  assert.ok(Math.abs(out[1]!.scores.y! - 1 / (1 + Math.exp(-2))) < 1e-6);
  assert.deepEqual(
    out.map((o) => o.label),
    ['n', 'y'],
  );
  assert.deepEqual(softmax([1000, 1000]), [0.5, 0.5], 'stable for large logits');
});

test('a label count that does not match the output is an error, not a wrong answer', () => {
  const d = compileDecoder({
    ...base,
    outputs: [{ name: 'p' }],
    postprocess: { kind: 'classification', output: 'p', labels: ['a', 'b', 'c'] },
  });
  assert.throws(() => d.decode({ p: f32([1, 2], [0.5, 0.5]) }, 1), /2 scores per row but 3 labels/);
});

test('raw outputs are split per instance and nested by shape; regression gives a value', () => {
  const raw = compileDecoder({ ...base, outputs: [{ name: 'y' }, { name: 'z' }] } as Manifest);
  const r = raw.decode(
    {
      y: f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]),
      z: { dtype: 'int64', dims: [2], data: BigInt64Array.from([7n, 9n]) },
    },
    2,
  );
  assert.deepEqual(r, [
    {
      y: [
        [1, 2],
        [3, 4],
      ],
      z: 7,
    },
    {
      y: [
        [5, 6],
        [7, 8],
      ],
      z: 9,
    },
  ]);
  const reg = compileDecoder({ ...base, outputs: [{ name: 'y' }], postprocess: { kind: 'regression', output: 'y' } });
  assert.deepEqual(reg.decode({ y: f32([2, 1], [1.5, -2]) }, 2), [{ value: 1.5 }, { value: -2 }]);
});

test('a classification written as JSON is JSON.stringify of its decoded predictions, for any scores', () => {
  // A seeded generator (mulberry32's step), so a failure names a body that can be run again.
  let seed = 20;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const special = [0, -0, NaN, Infinity, -Infinity, 1e-45, 3.4e38, -1, 0.5, 1];
  const value = () =>
    rand() < 0.2 ? special[Math.floor(rand() * special.length)]! : (rand() - 0.5) * 10 ** (rand() * 8 - 4);
  const labelSets = [
    ['no', 'yes'],
    ['a', 'b', 'c'],
    ['quote"d', 'back\\slash', 'ünï', 'tab\t', '\u2028'],
  ];
  let compared = 0;
  for (const labels of labelSets)
    for (const activation of ['none', 'softmax', 'sigmoid'] as const)
      for (const single of labels.length === 2 ? [false, true] : [false])
        for (const threshold of single ? [undefined, 0.3] : [undefined]) {
          const d = compileDecoder({
            ...base,
            outputs: [{ name: 'p' }],
            postprocess: {
              kind: 'classification',
              output: 'p',
              labels,
              activation,
              ...(threshold !== undefined && { threshold }),
            },
          });
          assert.ok(d.json, 'these labels are written in place');
          const per = single ? 1 : labels.length;
          for (let k = 0; k < 40; k++) {
            const rows = Math.floor(rand() * 5);
            const t = f32([rows, per], Array.from({ length: rows * per }, value));
            assert.equal(d.json({ p: t }, rows), JSON.stringify(d.decode({ p: t }, rows)));
            compared++;
          }
        }
  assert.equal(compared, 40 * (3 * 3 + 3 + 3)); // two labels: 3 activations × (two scores, one, one with a threshold)
  // Labels JSON.stringify would move or drop, and top-k (ties keep sort's order): no writer.
  for (const post of [{ labels: ['x', '1'] }, { labels: ['__proto__', 'b'] }, { labels: ['a', 'b'], topK: 1 }]) {
    const d = compileDecoder({
      ...base,
      outputs: [{ name: 'p' }],
      postprocess: { kind: 'classification', output: 'p', ...post },
    });
    assert.equal(d.json, undefined, JSON.stringify(post));
  }
  // A writer refuses what decode refuses.
  const d = compileDecoder({
    ...base,
    outputs: [{ name: 'p' }],
    postprocess: { kind: 'classification', output: 'p', labels: ['a', 'b', 'c'] },
  });
  assert.throws(() => d.json!({ p: f32([1, 2], [1, 2]) }, 1), /2 scores per row but 3 labels/);
  assert.throws(() => d.json!({ q: f32([1, 3], [1, 2, 3]) }, 1), /no output "p"/);
});

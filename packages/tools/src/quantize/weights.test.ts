import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  quantizeWeights,
  dequantizeWeights,
  quantizeRows,
  dequantizeRows,
  roundHalfEven,
  transpose,
} from './weights.js';
import { gaussian, seededRandom } from './mlp-model.js';

test('roundHalfEven rounds ties to the even neighbour, like ONNX QuantizeLinear', () => {
  assert.deepEqual(
    [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6].map(roundHalfEven),
    [0, 2, 2, -0, -2, -2, 2, 3, -3],
  );
});

function matrix(rows: number, cols: number, seed: number): Float32Array {
  const normal = gaussian(seededRandom(seed));
  return Float32Array.from({ length: rows * cols }, () => normal());
}

for (const symmetric of [true, false]) {
  for (const perChannel of [true, false]) {
    test(`every weight is within half a step of its float value (${symmetric ? 'symmetric int8' : 'asymmetric uint8'}, ${perChannel ? 'per channel' : 'per tensor'})`, () => {
      const rows = 33;
      const cols = 7;
      const w = matrix(rows, cols, 5);
      const q = quantizeWeights(w, rows, cols, { perChannel, symmetric, reduceRange: false });
      assert.ok(symmetric ? q.data instanceof Int8Array : q.data instanceof Uint8Array);
      assert.equal(q.scale.length, perChannel ? cols : 1);
      if (symmetric) assert.ok(q.zeroPoint.every((z) => z === 0));
      const d = dequantizeWeights(q, rows, cols);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const s = q.scale[perChannel ? c : 0]!;
          // Half a step, plus float32 rounding of the stored scale.
          assert.ok(Math.abs(d[r * cols + c]! - w[r * cols + c]!) <= s / 2 + 1e-6, `[${r}, ${c}]`);
        }
      }
    });
  }
}

test('zero is exact, and an all-zero channel gets a finite scale', () => {
  const w = new Float32Array([0, 1, 0, -2, 0, 0.5]); // 3×2: column 0 all zeros
  for (const symmetric of [true, false]) {
    const q = quantizeWeights(w, 3, 2, { perChannel: true, symmetric, reduceRange: false });
    const d = dequantizeWeights(q, 3, 2);
    assert.equal(d[0], 0);
    assert.equal(d[2], 0);
    assert.equal(d[4], 0);
    assert.ok(q.scale.every((s) => Number.isFinite(s) && s > 0));
  }
});

test('symmetric weights use the full ±127 range, or ±63 with reduceRange', () => {
  const w = matrix(16, 4, 9);
  const full = quantizeWeights(w, 16, 4, { perChannel: false, symmetric: true, reduceRange: false });
  const reduced = quantizeWeights(w, 16, 4, { perChannel: false, symmetric: true, reduceRange: true });
  assert.equal(Math.max(...Array.from(full.data, Math.abs)), 127);
  assert.equal(Math.max(...Array.from(reduced.data, Math.abs)), 63);
  const asym = quantizeWeights(w, 16, 4, { perChannel: false, symmetric: false, reduceRange: true });
  assert.ok(Math.max(...asym.data) <= 127);
});

test('non-finite weights are refused', () => {
  assert.throws(
    () => quantizeWeights(new Float32Array([1, NaN]), 1, 2, { perChannel: false, symmetric: true, reduceRange: false }),
    /non-finite/,
  );
});

test('transpose turns rows×cols into cols×rows', () => {
  assert.deepEqual(Array.from(transpose(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3)), [1, 4, 2, 5, 3, 6]);
});

test('an embedding table gets one scale per row, each row within half its own step, ±127 in every row', () => {
  const w = new Float32Array([0.6, -1, 0.25, 100, -40, 25, 0, 0, 0]);
  const q = quantizeRows(w, 3, 3, true);
  assert.deepEqual(Array.from(q.scale), [1 / 127, 100 / 127, 1].map(Math.fround));
  assert.deepEqual(Array.from(q.data), [76, -127, 32, 127, -51, 32, 0, 0, 0]);
  const d = dequantizeRows(q, 3, 3);
  w.forEach((v, i) => assert.ok(Math.abs(d[i]! - v) <= q.scale[Math.floor(i / 3)]! / 2 + 1e-9, `value ${i}`));
  // One scale for the table: the small first row loses almost all of its precision.
  const t = quantizeRows(w, 3, 3, false);
  assert.equal(t.scale.length, 1);
  assert.deepEqual(Array.from(t.data.slice(0, 3)), [1, -1, 0]);
});

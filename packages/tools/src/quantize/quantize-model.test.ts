import { int8SaturatesHere } from './cpu.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, attr, describeModel, readModel } from '../onnx/index.js';
import { tinyLinearModel } from '@ferry/test-kit';
import { QuantizeError } from './errors.js';
import { buildMlp, gaussian, seededRandom } from './mlp-model.js';
import { quantizeModel, QUANT_FORMATS, QUANTIZATION_METADATA_KEY, type QuantFormat } from './quantize-model.js';

// ---- references and error bounds, in float64 ----------------------------------------------------

type Rows = Float64Array[];

function randomRows(rows: number, width: number, seed: number, scale = 1): Float32Array {
  const normal = gaussian(seededRandom(seed));
  return Float32Array.from({ length: rows * width }, () => normal() * scale);
}
const toRows = (flat: ArrayLike<number>, width: number): Rows =>
  Array.from({ length: flat.length / width }, (_, r) =>
    Float64Array.from({ length: width }, (_, c) => flat[r * width + c]!),
  );

function affine(x: Rows, w: ArrayLike<number>, k: number, n: number, bias?: ArrayLike<number>): Rows {
  return x.map((row) => {
    const out = new Float64Array(n);
    for (let j = 0; j < n; j++) out[j] = bias ? bias[j]! : 0;
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) out[j]! += row[i]! * w[i * n + j]!;
    return out;
  });
}

/** Weight step per output channel (or one for all), as the quantiser must choose it: symmetric int8. */
/**
 * On x86 CPUs without VNNI the exact-arithmetic bounds below do not hold with 8-bit weights (the GEMM
 * saturates: cpu.ts); they do with 7-bit weights, so the bound tests use them on such CPUs and 8-bit
 * weights everywhere else.
 */
const SATURATING_INT8 = int8SaturatesHere();
const WEIGHT_QMAX = SATURATING_INT8 ? 63 : 127;

function weightSteps(w: ArrayLike<number>, k: number, n: number, perChannel: boolean): Float64Array {
  const m = new Float64Array(n);
  for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) m[j] = Math.max(m[j]!, Math.abs(w[i * n + j]!));
  const all = Math.max(...m);
  return m.map((v) => (perChannel ? v : all) / WEIGHT_QMAX);
}

/**
 * The worst case of |int8 output - float output| for one quantised layer y = x·W (+ float bias), per
 * row and output. Dynamic quantisation rounds every activation to within half its step s_a (one step
 * for the whole run: the batch's range / 255) and every weight to within half its step s_w; so each
 * product x·w moves by at most s_a/2·|w| + |x|·s_w/2 + s_a·s_w/4. `xErr` bounds how far this layer's
 * input in the quantised model already is from the float one (error from earlier layers; ReLU does not
 * grow it), which adds Σ err·|w| and widens the activation range. A float32 slack covers accumulation order.
 */
function layerBound(x: Rows, xErr: Rows | null, w: ArrayLike<number>, k: number, n: number, sw: Float64Array): Rows {
  let lo = 0;
  let hi = 0;
  x.forEach((row, r) =>
    row.forEach((v, i) => {
      const e = xErr ? xErr[r]![i]! : 0;
      lo = Math.min(lo, v - e);
      hi = Math.max(hi, v + e);
    }),
  );
  const sa = (hi - lo) / 255;
  return x.map((row, r) => {
    const out = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let b = 0;
      let mag = 0;
      for (let i = 0; i < k; i++) {
        const aw = Math.abs(w[i * n + j]!);
        const e = xErr ? xErr[r]![i]! : 0;
        const ax = Math.abs(row[i]!) + e;
        b += e * aw + (sa / 2) * aw + ax * (sw[j]! / 2) + (sa * sw[j]!) / 4;
        mag += ax * aw;
      }
      out[j] = b + 1e-4 * mag + 1e-6;
    }
    return out;
  });
}

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(bytes);
  try {
    const r = await s.run(feeds);
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}

function assertWithin(
  actual: ArrayLike<number>,
  expected: Rows,
  bound: Rows,
  what: string,
): { maxErr: number; maxBound: number } {
  const n = expected[0]!.length;
  let maxErr = 0;
  let maxBound = 0;
  expected.forEach((row, r) =>
    row.forEach((v, j) => {
      const err = Math.abs(actual[r * n + j]! - v);
      const b = bound[r]![j]!;
      assert.ok(
        err <= b,
        `${what}: [${r}, ${j}] int8 ${actual[r * n + j]} vs float ${v}: error ${err} exceeds the rounding bound ${b}`,
      );
      maxErr = Math.max(maxErr, err);
      maxBound = Math.max(maxBound, b);
    }),
  );
  return { maxErr, maxBound };
}

/** Every initializer of the rewritten model is read by some node: no float copies left behind. */
function assertNoDeadInitializers(bytes: Uint8Array): void {
  const g = readModel(bytes).graph!;
  const read = new Set(g.node!.flatMap((n) => n.input ?? []));
  const dead = g.initializer!.map((t) => t.name!).filter((n) => !read.has(n));
  assert.deepEqual(dead, [], 'initializers nothing reads');
}

const maxAbs = (rows: Rows): number => Math.max(...rows.map((r) => Math.max(...Array.from(r, Math.abs))));

// ---- the quantised MLP against the float one ----------------------------------------------------

const BATCH = 16;

/** x[batch, 64] → MatMul 64×128 + Add → Relu → h → MatMul 128×10 + Add → y; h is an output too, to check each layer on
 * its own input.
 */
function twoLayerMlp(): { bytes: Uint8Array; w1: Float32Array; b1: Float32Array; w2: Float32Array; b2: Float32Array } {
  const normal = gaussian(seededRandom(21));
  const w1 = Float32Array.from({ length: 64 * 128 }, () => normal() * Math.sqrt(2 / 64));
  const b1 = Float32Array.from({ length: 128 }, () => normal() * 0.05);
  const w2 = Float32Array.from({ length: 128 * 10 }, () => normal() * Math.sqrt(2 / 128));
  const b2 = Float32Array.from({ length: 10 }, () => normal() * 0.05);
  const g = new GraphBuilder();
  g.input('x', 'float32', ['batch', 64]).output('y', 'float32', ['batch', 10]).output('h', 'float32', ['batch', 128]);
  g.floatInitializer('w1', w1, [64, 128])
    .floatInitializer('b1', b1)
    .floatInitializer('w2', w2, [128, 10])
    .floatInitializer('b2', b2);
  g.node('Relu', [g.op('Add', [g.op('MatMul', ['x', 'w1'], {}, { name: 'fc1' }), 'b1'])], ['h']);
  g.node('Add', [g.op('MatMul', ['h', 'w2'], {}, { name: 'fc2' }), 'b2'], ['y']);
  return { bytes: g.toBytes(), w1, b1, w2, b2 };
}

for (const format of QUANT_FORMATS) {
  for (const perChannel of [true, false]) {
    test(`a 2-layer MLP quantised as ${format}, ${perChannel ? 'per channel' : 'per tensor'}, runs and stays within the worst-case rounding bound of the float model`, async () => {
      const mlp = twoLayerMlp();
      const { bytes, report } = quantizeModel(mlp.bytes, {
        format,
        perChannel,
        minElements: 0,
        reduceRange: SATURATING_INT8,
      });
      assert.equal(report.format, format);
      assert.deepEqual(
        report.quantized.map((q) => [q.opType, q.weight, q.shape]),
        [
          ['MatMul', 'w1', [64, 128]],
          ['MatMul', 'w2', [128, 10]],
        ],
      );
      assert.deepEqual(report.skipped, []);
      assertNoDeadInitializers(bytes);
      const ops = readModel(bytes).graph!.node!.map((x) => x.opType);
      if (format === 'contrib')
        assert.deepEqual(
          ops,
          ['DynamicQuantizeMatMul', 'Relu', 'DynamicQuantizeMatMul'],
          'bias Adds folded into the contrib node',
        );
      if (format === 'integer-ops') assert.equal(ops.filter((x) => x === 'MatMulInteger').length, 2);
      // The quantised model keeps the float model's interface.
      const before = describeModel(mlp.bytes);
      const after = describeModel(bytes);
      assert.deepEqual([after.inputs, after.outputs], [before.inputs, before.outputs]);

      const xFlat = randomRows(BATCH, 64, 99);
      const x = toRows(xFlat, 64);
      const h = affine(x, mlp.w1, 64, 128, mlp.b1).map((r) => r.map((v) => Math.max(0, v)));
      const y = affine(h, mlp.w2, 128, 10, mlp.b2);
      const out = await run(bytes, { x: new ort.Tensor('float32', xFlat, [BATCH, 64]) });

      // Layer 1 on the float input (ReLU cannot grow an error).
      const b1 = layerBound(x, null, mlp.w1, 64, 128, weightSteps(mlp.w1, 64, 128, perChannel));
      assertWithin(out.h!, h, b1, `${format} layer 1`);
      // Layer 2 on the input it actually got (the quantised model's own h).
      const hq = toRows(out.h!, 128);
      const b2 = layerBound(hq, null, mlp.w2, 128, 10, weightSteps(mlp.w2, 128, 10, perChannel));
      assertWithin(out.y!, affine(hq, mlp.w2, 128, 10, mlp.b2), b2, `${format} layer 2`);
      // End to end: layer 2's own rounding plus layer 1's actual error carried through |w2|.
      const carried = hq.map((row, r) => {
        const e = new Float64Array(10);
        for (let j = 0; j < 128; j++)
          for (let n = 0; n < 10; n++) e[n]! += Math.abs(row[j]! - h[r]![j]!) * Math.abs(mlp.w2[j * 10 + n]!);
        return e.map((v, n) => v + b2[r]![n]!);
      });
      const { maxErr, maxBound } = assertWithin(out.y!, y, carried, `${format} end to end`);
      // The bound is a real constraint (at most 15% of the largest output, 30% with 7-bit weights), and
      // quantisation did change something.
      const tight = SATURATING_INT8 ? 0.3 : 0.15;
      assert.ok(maxBound < tight * maxAbs(y), `bound ${maxBound} vs outputs up to ${maxAbs(y)}`);
      assert.ok(maxErr > 0, 'the int8 model answered exactly the float answers: was anything quantised?');
    });
  }
}

test('per-channel scales beat one scale per tensor on a weight matrix whose channels differ in range', async () => {
  const k = 128;
  const n = 8;
  const w = randomRows(k, n, 4);
  // Channel j spans about 10^(j mod 4 - 2): 0.01 … 10.
  for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) w[i * n + j]! *= 10 ** ((j % 4) - 2);
  const g = new GraphBuilder();
  g.input('x', 'float32', ['batch', k]).output('y', 'float32', ['batch', n]).floatInitializer('w', w, [k, n]);
  g.node('MatMul', ['x', 'w'], ['y']);
  const fp32 = g.toBytes();
  const xFlat = randomRows(32, k, 5);
  const y = affine(toRows(xFlat, k), w, k, n);
  const feeds = { x: new ort.Tensor('float32', xFlat, [32, k]) };

  // Error relative to each channel's own size, averaged over channels: small channels matter as much as large ones.
  const relError = (out: Float32Array): number => {
    let sum = 0;
    for (let j = 0; j < n; j++) {
      let err = 0;
      let mag = 0;
      y.forEach((row, r) => {
        err = Math.max(err, Math.abs(out[r * n + j]! - row[j]!));
        mag = Math.max(mag, Math.abs(row[j]!));
      });
      sum += err / mag;
    }
    return sum / n;
  };
  const pc = quantizeModel(fp32, { perChannel: true, minElements: 0 });
  const pt = quantizeModel(fp32, { perChannel: false, minElements: 0 });
  const ePc = relError((await run(pc.bytes, feeds)).y!);
  const ePt = relError((await run(pt.bytes, feeds)).y!);
  assert.ok(ePc * 5 < ePt, `per-channel mean relative error ${ePc} should be far below per-tensor ${ePt}`);
  assert.ok(pc.report.quantized[0]!.relRmsError < pt.report.quantized[0]!.relRmsError);
});

// ---- Gemm ---------------------------------------------------------------------------------------

interface GemmCase {
  name: string;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
  /** 'row' [N] initializer, 'row2d' [1, N], 'full' [M, N] initializer, 'input' a graph input [M, N], 'none'. */
  c: 'row' | 'row2d' | 'full' | 'input' | 'none';
}

const GEMM_CASES: GemmCase[] = [
  { name: 'transB with alpha and beta, C a row', transA: false, transB: true, alpha: 0.5, beta: 2, c: 'row' },
  { name: 'plain, C [1, N]', transA: false, transB: false, alpha: 1, beta: 1, c: 'row2d' },
  { name: 'transA and transB, C [M, N] scaled by beta', transA: true, transB: true, alpha: 1.5, beta: 0.5, c: 'full' },
  { name: 'C fed at run time, scaled by beta', transA: false, transB: true, alpha: 1, beta: -1, c: 'input' },
  { name: 'no C', transA: false, transB: true, alpha: -2, beta: 1, c: 'none' },
];

for (const format of QUANT_FORMATS) {
  for (const gc of GEMM_CASES) {
    test(`Gemm (${gc.name}) quantised as ${format} computes alpha·A·B + beta·C within the rounding bound`, async () => {
      const m = 12;
      const k = 96;
      const n = 24;
      const wKN = randomRows(k, n, 31, 0.2); // the weight as MatMul sees it
      const bStored = gc.transB
        ? (() => {
            const t = new Float32Array(n * k);
            for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) t[j * k + i] = wKN[i * n + j]!;
            return t;
          })()
        : wKN;
      const aFlat = randomRows(m, k, 32);
      const aStored = gc.transA
        ? (() => {
            const t = new Float32Array(k * m);
            for (let r = 0; r < m; r++) for (let i = 0; i < k; i++) t[i * m + r] = aFlat[r * k + i]!;
            return t;
          })()
        : aFlat;
      const cRow = randomRows(1, n, 33);
      const cFull = randomRows(m, n, 34);

      const g = new GraphBuilder();
      g.input('a', 'float32', gc.transA ? [k, m] : [m, k]).output('y', 'float32', [m, n]);
      g.floatInitializer('b', bStored, gc.transB ? [n, k] : [k, n]);
      const inputs = ['a', 'b'];
      if (gc.c === 'row') {
        g.floatInitializer('c', cRow, [n]);
        inputs.push('c');
      }
      if (gc.c === 'row2d') {
        g.floatInitializer('c', cRow, [1, n]);
        inputs.push('c');
      }
      if (gc.c === 'full') {
        g.floatInitializer('c', cFull, [m, n]);
        inputs.push('c');
      }
      if (gc.c === 'input') {
        g.input('c', 'float32', [m, n]);
        inputs.push('c');
      }
      g.node('Gemm', inputs, ['y'], {
        alpha: attr.float(gc.alpha),
        beta: attr.float(gc.beta),
        transA: gc.transA ? 1 : 0,
        transB: gc.transB ? 1 : 0,
      });
      const fp32 = g.toBytes();
      const { bytes, report } = quantizeModel(fp32, { format, minElements: 0, reduceRange: SATURATING_INT8 });
      assert.deepEqual(
        report.quantized.map((q) => [q.opType, q.shape]),
        [['Gemm', [k, n]]],
      );
      assertNoDeadInitializers(bytes);

      const feeds: Record<string, ort.Tensor> = { a: new ort.Tensor('float32', aStored, gc.transA ? [k, m] : [m, k]) };
      if (gc.c === 'input') feeds.c = new ort.Tensor('float32', cFull, [m, n]);
      const floatOut = (await run(fp32, feeds)).y!;
      const int8Out = (await run(bytes, feeds)).y!;

      const wEff = wKN.map((v) => v * gc.alpha);
      const cOf = (r: number, j: number): number =>
        (gc.c === 'none' ? 0 : gc.c === 'full' || gc.c === 'input' ? cFull[r * n + j]! : cRow[j]!) * gc.beta;
      const x = toRows(aFlat, k);
      const y = affine(x, wEff, k, n).map((row, r) => row.map((v, j) => v + cOf(r, j)));
      // The float model itself agrees with the reference: the test's reading of Gemm is right.
      y.forEach((row, r) =>
        row.forEach((v, j) =>
          assert.ok(Math.abs(floatOut[r * n + j]! - v) < 1e-4 * (1 + Math.abs(v)), 'float Gemm vs reference'),
        ),
      );
      const bound = layerBound(x, null, wEff, k, n, weightSteps(wEff, k, n, true));
      assertWithin(int8Out, y, bound, `Gemm ${gc.name}`);
    });
  }
}

// ---- what is left alone -------------------------------------------------------------------------

test('a model with nothing to quantise comes back byte for byte unchanged', () => {
  const fixture = tinyLinearModel(); // an 8×1 weight: below minElements
  const r = quantizeModel(fixture.onnx);
  assert.deepEqual(r.bytes, fixture.onnx);
  assert.deepEqual(r.report.quantized, []);
  assert.match(r.report.skipped[0]!.reason, /fewer than minElements 65536/);
  assert.equal(r.report.sizeRatio, 1);

  // MatMul of two run-time inputs: no weight to quantise.
  const g = new GraphBuilder();
  g.input('a', 'float32', [4, 8]).input('b', 'float32', [8, 4]).output('y', 'float32', [4, 4]);
  g.node('MatMul', ['a', 'b'], ['y']);
  const bytes = g.toBytes();
  const r2 = quantizeModel(bytes, { minElements: 0 });
  assert.deepEqual(r2.bytes, bytes);
  assert.match(r2.report.skipped[0]!.reason, /not an initializer/);
});

test('small weights stay float while large ones are quantised; excluded nodes stay float', () => {
  const mlp = buildMlp({ sizes: [256, 512, 10], seed: 2 });
  const r = quantizeModel(mlp.bytes); // 256×512 = 131072 ≥ 65536; 512×10 = 5120 < 65536
  assert.deepEqual(
    r.report.quantized.map((q) => q.weight),
    ['w1'],
  );
  assert.deepEqual(
    r.report.skipped.map((s) => s.name),
    ['fc2'],
  );
  const initializers = readModel(r.bytes).graph!.initializer!.map((t) => t.name);
  assert.ok(!initializers.includes('w1'), 'the float copy of a quantised weight is dropped');
  assert.ok(initializers.includes('w2'));
  const ex = quantizeModel(mlp.bytes, { minElements: 0, exclude: ['fc2'] });
  assert.deepEqual(
    ex.report.quantized.map((q) => q.name),
    ['fc1'],
  );
  assert.equal(ex.report.skipped[0]!.reason, 'excluded by name');
});

test('a weight shared by two MatMuls is quantised once, and kept in float while a float node still reads it', async () => {
  const k = 64;
  const n = 64;
  const g = new GraphBuilder();
  g.input('x', 'float32', ['batch', k]).output('y', 'float32', ['batch', n]).output('z', 'float32', ['batch', k]);
  g.floatInitializer('w', randomRows(k, n, 8, 0.1), [k, n]);
  const h = g.op('MatMul', ['x', 'w'], {}, { name: 'first' });
  g.node('MatMul', [h, 'w'], ['y'], {}, { name: 'second' });
  g.node('Gemm', [h, 'w'], ['z'], { transB: 1 }, { name: 'transposed' });
  const r = quantizeModel(g.toBytes(), { minElements: 0, opTypes: ['MatMul'] });
  assert.deepEqual(
    r.report.quantized.map((q) => q.name),
    ['first', 'second'],
  );
  const names = readModel(r.bytes).graph!.initializer!.map((t) => t.name);
  assert.equal(names.filter((s) => s!.startsWith('w_quantized')).length, 1);
  assert.ok(names.includes('w'), 'the Gemm left in float still reads w');
  const out = await run(r.bytes, { x: new ort.Tensor('float32', randomRows(2, k, 1), [2, k]) });
  assert.equal(out.y!.length, 2 * n);
});

test('the quantised model records how it was made, and a weight-dominated model shrinks at least 3×', () => {
  const mlp = buildMlp({ sizes: [256, 1024, 1024, 10], seed: 0x5eed });
  const r = quantizeModel(mlp.bytes);
  // The 1024×10 head is below minElements and stays float.
  assert.deepEqual(
    r.report.quantized.map((q) => q.shape),
    [
      [256, 1024],
      [1024, 1024],
    ],
  );
  assert.ok(r.report.sizeRatio >= 3, `only ${r.report.sizeRatio.toFixed(2)}× smaller`);
  assert.equal(r.report.bytesAfter, r.bytes.length);
  const meta = readModel(r.bytes).metadataProps!.find((p) => p.key === QUANTIZATION_METADATA_KEY);
  assert.deepEqual(JSON.parse(meta!.value!), {
    format: 'integer-ops',
    perChannel: true,
    symmetric: true,
    reduceRange: false,
    nodes: 2,
  });
});

test('asymmetric uint8 and 7-bit weights run in ONNX Runtime too', async () => {
  const mlp = buildMlp({ sizes: [64, 128, 10], seed: 5 });
  const x = new ort.Tensor('float32', randomRows(4, 64, 6), [4, 64]);
  const ref = (await run(mlp.bytes, { x })).y!;
  for (const format of QUANT_FORMATS) {
    for (const o of [{ symmetric: false }, { reduceRange: true }]) {
      const r = quantizeModel(mlp.bytes, { ...o, format, minElements: 0 });
      const out = (await run(r.bytes, { x })).y!;
      // Probabilities: the bound tests above hold the exact arithmetic; here, that it runs and stays close.
      for (let i = 0; i < ref.length; i++)
        assert.ok(Math.abs(out[i]! - ref[i]!) < 0.05, `${format} ${JSON.stringify(o)}: ${out[i]} vs ${ref[i]}`);
    }
  }
});

test('a model below opset 11 gets the contrib form by default, and a clear error when integer-ops is asked for', async () => {
  const g = new GraphBuilder({ opset: 9 });
  g.input('x', 'float32', ['batch', 64])
    .output('y', 'float32', ['batch', 64])
    .floatInitializer('w', randomRows(64, 64, 3, 0.1), [64, 64]);
  g.node('MatMul', ['x', 'w'], ['y']);
  const fp32 = g.toBytes();
  const r = quantizeModel(fp32, { minElements: 0 });
  assert.equal(r.report.format, 'contrib');
  const x = new ort.Tensor('float32', randomRows(2, 64, 4), [2, 64]);
  assert.equal((await run(r.bytes, { x })).y!.length, 128);
  assert.throws(
    () => quantizeModel(fp32, { minElements: 0, format: 'integer-ops' }),
    (e: unknown) => e instanceof QuantizeError && e.code === 'quantize-unsupported' && /opset 11/.test(e.message),
  );
});

// ---- embedding tables (Gather) ------------------------------------------------------------------

/** A table of `rows` embeddings of `width`, row r scaled by 10^(2r/rows): rows whose ranges span 100×. */
function embeddingTable(rows: number, width: number, seed: number): Float32Array {
  const t = randomRows(rows, width, seed);
  for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) t[r * width + j]! *= 10 ** ((2 * r) / rows);
  return t;
}

function embeddingModel(rows: number, width: number, table: Float32Array, axis = 0): Uint8Array {
  const g = new GraphBuilder();
  g.input('ids', 'int64', ['batch', 'seq']).output('y', 'float32', ['batch', 'seq', width]);
  g.floatInitializer('tok', table, [rows, width]);
  g.node('Gather', ['tok', 'ids'], ['y'], { axis }, { name: 'embed' });
  return g.toBytes();
}

test('an embedding table becomes int8 rows, each within half its own step, and the file shrinks about 4×', async () => {
  const [rows, width] = [1000, 96];
  const table = embeddingTable(rows, width, 21);
  const fp32 = embeddingModel(rows, width, table);
  // Every row once, plus a negative index (Gather counts it from the end), which must pick the same scale.
  const ids = BigInt64Array.from([...Array.from({ length: rows }, (_, i) => BigInt(i)), -1n, BigInt(-rows)]);
  const feeds = { ids: new ort.Tensor('int64', ids, [2, ids.length / 2]) };
  const maxError = async (perChannel: boolean): Promise<number[]> => {
    const r = quantizeModel(fp32, { perChannel });
    assert.deepEqual(
      r.report.quantized.map((q) => [q.opType, q.weight, q.shape]),
      [['Gather', 'tok', [rows, width]]],
    );
    const g = readModel(r.bytes).graph!;
    assert.ok(!g.initializer!.some((t) => t.name === 'tok'), 'the float table is dropped');
    assert.equal(g.initializer!.find((t) => t.name === 'tok_quantized')!.dataType, 3 /* int8 */);
    assert.ok(r.report.sizeRatio >= 3.5, `only ${r.report.sizeRatio.toFixed(2)}× smaller`);
    const y = (await run(r.bytes, feeds)).y!;
    // Per row: |Δ| / step, where the step is that row's (per channel) or the whole table's max|w| / 127.
    const all = table.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    return Array.from(ids, (id, p) => {
      const row = Number(id < 0n ? id + BigInt(rows) : id);
      let rowMax = 0;
      let err = 0;
      for (let j = 0; j < width; j++) {
        const w = table[row * width + j]!;
        rowMax = Math.max(rowMax, Math.abs(w));
        err = Math.max(err, Math.abs(y[p * width + j]! - w));
      }
      const step = (perChannel ? rowMax : all) / 127;
      assert.ok(err <= step / 2 + Math.abs(rowMax) * 1e-6, `row ${row}: |Δ| ${err} > half step ${step / 2}`);
      return err;
    });
  };
  const perRow = await maxError(true);
  const perTable = await maxError(false);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  // Small rows keep their precision only with a scale of their own.
  assert.ok(mean(perRow) * 5 <= mean(perTable), `per row ${mean(perRow)} vs per table ${mean(perTable)}`);
});

test('embedding tables: small, transposed, excluded or tied ones are handled as such', async () => {
  const [rows, width] = [1000, 96];
  const table = embeddingTable(rows, width, 22);
  // Below minElements, or gathered along axis 1: left in float, with the reason.
  const small = quantizeModel(embeddingModel(rows, width, table), { minElements: rows * width + 1 });
  assert.match(small.report.skipped[0]!.reason, /fewer than minElements/);
  const axis1 = quantizeModel(embeddingModel(rows, width, table, 1));
  assert.deepEqual(axis1.report.quantized, []);
  assert.match(axis1.report.skipped[0]!.reason, /not along axis 0/);
  assert.equal(quantizeModel(embeddingModel(rows, width, table), { exclude: ['embed'] }).report.quantized.length, 0);
  assert.equal(quantizeModel(embeddingModel(rows, width, table), { opTypes: ['MatMul'] }).report.quantized.length, 0);

  // Tied weights: the table also feeds an output projection (MatMul by its transpose, via Gemm transB) that is
  // excluded, so the float table stays for it while the Gather reads the int8 copy.
  const g = new GraphBuilder();
  g.input('ids', 'int64', [1, 4]).output('logits', 'float32', [4, rows]);
  g.floatInitializer('tok', table, [rows, width]);
  const e = g.op('Gather', ['tok', 'ids'], {}, { name: 'embed' });
  g.intInitializer('shape', [4, width]);
  const flat = g.op('Reshape', [e, 'shape'], {}, { name: 'flat' });
  g.node('Gemm', [flat, 'tok'], ['logits'], { transB: 1 }, { name: 'lm_head' });
  const r = quantizeModel(g.toBytes(), { exclude: ['lm_head'] });
  assert.deepEqual(
    r.report.quantized.map((q) => q.name),
    ['embed'],
  );
  assert.ok(
    readModel(r.bytes).graph!.initializer!.some((t) => t.name === 'tok'),
    'lm_head still reads tok',
  );
  const out = await run(r.bytes, { ids: new ort.Tensor('int64', BigInt64Array.from([1n, 2n, 3n, 999n]), [1, 4]) });
  assert.equal(out.logits!.length, 4 * rows);
});

test('a model read straight from a file Buffer, at any byte offset, quantises like its bytes', () => {
  const bytes = buildMlp({ sizes: [256, 512, 10], seed: 9 }).bytes;
  const expected = quantizeModel(bytes).bytes;
  // readFile gives a Buffer; a Buffer's slice is a view, so raw weights can sit at an unaligned offset.
  for (const shift of [1, 2, 3]) {
    const buffer = Buffer.concat([Buffer.alloc(shift), Buffer.from(bytes)]).subarray(shift);
    assert.deepEqual(quantizeModel(buffer).bytes, expected, `shift ${shift}`);
  }
});

// ---- bad input ----------------------------------------------------------------------------------

function assertInvalidModel(bytes: Uint8Array, what: string): void {
  assert.throws(
    () => quantizeModel(bytes),
    (e: unknown) => {
      assert.ok(e instanceof QuantizeError, `${what}: ${String(e)}`);
      assert.equal(e.code, 'quantize-invalid-model', what);
      assert.match(e.message, /not (an|a complete) ONNX model/, what);
      return true;
    },
  );
}

test('bytes that are not ONNX are refused with a clear error', () => {
  assertInvalidModel(new Uint8Array(0), 'empty');
  assertInvalidModel(new TextEncoder().encode('this is not an onnx model, just text'), 'text');
  assertInvalidModel(
    Uint8Array.from(randomRows(1, 256, 77), (v) => Math.floor((v + 4) * 32) & 255),
    'random bytes',
  );
});

test('a truncated model is refused with a clear error wherever it is cut', () => {
  const bytes = buildMlp({ sizes: [64, 128, 10], seed: 2 }).bytes;
  for (let i = 1; i < 40; i++) {
    const cut = Math.floor((bytes.length * i) / 40);
    assertInvalidModel(bytes.subarray(0, cut), `cut at ${cut} of ${bytes.length}`);
  }
  assertInvalidModel(bytes.subarray(0, bytes.length - 1), 'last byte missing');
});

test('bad options are refused', () => {
  const bytes = buildMlp({ sizes: [64, 128, 10] }).bytes;
  assert.throws(() => quantizeModel(bytes, { format: 'int4' as QuantFormat }), /unknown format "int4"/);
  assert.throws(() => quantizeModel(bytes, { minElements: -1 }), /minElements/);
});

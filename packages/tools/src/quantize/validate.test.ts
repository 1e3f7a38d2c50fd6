import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import type { Manifest } from '@ferry/core';
import { GraphBuilder } from '../onnx/index.js';
import { tinyClassifier, type ClassifierInstance } from '@ferry/test-kit';
import { QuantizeError } from './errors.js';
import { buildMlp, gaussian, seededRandom } from './mlp-model.js';
import { quantizeModel } from './quantize-model.js';
import { gatedFigure, validate } from './validate.js';
import { parseValidationData } from './validation-data.js';

function randomRows(rows: number, width: number, seed: number): Float32Array {
  const normal = gaussian(seededRandom(seed));
  return Float32Array.from({ length: rows * width }, () => normal());
}

async function argmaxes(bytes: Uint8Array, x: Float32Array, rows: number, width: number): Promise<number[]> {
  const s = await ort.InferenceSession.create(bytes);
  const y = (await s.run({ x: new ort.Tensor('float32', x, [rows, width]) })).y!;
  await s.release();
  const classes = y.dims[1]!;
  const d = y.data as Float32Array;
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let j = 1; j < classes; j++) if (d[r * classes + j]! > d[r * classes + best]!) best = j;
    return best;
  });
}

test('validate compares outputs, top-1 choices and accuracy of the float and the quantised model', async () => {
  const mlp = buildMlp({ sizes: [32, 256, 10], seed: 12 });
  const int8 = quantizeModel(mlp.bytes, { minElements: 0 }).bytes;
  const rows = 200;
  const x = randomRows(rows, 32, 13);
  // Labels: the float model's own answers, except every tenth row, where they are wrong on purpose.
  const fpChoice = await argmaxes(mlp.bytes, x, rows, 32);
  const labels = fpChoice.map((c, r) => (r % 10 === 0 ? (c + 1) % 10 : c));
  const int8Choice = await argmaxes(int8, x, rows, 32);

  const report = await validate(
    mlp.bytes,
    int8,
    { inputs: { x: { dtype: 'float32', dims: [rows, 32], data: x } }, labels },
    { batchSize: rows },
  );
  assert.equal(report.rows, rows);
  assert.equal(report.outputs.length, 1);
  const o = report.outputs[0]!;
  assert.equal(o.name, 'y');
  assert.ok(o.maxAbsDiff > 0 && o.maxAbsDiff < 0.1, `max |Δ| ${o.maxAbsDiff}`);
  assert.ok(o.meanAbsDiff <= o.maxAbsDiff);
  assert.ok(o.maxAbsValue <= 1);

  const c = report.classification!;
  assert.equal(c.output, 'y');
  const agree = fpChoice.filter((v, i) => v === int8Choice[i]).length;
  assert.equal(c.disagreements, rows - agree);
  assert.equal(c.agreement, agree / rows);
  assert.equal(c.fp32Accuracy, 0.9);
  assert.equal(c.int8Accuracy, int8Choice.filter((v, i) => v === labels[i]).length / rows);
  assert.ok(Math.abs(c.accuracyDelta! - (c.fp32Accuracy! - c.int8Accuracy!)) < 1e-12);
  assert.deepEqual(gatedFigure(report), { name: 'accuracy delta (fp32 - int8)', value: c.accuracyDelta });
});

test('without labels, a probability output is still compared top-1, and the gate is the disagreement rate', async () => {
  const mlp = buildMlp({ sizes: [32, 256, 10], seed: 12 });
  // A badly "quantised" stand-in: different weights altogether, so many rows disagree.
  const other = buildMlp({ sizes: [32, 256, 10], seed: 99 });
  const rows = 64;
  const report = await validate(mlp.bytes, other.bytes, {
    inputs: { x: { dtype: 'float32', dims: [rows, 32], data: randomRows(rows, 32, 1) } },
  });
  assert.equal(report.batchSize, 32);
  const c = report.classification!;
  assert.equal(c.fp32Accuracy, undefined);
  assert.ok(c.disagreementRate > 0.5, `disagreement ${c.disagreementRate}`);
  assert.deepEqual(gatedFigure(report), { name: 'top-1 disagreement rate', value: c.disagreementRate });
});

test('a model that is not a classifier is compared output by output', async () => {
  const mlp = buildMlp({ sizes: [32, 256, 4], seed: 3, softmax: false });
  const int8 = quantizeModel(mlp.bytes, { minElements: 0 }).bytes;
  const report = await validate(
    mlp.bytes,
    int8,
    { inputs: { x: { dtype: 'float32', dims: [40, 32], data: randomRows(40, 32, 2) } } },
    { batchSize: 7 },
  );
  assert.equal(report.classification, null);
  const g = gatedFigure(report);
  assert.equal(g.name, 'largest absolute output difference');
  assert.equal(g.value, report.outputs[0]!.maxAbsDiff);
  assert.ok(g.value > 0);
});

test('validate refuses data that does not fit', async () => {
  const mlp = buildMlp({ sizes: [32, 256, 10] });
  const x = { dtype: 'float32' as const, dims: [4, 32], data: randomRows(4, 32, 1) };
  const refuses = (p: Promise<unknown>, re: RegExp) =>
    assert.rejects(
      p,
      (e: unknown) => e instanceof QuantizeError && e.code === 'quantize-invalid-data' && re.test(e.message),
    );
  await refuses(validate(mlp.bytes, mlp.bytes, { inputs: { x }, labels: [1, 2] }), /2 labels for 4 rows/);
  await refuses(validate(mlp.bytes, mlp.bytes, { inputs: { z: x } }), /lacks model input\(s\) "x"/);
  await refuses(validate(mlp.bytes, mlp.bytes, { inputs: { x: { ...x, dims: [4, 31] } } }), /hold 124 values/);
  await assert.rejects(
    validate(mlp.bytes, new Uint8Array([1, 2, 3]), { inputs: { x } }),
    (e: unknown) => e instanceof QuantizeError && e.code === 'quantize-runtime-failed',
  );
});

// ---- reading validation files -------------------------------------------------------------------

test('JSON Lines rows that name the model inputs become tensors, with nested rows flattened and labels read', () => {
  const g = new GraphBuilder();
  g.input('img', 'float32', ['batch', 2, 3]).output('y', 'float32', ['batch', 2]);
  g.floatInitializer('s', [1]);
  g.node('Mul', [g.op('ReduceSum', ['img'], { axes: [2], keepdims: 0 }, { name: 'sum' }), 's'], ['y']);
  const text = ['{"img": [[1, 2, 3], [4, 5, 6]], "label": 1}', '', '{"img": [[0, 0, 0], [1, 1, 1]], "label": 0}'].join(
    '\n',
  );
  const src = parseValidationData(text, { model: g.toBytes() });
  assert.equal(src.rows, 2);
  assert.deepEqual(src.labels, [1, 0]);
  const t = src.slice(0, 2).img!;
  assert.deepEqual(t.dims, [2, 2, 3]);
  assert.deepEqual(Array.from(t.data as Float32Array), [1, 2, 3, 4, 5, 6, 0, 0, 0, 1, 1, 1]);
  assert.deepEqual(src.slice(1, 2).img!.dims, [1, 2, 3]);
});

test('instances carrying contract features are encoded by the ferry.yaml, and class names map to indices', async () => {
  const fx = tinyClassifier();
  const manifest = fx.manifest as Manifest;
  const instances: Array<ClassifierInstance & { label: string }> = [
    { amount: 72.5, items: 2, member: true, color: 'green', label: 'yes' },
    { amount: 10, items: 0, member: false, color: 'red', label: 'no' },
    { amount: 30, items: 3, member: false, color: 'blue', label: 'no' },
  ];
  const src = parseValidationData(instances.map((i) => JSON.stringify(i)).join('\n'), { model: fx.onnx, manifest });
  assert.deepEqual(src.labels, [1, 0, 0]);
  assert.deepEqual(src.labelNames, ['no', 'yes']);
  const t = src.slice(0, 3).features!;
  assert.deepEqual(t.dims, [3, 9]);
  assert.ok(Math.abs((t.data as Float32Array)[0]! - (72.5 - 50) / 20) < 1e-6);

  const int8 = quantizeModel(fx.onnx, { minElements: 0 }).bytes;
  const report = await validate(fx.onnx, int8, src);
  const expected = instances.map((i) => {
    const p = fx.reference(i);
    return p[1]! > p[0]! ? 1 : 0;
  });
  assert.equal(report.classification!.fp32Accuracy, expected.filter((c, i) => c === src.labels![i]).length / 3);
});

test("raw tensor JSON, in Ferry's form and the Open Inference Protocol form, with a limit", () => {
  const model = buildMlp({ sizes: [4, 8, 2] }).bytes;
  const ferry = JSON.stringify({
    inputs: {
      x: {
        dims: [3, 4],
        data: [
          [1, 2, 3, 4],
          [5, 6, 7, 8],
          [9, 10, 11, 12],
        ],
      },
    },
    labels: [0, 1, 1],
  });
  const a = parseValidationData(ferry, { model });
  assert.equal(a.rows, 3);
  assert.deepEqual(Array.from(a.slice(2, 3).x!.data as Float32Array), [9, 10, 11, 12]);
  const oip = JSON.stringify({
    inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }],
  });
  const b = parseValidationData(oip, { model });
  assert.equal(b.rows, 2);
  assert.equal(b.labels, undefined);
  const limited = parseValidationData(ferry, { model, limit: 2 });
  assert.equal(limited.rows, 2);
  assert.deepEqual(limited.labels, [0, 1]);
  // An array of instances, and a v1 request body, are read like JSON Lines.
  assert.equal(parseValidationData(JSON.stringify([{ x: [1, 2, 3, 4] }]), { model }).rows, 1);
  assert.equal(
    parseValidationData(JSON.stringify({ instances: [{ x: [1, 2, 3, 4] }, { x: [0, 0, 0, 0] }] }), { model }).rows,
    2,
  );
});

test('unreadable validation data gets a message that says where and why', () => {
  const model = buildMlp({ sizes: [4, 8, 2] }).bytes;
  const fails = (text: string, re: RegExp, manifest?: Manifest) =>
    assert.throws(
      () => parseValidationData(text, { model, ...(manifest && { manifest }) }, 'data.jsonl'),
      (e: unknown) => e instanceof QuantizeError && e.code === 'quantize-invalid-data' && re.test(e.message),
    );
  fails('', /data.jsonl is empty/);
  fails('{"x": [1, 2, 3, 4]}\n{"x": [1, 2, 3, 4]\n', /line 2: not JSON/);
  fails('{"x": [1, 2, 3, 4]}\n[1, 2]\n', /line 2: each line must be a JSON object/);
  fails('{"features": [1, 2, 3, 4]}\n', /no key for model input\(s\) "x".*--manifest/);
  fails('{"x": [1, 2, 3]}\n{"x": [1, 2, 3]}\n', /row 1: "x" has 3 values, the model takes 4 per row/);
  fails('{"x": [1, 2, 3, "a"]}\n', /does not fit float32/);
  fails('{"x": [1, 2, 3, 4], "label": "cat"}\n', /label "cat" is not one of the model's classes/);
  fails('{"x": [1, 2, 3, 4], "label": 1}\n{"x": [1, 2, 3, 4]}\n', /row 2 has no "label"/);
  fails(JSON.stringify({ inputs: { x: { dims: [2, 4], data: [1, 2] } } }), /dims \[2, 4\] hold 8 values, data has 2/);
  const fx = tinyClassifier();
  assert.throws(
    () =>
      parseValidationData('{"amount": "lots", "items": 1, "member": true, "color": "red"}', {
        model: fx.onnx,
        manifest: fx.manifest as Manifest,
      }).slice(0, 1),
    (e: unknown) => e instanceof QuantizeError && /rows 1..1 do not satisfy the model's contract/.test(e.message),
  );
});

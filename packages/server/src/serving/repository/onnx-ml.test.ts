import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { readOnnxMl } from './onnx-ml.js';

// The committed scikit-learn fixtures (packages/test-kit/fixtures/onnx-ml), read from this file's dist location.
const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../../../test-kit/fixtures/onnx-ml/${name}.onnx`, import.meta.url)));

test('a ZipMap classifier: labels read from the model, the ZipMap replaced by an Identity with a tensor output', () => {
  const info = readOnnxMl(fixture('iris-forest'));
  assert.equal(info.classical, true);
  assert.deepEqual(info.labels, ['setosa', 'versicolor', 'virginica']);
  assert.equal(info.labelType, 'string');
  assert.equal(info.probabilities, 'output_probability');
  assert.deepEqual(info.zipMapOutputs, ['output_probability']);
  const graph = onnxProto.onnx.ModelProto.decode(info.bytes).graph!;
  assert.ok(!graph.node!.some((n) => n.opType === 'ZipMap'));
  const identity = graph.node!.find((n) => n.output?.[0] === 'output_probability')!;
  assert.equal(identity.opType, 'Identity');
  assert.deepEqual(identity.input, ['probabilities']);
  const out = graph.output!.find((o) => o.name === 'output_probability')!;
  assert.equal(out.type?.tensorType?.elemType, 1);
  assert.equal(Number(out.type?.tensorType?.shape?.dim?.[1]?.dimValue), 3);
});

test('integer labels, one-hot categories of a string column, regressors; other graphs are left alone', () => {
  const wine = readOnnxMl(fixture('wine-logistic'));
  assert.deepEqual(wine.labels, ['0', '1', '2']);
  assert.equal(wine.labelType, 'integer');
  const diabetes = readOnnxMl(fixture('diabetes-boosting'));
  assert.equal(diabetes.regressor, true);
  assert.equal(diabetes.labels, undefined);
  assert.deepEqual(diabetes.categories.get('sex'), ['F', 'M']);
  assert.deepEqual(diabetes.zipMapOutputs, []);
  const plain = fixture('gather-index');
  const info = readOnnxMl(plain);
  assert.equal(info.classical, false);
  assert.equal(info.bytes, plain, 'a graph without ONNX-ML operators is served byte for byte');
});

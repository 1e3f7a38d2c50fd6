// A model's size on disk counts the external data files its graph names, not only the graph file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { modelBytes } from './model-bytes.js';

const { onnx } = onnxProto;
const FLOAT = 1;

/** A graph whose weights live in external files: two tensors in `weights.bin`, one in `sub/more.bin`. */
function externalModel(): Uint8Array {
  const ext = (location: string, offset: number, length: number) =>
    onnx.TensorProto.create({
      dataType: FLOAT,
      dims: [length / 4],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ],
    });
  const w1 = Object.assign(ext('weights.bin', 0, 4000), { name: 'w1' });
  const w2 = Object.assign(ext('weights.bin', 4000, 2000), { name: 'w2' });
  // A constant node's tensor inside an If's branch: subgraphs count too.
  const branch = onnx.GraphProto.create({
    name: 'then',
    node: [
      onnx.NodeProto.create({
        opType: 'Constant',
        output: ['c'],
        attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: ext('sub/more.bin', 0, 800) }],
      }),
    ],
  });
  const graph = onnx.GraphProto.create({
    name: 'g',
    initializer: [w1, w2],
    node: [
      onnx.NodeProto.create({
        opType: 'If',
        input: ['cond'],
        output: ['y'],
        attribute: [{ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch }],
      }),
    ],
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, graph })).finish();
}

test('a model with external data: the graph file plus each data file it names, once each', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-model-bytes-'));
  try {
    const model = join(dir, 'model.onnx');
    writeFileSync(model, externalModel());
    writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(6000));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'more.bin'), Buffer.alloc(800));
    // Files the graph does not name (a card, a reference set) are not the model's.
    writeFileSync(join(dir, 'reference.jsonl'), Buffer.alloc(50_000));
    assert.equal(modelBytes(model), statSync(model).size + 6000 + 800);
    // A graph file already past the bound is answered by its size, without reading it.
    assert.equal(modelBytes(model, statSync(model).size - 1), statSync(model).size);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a model without external data is its file; a missing data file counts nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-model-bytes-'));
  try {
    const model = join(dir, 'model.onnx');
    writeFileSync(model, externalModel());
    assert.equal(modelBytes(model), statSync(model).size);
    const mlp = new URL('../../../../../models/mlp-bench/1.0.0/model.onnx', import.meta.url);
    assert.equal(modelBytes(mlp.pathname), statSync(mlp).size);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from './graph-builder.js';
import { readModel } from './describe.js';
import { onnx } from './proto.js';
import { encodeModel, floatTensorData, makeTensorProto, tensorDims, isExternalTensor } from './tensor-proto.js';
import { OnnxGraphError } from './errors.js';

test('an initializer reads back as a Float32Array whether stored as raw_data or float_data', () => {
  const g = new GraphBuilder();
  g.input('x', 'float32', [2]).output('y', 'float32', [2]).floatInitializer('w', [1.5, -2.25]);
  g.node('Add', ['x', 'w'], ['y']);
  const model = readModel(g.toBytes());
  const w = model.graph!.initializer![0]!;
  assert.deepEqual(Array.from(floatTensorData(w)), [1.5, -2.25]);
  assert.deepEqual(tensorDims(w), [2]);
  const asFloats = onnx.TensorProto.create({ name: 'f', dims: [3], dataType: 1, floatData: [1, 2, 3] });
  assert.deepEqual(Array.from(floatTensorData(asFloats)), [1, 2, 3]);
  assert.throws(() => floatTensorData(onnx.TensorProto.create({ name: 'i', dims: [1], dataType: 7 })), OnnxGraphError);
  assert.throws(
    () =>
      floatTensorData(onnx.TensorProto.create({ name: 'short', dims: [4], dataType: 1, rawData: new Uint8Array(8) })),
    /raw data holds 8 bytes, dims need 16/,
  );
  const external = onnx.TensorProto.create({
    name: 'e',
    dims: [1],
    dataType: 1,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
  });
  assert.ok(isExternalTensor(external));
  assert.throws(() => floatTensorData(external), /external file/);
});

test('a decoded model edited with new initializers encodes back to a model that decodes the same', () => {
  const g = new GraphBuilder();
  g.input('x', 'float32', [2]).output('y', 'float32', [2]).floatInitializer('w', [1, 2]);
  g.node('Add', ['x', 'w'], ['y']);
  const model = readModel(g.toBytes());
  model.graph!.initializer!.push(makeTensorProto('q', [2, 2], new Int8Array([-1, 2, -3, 127])));
  const again = readModel(encodeModel(model));
  const q = again.graph!.initializer!.find((t) => t.name === 'q')!;
  assert.equal(q.dataType, 3);
  const raw = q.rawData!;
  assert.deepEqual(Array.from(new Int8Array(raw.buffer, raw.byteOffset, 4)), [-1, 2, -3, 127]);
  assert.throws(() => makeTensorProto('bad', [3], new Uint8Array(2)), /hold 3 elements, data has 2/);
});

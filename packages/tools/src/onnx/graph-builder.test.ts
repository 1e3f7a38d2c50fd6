import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, attr, describeModel, readModel, OnnxGraphError, OnnxDecodeError } from './index.js';

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `element ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

/** x[batch,3] · W[3,2] + b → softmax: a 2-class linear classifier. */
function linearSoftmax(): { bytes: Uint8Array; w: number[][]; b: number[] } {
  const w = [
    [0.5, -1],
    [2, 0.25],
    [-0.75, 1.5],
  ];
  const b = [0.1, -0.2];
  const g = new GraphBuilder({ producerVersion: 'test' });
  g.input('x', 'float32', ['batch', 3]).output('p', 'float32', ['batch', 2]);
  g.floatInitializer('w', w.flat(), [3, 2]).floatInitializer('b', b);
  const logits = g.op('Add', [g.op('MatMul', ['x', 'w']), 'b']);
  g.node('Softmax', [logits], ['p'], { axis: -1 });
  return { bytes: g.toBytes(), w, b };
}

test('MatMul + Add + Softmax runs in onnxruntime-node and matches a JS computation', async () => {
  const { bytes, w, b } = linearSoftmax();
  const session = await ort.InferenceSession.create(bytes);
  try {
    const x = [
      [1, 2, 3],
      [-1, 0.5, 0],
      [0, 0, 0],
      [10, -10, 4],
    ];
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x.flat()), [4, 3]) });
    const p = out.p!;
    assert.deepEqual(p.dims, [4, 2]);
    const expected = x.flatMap((row) => {
      const z = [0, 1].map((j) => row.reduce((s, v, i) => s + v * w[i]![j]!, b[j]!));
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      return e.map((v) => v / (e[0]! + e[1]!));
    });
    close(p.data as Float32Array, expected);
  } finally {
    await session.release();
  }
});

test('float attributes, int64 initializers and anonymous dims reach the runtime intact', async () => {
  // Gemm with alpha=0.5, beta=2 and transB, then Reshape through an int64 shape constant.
  const g = new GraphBuilder();
  g.input('a', 'float32', [-1, 2]).output('y', 'float32', [null]);
  g.floatInitializer('bt', [1, 2, 3, 4, 5, 6], [3, 2]); // B transposed: B is [2,3]
  g.floatInitializer('c', [1, 1, 1]);
  g.intInitializer('flat', [-1]);
  const gemm = g.op('Gemm', ['a', 'bt', 'c'], { alpha: attr.float(0.5), beta: attr.float(2), transB: 1 });
  g.node('Reshape', [gemm, 'flat'], ['y']);
  const session = await ort.InferenceSession.create(g.toBytes());
  try {
    const out = await session.run({ a: new ort.Tensor('float32', Float32Array.from([1, 1, 2, 0]), [2, 2]) });
    // row [1,1]: B·row = [3, 7, 11] → *0.5 + 2 = [3.5, 5.5, 7.5]; row [2,0]: [2, 6, 10] → [3, 5, 7]
    close(out.y!.data as Float32Array, [3.5, 5.5, 7.5, 3, 5, 7]);
  } finally {
    await session.release();
  }
});

test('describeModel round-trips names, dtypes, shapes, opset and producer', async () => {
  const g = new GraphBuilder({ producerName: 'ferry-test', producerVersion: '9.9' });
  g.input('ids', 'int64', ['batch', 'seq'])
    .input('mask', 'bool', ['batch', 'seq'])
    .input('scale', 'float64', [])
    .output('pooled', 'int64', ['batch'])
    .output('any', 'bool', ['batch', 1])
    .output('copy', 'float64', []);
  g.intInitializer('axis1', [1]);
  g.node('ReduceSum', ['ids', 'axis1'], ['pooled'], { keepdims: 0 });
  g.node('Identity', ['scale'], ['copy']);
  const maskInt = g.op('Cast', ['mask'], { to: 7 });
  const hits = g.op('ReduceMax', [maskInt], { axes: [1], keepdims: 1 });
  g.node('Cast', [hits], ['any'], { to: 9 });
  const bytes = g.toBytes();
  // The runtime accepting the model shows the declared types are consistent with the ops.
  await (await ort.InferenceSession.create(bytes)).release();
  const d = describeModel(bytes);
  assert.deepEqual(d, {
    inputs: [
      { name: 'ids', kind: 'tensor', dtype: 'int64', shape: [-1, -1] },
      { name: 'mask', kind: 'tensor', dtype: 'bool', shape: [-1, -1] },
      { name: 'scale', kind: 'tensor', dtype: 'float64', shape: [] },
    ],
    outputs: [
      { name: 'pooled', kind: 'tensor', dtype: 'int64', shape: [-1] },
      { name: 'any', kind: 'tensor', dtype: 'bool', shape: [-1, 1] },
      { name: 'copy', kind: 'tensor', dtype: 'float64', shape: [] },
    ],
    opset: 17,
    irVersion: 8,
    producer: 'ferry-test',
    producerVersion: '9.9',
  });
});

test('describeModel leaves out graph inputs that are initializers and reports unknown ranks as null', () => {
  const model = readModel(linearSoftmax().bytes);
  model.graph!.input!.push({
    name: 'w',
    type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 3 }, { dimValue: 2 }] } } },
  });
  model.graph!.output![0]!.type!.tensorType!.shape = null;
  const d = describeModel(model);
  assert.deepEqual(
    d.inputs.map((i) => i.name),
    ['x'],
  );
  assert.deepEqual(d.outputs[0], { name: 'p', kind: 'tensor', dtype: 'float32', shape: null });
});

test('the same graph always serialises to the same bytes', () => {
  assert.deepEqual(linearSoftmax().bytes, linearSoftmax().bytes);
});

test('string and metadata round-trip through readModel', () => {
  const g = new GraphBuilder();
  g.input('s', 'string', ['batch']).output('t', 'string', ['batch']);
  g.initializer('vocab', { dtype: 'string', dims: [2], data: ['naïve', 'b'] });
  g.node('Identity', ['s'], ['t']);
  g.metadata('ferry.model', 'strings');
  const m = readModel(g.toBytes());
  assert.equal(new TextDecoder().decode(m.graph!.initializer![0]!.stringData![0]), 'naïve');
  assert.deepEqual(
    m.metadataProps.map((p) => [p.key, p.value]),
    [['ferry.model', 'strings']],
  );
});

test('the builder refuses broken graphs with a message naming the culprit', () => {
  const undefinedInput = new GraphBuilder().input('x', 'float32', [1]).output('y', 'float32', [1]);
  undefinedInput.node('Add', ['x', 'nope'], ['y']);
  assert.throws(
    () => undefinedInput.toBytes(),
    (e: unknown) => e instanceof OnnxGraphError && /reads "nope"/.test(e.message),
  );

  const unproduced = new GraphBuilder().input('x', 'float32', [1]).output('y', 'float32', [1]);
  assert.throws(() => unproduced.toBytes(), /output "y" is not produced/);

  const dup = new GraphBuilder().input('x', 'float32', [1]);
  assert.throws(() => dup.floatInitializer('x', [1]), /already defined/);
  assert.throws(() => dup.floatInitializer('w', [1, 2, 3], [2, 2]), /hold 4 elements, data has 3/);
  assert.throws(() => dup.node('LeakyRelu', ['x'], ['z'], { alpha: 0.1 }), /attr\.float\(0\.1\)/);
});

test('readModel refuses bytes that are not an ONNX model', () => {
  assert.throws(() => readModel(new TextEncoder().encode('name: not-a-model\n')), OnnxDecodeError);
  assert.throws(() => readModel(new Uint8Array(0)), OnnxDecodeError);
});

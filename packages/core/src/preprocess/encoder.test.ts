import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileEncoder } from './encoder.js';
import { compileStep, listSteps } from './registry.js';
import { ContractError, InputError } from '../errors.js';
import type { Manifest } from '../contract/schema.js';

const near = (a: ArrayLike<number>, b: number[], tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

const tabular: Manifest = {
  inputs: [
    { name: 'distance', type: 'number', min: 0 },
    { name: 'hour', type: 'number' },
    { name: 'month', type: 'integer' },
    { name: 'origin', type: 'category', values: ['ATL', 'BOS', 'SFO'], unknown: 'ignore' },
    { name: 'member', type: 'boolean' },
    { name: 'tip', type: 'number', optional: true },
  ],
  preprocess: [
    {
      input: 'features',
      columns: [
        { feature: 'distance', steps: [{ op: 'standardize', mean: 1000, std: 500 }] },
        { feature: 'hour', steps: [{ op: 'cyclic', period: 24 }] },
        { feature: 'month', steps: [{ op: 'one-hot', values: [1, 2, 3] }] },
        { feature: 'origin', steps: [{ op: 'one-hot' }] },
        { feature: 'origin' },
        { feature: 'member' },
        { feature: 'tip', steps: [{ op: 'impute', value: 2 }, { op: 'clip', max: 10 }, { op: 'log1p' }] },
      ],
    },
  ],
  outputs: [{ name: 'p' }],
};

test('tabular columns are encoded left to right into one float32 row per instance', () => {
  const enc = compileEncoder(tabular);
  assert.deepEqual(enc.inputNames, ['features']);
  assert.equal(enc.batchable, true);
  const out = enc.encode([
    { distance: 1500, hour: 6, month: 2, origin: 'SFO', member: true, tip: 100 },
    { distance: 0, hour: 0, month: 7, origin: 'XXX', member: false },
  ]);
  const t = out.features!;
  assert.equal(t.dtype, 'float32');
  assert.deepEqual(t.dims, [2, 12]);
  const row = (i: number) => Array.from(t.data as Float32Array).slice(i * 12, (i + 1) * 12);
  near(row(0), [1, 1, 0, 0, 1, 0, 0, 0, 1, 2, 1, Math.log1p(10)]);
  // unknown origin: all-zero one-hot and index -1; month 7 outside the listed values: zeros; tip imputed.
  near(row(1), [-2, 0, 1, 0, 0, 0, 0, 0, 0, -1, 0, Math.log1p(2)]);
});

test('a missing value without an impute step is refused, naming the field', () => {
  const enc = compileEncoder({
    ...tabular,
    preprocess: [{ input: 'features', columns: [{ feature: 'tip' }] }],
    inputs: [tabular.inputs[5]!],
  });
  assert.throws(
    () => enc.encode([{}]),
    (e: unknown) => e instanceof InputError && e.issues[0]!.pointer === '/instances/0/tip',
  );
});

test('raw tensor features are stacked along the batch dimension; dynamic inner dims come from the data', () => {
  const enc = compileEncoder({
    inputs: [
      { name: 'ids', type: 'tensor', dtype: 'int64', shape: [-1, -1] },
      { name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, 2, 2] },
    ],
    outputs: [{ name: 'y' }],
  });
  const out = enc.encode([
    {
      ids: [1, 2, 3],
      x: [
        [1, 2],
        [3, 4],
      ],
    },
    {
      ids: [4, 5, 6],
      x: [
        [5, 6],
        [7, 8],
      ],
    },
  ]);
  assert.deepEqual(out.ids!.dims, [2, 3]);
  assert.deepEqual(Array.from(out.ids!.data as BigInt64Array), [1n, 2n, 3n, 4n, 5n, 6n]);
  assert.deepEqual(out.x!.dims, [2, 2, 2]);
  near(out.x!.data as Float32Array, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.throws(
    () =>
      enc.encode([
        {
          ids: [1, 2, 3],
          x: [
            [1, 2],
            [3, 4],
          ],
        },
        {
          ids: [4, 5],
          x: [
            [5, 6],
            [7, 8],
          ],
        },
      ]),
    (e: unknown) => e instanceof InputError && e.issues[0]!.pointer === '/instances/1/ids',
  );
  assert.throws(
    () => enc.encode([{ ids: [1], x: [[1, 2], [3]] }]),
    (e: unknown) => e instanceof InputError && e.issues[0]!.pointer === '/instances/0/x/1',
  );
});

test('a model without a batch dimension takes exactly one instance holding the whole tensor', () => {
  const enc = compileEncoder({
    inputs: [{ name: 's', type: 'tensor', dtype: 'float32', shape: [2, 1, 3] }],
    outputs: [{ name: 'y' }],
  });
  assert.equal(enc.batchable, false);
  assert.deepEqual(enc.encode([{ s: [[[1, 2, 3]], [[4, 5, 6]]] }]).s!.dims, [2, 1, 3]);
  assert.throws(() => enc.encode([{ s: [[[1, 2, 3]], [[4, 5, 6]]] }, { s: [[[1, 2, 3]], [[4, 5, 6]]] }]), InputError);
});

test('bad compositions are refused at compile time with the manifest path', () => {
  const bad = (columns: unknown[], inputs = tabular.inputs): ContractError => {
    try {
      compileEncoder({ ...tabular, inputs, preprocess: [{ input: 'features', columns: columns as never }] });
    } catch (e) {
      assert.ok(e instanceof ContractError, String(e));
      return e;
    }
    throw new Error('expected a ContractError');
  };
  assert.equal(bad([{ feature: 'nope' }]).path, '/preprocess/0/columns/0/feature');
  assert.equal(
    bad([{ feature: 'distance', steps: [{ op: 'frobnicate' }] }]).path,
    '/preprocess/0/columns/0/steps/0/op',
  );
  assert.equal(
    bad([{ feature: 'distance', steps: [{ op: 'standardize', mean: 0, std: 0 }] }]).path,
    '/preprocess/0/columns/0/steps/0/std',
  );
  assert.equal(bad([{ feature: 'distance', steps: [{ op: 'one-hot' }] }]).path, '/preprocess/0/columns/0/steps/0');
  assert.equal(
    bad([{ feature: 'distance', steps: [{ op: 'min-max', min: 1, max: 1 }] }]).path,
    '/preprocess/0/columns/0/steps/0',
  );
  assert.match(bad([{ feature: 'distance' }]).message, /not used by any preprocess binding/);
  assert.match(bad([{ feature: 'distance' }], [{ name: 'distance', type: 'string' }]).message, /end in a string/);
});

test('every registered step documents itself and validates its parameters', () => {
  const ops = listSteps().map((s) => s.op);
  for (const op of ['identity', 'impute', 'standardize', 'min-max', 'clip', 'log1p', 'cyclic', 'one-hot', 'index'])
    assert.ok(ops.includes(op), op);
  for (const s of listSteps()) assert.ok(s.description.length > 10, s.op);
  const feature = { name: 'v', type: 'category' as const, values: ['a', 'b'] };
  const idx = compileStep({ op: 'index' }, { kind: 'category' }, { feature, path: '' });
  assert.equal(idx.apply('b'), 1);
  assert.equal(idx.apply('z'), -1);
  assert.throws(
    () => compileStep({ op: 'clip', min: 'low' }, { kind: 'scalar' }, { feature, path: '/p' }),
    /bad parameters/,
  );
});

test('string and int64 bindings feed ONNX-ML style [N, 1] inputs (a graph that one-hot encodes itself)', () => {
  const m: Manifest = {
    inputs: [
      { name: 'sex', type: 'category', values: ['F', 'M'] },
      { name: 'note', type: 'string', optional: true },
      { name: 'visits', type: 'integer' },
    ],
    preprocess: [
      { input: 'sex', dtype: 'string', columns: [{ feature: 'sex' }] },
      { input: 'note', dtype: 'string', columns: [{ feature: 'note' }] },
      { input: 'visits', dtype: 'int64', columns: [{ feature: 'visits' }] },
    ],
    outputs: [{ name: 'variable' }],
  };
  const enc = compileEncoder(m);
  const out = enc.encode([
    { sex: 'M', note: 'a', visits: 3 },
    { sex: 'F', note: 'b', visits: 12 },
  ]);
  assert.deepEqual(out.sex, { dtype: 'string', dims: [2, 1], data: ['M', 'F'] });
  assert.deepEqual(out.note!.data, ['a', 'b']);
  assert.deepEqual(out.visits, { dtype: 'int64', dims: [2, 1], data: new BigInt64Array([3n, 12n]) });
  // A missing optional string has no value to send: named, not a crash.
  assert.throws(
    () => enc.encode([{ sex: 'M', visits: 1 }]),
    (e: unknown) => e instanceof InputError && e.issues[0]!.pointer === '/instances/0/note',
  );
  // A string tensor takes text as sent: steps or a number feature are contract errors at compile time.
  assert.throws(
    () => compileEncoder({ ...m, preprocess: [{ input: 'x', dtype: 'string', columns: [{ feature: 'visits' }] }] }),
    (e: unknown) => e instanceof ContractError && e.path === '/preprocess/0/columns/0/feature',
  );
  assert.throws(
    () =>
      compileEncoder({
        ...m,
        preprocess: [{ input: 'x', dtype: 'string', columns: [{ feature: 'sex', steps: [{ op: 'index' }] }] }],
      }),
    (e: unknown) => e instanceof ContractError && e.path === '/preprocess/0/columns/0/steps',
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parse } from 'yaml';
import { Value } from '@sinclair/typebox/value';
import { Manifest, compileEncoder, type Instance, type TensorValue } from '@ferry/core';
import {
  slowModel,
  tempModelRepository,
  tinyClassifier,
  tinyLinearModel,
  writeModelVersion,
  type FixtureModel,
} from './fixture-models.js';

function toOrt(t: TensorValue): ort.Tensor {
  return new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims);
}

/** Encodes instances exactly as the server will (through the manifest), runs them and returns output rows. */
async function serve<I extends Instance>(
  model: FixtureModel<I & Record<string, unknown>>,
  instances: I[],
  options?: ort.InferenceSession.SessionOptions,
): Promise<number[][]> {
  const feeds = compileEncoder(model.manifest).encode(instances);
  const session = await ort.InferenceSession.create(model.onnx, options);
  try {
    const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toOrt(v)])));
    const y = out[model.manifest.outputs[0]!.name]!;
    const width = y.dims[1]!;
    const data = Array.from(y.data as Float32Array);
    return instances.map((_, i) => data.slice(i * width, (i + 1) * width));
  } finally {
    await session.release();
  }
}

function assertRowsClose(actual: number[][], expected: number[][], tol: number): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((row, i) =>
    row.forEach((v, j) => {
      assert.ok(Math.abs(v - expected[i]![j]!) <= tol, `row ${i} col ${j}: ${v} vs ${expected[i]![j]}`);
    }),
  );
}

test('every fixture manifest satisfies the contract schema', () => {
  for (const m of [tinyLinearModel(), tinyClassifier(), slowModel(5)]) {
    assert.ok(Value.Check(Manifest, m.manifest), JSON.stringify([...Value.Errors(Manifest, m.manifest)][0]));
  }
});

test('tinyLinearModel matches its JS reference', async () => {
  const m = tinyLinearModel();
  const instances = [m.example, { x: [0, 0, 0, 0, 0, 0, 0, 0] }, { x: [-3, 1.5, 2, -0.5, 4, 8, -1, 0.25] }];
  assertRowsClose(await serve(m, instances), instances.map(m.reference), 1e-5);
  assert.deepEqual(m.reference({ x: [0, 0, 0, 0, 0, 0, 0, 0] }), [0.25]);
});

test('tinyClassifier, encoded through the manifest, matches its independent JS reference', async () => {
  const m = tinyClassifier();
  const instances = [
    m.example,
    { amount: 0, items: 0, member: false, color: 'red' },
    { amount: 400, items: 3, member: true, color: 'blue' },
    { amount: 50, items: 7, member: false, color: 'green' }, // items outside the one-hot values: all zeros
  ];
  const rows = await serve(m, instances);
  assertRowsClose(rows, instances.map(m.reference), 1e-5);
  for (const r of rows) assert.ok(Math.abs(r[0]! + r[1]! - 1) < 1e-6);
  // The reference is not trivially constant: the instances span both labels.
  assert.ok(rows.some((r) => r[1]! > 0.5) && rows.some((r) => r[1]! < 0.5));
});

test('slowModel takes roughly its target per inference, whatever the batch, and stays small', async () => {
  const m = slowModel();
  assert.ok(m.onnx.length < 10 * 1024 * 1024, `${m.onnx.length} bytes`);
  const session = await ort.InferenceSession.create(m.onnx);
  try {
    const run = async (rows: number): Promise<{ ms: number; y: Float32Array }> => {
      const x = Float32Array.from({ length: rows * 4 }, (_, i) => (i % 7) - 3);
      const t0 = performance.now();
      const out = await session.run({ x: new ort.Tensor('float32', x, [rows, 4]) });
      return { ms: performance.now() - t0, y: out.y!.data as Float32Array };
    };
    const one = await run(1);
    // Only a floor: the fixture must really be slow; how slow depends on the machine and its load.
    assert.ok(one.ms >= 100, `one inference took ${one.ms.toFixed(0)} ms`);
    const batch = await run(16);
    assert.ok(batch.ms >= 100, `a batch of 16 took ${batch.ms.toFixed(0)} ms`);
    const expected = Array.from({ length: 16 }, (_, r) =>
      m.reference({ x: [0, 1, 2, 3].map((c) => ((r * 4 + c) % 7) - 3) }),
    );
    assertRowsClose(
      Array.from(batch.y, (v) => [v]),
      expected,
      1e-4,
    );
  } finally {
    await session.release();
  }
});

test('writeModelVersion lays out a repository version folder', async () => {
  const repo = await tempModelRepository();
  try {
    const m = tinyClassifier();
    const dir = await writeModelVersion(repo.dir, 'tiny', '1.2.3', {
      onnx: m.onnx,
      manifest: m.manifest,
      files: { 'card.md': '# tiny\n' },
    });
    assert.equal(dir, join(repo.dir, 'tiny', '1.2.3'));
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'model.onnx'))), m.onnx);
    assert.deepEqual(parse(await readFile(join(dir, 'ferry.yaml'), 'utf8')), {
      name: 'tiny',
      version: '1.2.3',
      ...m.manifest,
    });
    assert.equal(await readFile(join(dir, 'card.md'), 'utf8'), '# tiny\n');
  } finally {
    await repo.remove();
  }
  await assert.rejects(stat(repo.dir));
});

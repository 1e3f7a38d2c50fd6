import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Repository } from '@ferry/server';
import { writeExample, versionDir } from '../lib/example-model.js';
import { MODELS_DIR } from '../lib/paths.js';
import { gaussian, mulberry32 } from '../lib/random.js';
import { describeModel } from '../lib/onnx.js';
import { LAYERS, mlpBench, mlpBenchLayers, mlpBenchOnnx, mlpBenchReference } from './build.js';

test('mlp-bench runs in onnxruntime-node and matches the same network in JS', async () => {
  const layers = mlpBenchLayers();
  const bytes = mlpBenchOnnx(layers);
  assert.deepEqual(describeModel(bytes).inputs, [{ name: 'x', kind: 'tensor', dtype: 'float32', shape: [-1, 256] }]);
  const normal = gaussian(mulberry32(99));
  const rows = 3;
  const x = Float32Array.from({ length: rows * LAYERS[0] }, normal);
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ x: new ort.Tensor('float32', x, [rows, LAYERS[0]]) });
    const p = out.probabilities!;
    assert.deepEqual(p.dims, [rows, 10]);
    const data = p.data as Float32Array;
    for (let r = 0; r < rows; r++) {
      const expected = mlpBenchReference(layers, x.subarray(r * 256, (r + 1) * 256));
      expected.forEach((e, c) =>
        assert.ok(Math.abs(data[r * 10 + c]! - e) < 1e-4, `row ${r} class ${c}: ${data[r * 10 + c]} vs ${e}`),
      );
    }
    // Random weights, but not degenerate: the rows do not all put their mass on one class.
    assert.ok(
      new Set(Array.from({ length: rows }, (_, r) => Array.from(data.subarray(r * 10, r * 10 + 10)).join())).size ===
        rows,
    );
  } finally {
    await session.release();
  }
});

test('mlp-bench is rebuilt byte for byte, and the committed ferry.yaml and card.md are current', async () => {
  const a = await mlpBench.build();
  const b = await mlpBench.build();
  assert.deepEqual(a['model.onnx'], b['model.onnx']);
  const onnx = a['model.onnx'] as Uint8Array;
  assert.ok(onnx.length > 5_000_000 && onnx.length < 6_000_000, `${onnx.length} bytes`);
  for (const file of ['ferry.yaml', 'card.md']) {
    assert.equal(
      readFileSync(join(versionDir(mlpBench, MODELS_DIR), file), 'utf8'),
      a[file],
      `${file}: run npm run models -- --force --only mlp-bench`,
    );
  }
});

test('the server loads the mlp-bench version folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-mlp-'));
  try {
    await writeExample(mlpBench, dir);
    const v = Repository.load(dir).resolve('mlp-bench');
    assert.equal(v.version, '1.0.0');
    assert.deepEqual(v.manifest.batching, { maxBatchSize: 32, maxQueueDelayUs: 200 });
    assert.deepEqual(v.manifest.postprocess, {
      kind: 'classification',
      output: 'probabilities',
      labels: Array.from({ length: 10 }, (_, i) => `class_${i}`),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

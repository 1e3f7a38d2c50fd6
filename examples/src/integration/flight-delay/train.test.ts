import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Repository } from '@ferry/server';
import { compileEncoder, type TensorValue } from '@ferry/core';
import { MODELS_DIR } from '../../lib/paths.js';
import { versionDir } from '../../lib/example-model.js';
import { loadFlights, parseFlight } from '../../flight-delay/data.js';
import { accuracy, logLoss, rocAuc } from '../../flight-delay/metrics.js';
import { checkWithRuntime, flightDelay, trainFlightDelay, LABELS } from '../../flight-delay/train.js';

const flights = loadFlights();
const committedDir = versionDir(flightDelay, MODELS_DIR);

test('rocAuc is the rank statistic, with ties counting one half', () => {
  assert.equal(rocAuc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 0.75);
  assert.equal(rocAuc([0.5, 0.5, 0.5], [true, false, false]), 0.5);
  assert.equal(rocAuc([0.9, 0.1], [true, false]), 1);
  assert.equal(rocAuc([0.9, 0.1], [false, true]), 0);
  assert.ok(Number.isNaN(rocAuc([0.3, 0.4], [true, true])));
  assert.equal(accuracy([0.2, 0.7, 0.6], [false, true, false]), 2 / 3);
  assert.ok(Math.abs(logLoss([0.5, 0.5], [true, false]) - Math.log(2)) < 1e-12);
});

test('flights parse into the manifest features', () => {
  const f = parseFlight({ date: '2001/01/06 18:45', delay: 16, distance: 300, origin: 'SEA', destination: 'PDX' });
  // 6 January 2001 was a Saturday.
  assert.deepEqual(f.instance, {
    month: 1,
    dayOfWeek: 6,
    hour: 18.75,
    distance: 300,
    origin: 'SEA',
    destination: 'PDX',
  });
  assert.equal(flights.length, 20000);
});

test('training is deterministic: the same options give the same bytes', () => {
  const options = { limit: 3000, iterations: 60, referenceRows: 50, minAirportCount: 5 };
  const a = trainFlightDelay(options, flights);
  const b = trainFlightDelay(options, flights);
  assert.deepEqual(Object.keys(a.files).sort(), ['card.md', 'ferry.yaml', 'model.onnx', 'reference.jsonl']);
  for (const file of Object.keys(a.files)) assert.deepEqual(a.files[file], b.files[file], file);
  const c = trainFlightDelay({ ...options, seed: 7 }, flights);
  assert.notDeepEqual(c.files['model.onnx'], a.files['model.onnx'], 'a different seed should split differently');
});

test('the committed version folder is exactly what the generator produces, and its model matches the trainer', async () => {
  const result = trainFlightDelay({}, flights);
  for (const [file, content] of Object.entries(result.files)) {
    const committed = readFileSync(join(committedDir, file));
    const fresh = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content);
    assert.ok(
      committed.equals(fresh),
      `${file} differs from a fresh build: run npm run models -- --force --only flight-delay`,
    );
  }
  assert.ok((await checkWithRuntime(result)) <= 1e-5);
  const m = result.metrics;
  assert.equal(m.trainRows + m.testRows, 20000);
  // Weak but real signal; these bounds catch a broken pipeline (AUC 0.5) or a leak (AUC near 1).
  assert.ok(m.auc > 0.58 && m.auc < 0.75, `AUC ${m.auc}`);
  assert.ok(m.logLoss < m.baselineLogLoss, 'the model should beat the base rate on log loss');
  assert.ok(m.accuracy >= m.baselineAccuracy - 0.005);
});

test('the server loads the committed version, and its encoder plus model.onnx reproduce reference.jsonl', async () => {
  const repo = Repository.load(MODELS_DIR, ['flight-delay']);
  const version = repo.resolve('flight-delay@1');
  assert.equal(version.version, '1.0.0');
  assert.equal(version.manifest.reference, 'reference.jsonl');
  const encoder = compileEncoder(version.manifest);
  const rows = readFileSync(join(committedDir, 'reference.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(rows.length, 1000);
  const instances = rows.map(({ prediction: _p, ...features }) => features);
  const t = encoder.encode(instances).features as TensorValue;
  const session = await ort.InferenceSession.create(version.modelPath);
  try {
    const out = await session.run({ features: new ort.Tensor('float32', t.data as Float32Array, t.dims) });
    const p = out.probabilities!.data as Float32Array;
    rows.forEach((r, i) => {
      assert.ok(Math.abs(p[2 * i]! + p[2 * i + 1]! - 1) < 1e-5);
      assert.equal(LABELS[p[2 * i + 1]! > 0.5 ? 1 : 0], r.prediction, `row ${i}`);
    });
  } finally {
    await session.release();
  }
});

// Batching on by default: a contract without `batching` gets a size and delay measured at warm-up,
// every worker holds the model (one batch per worker at a time), and `ferry init` writes the measured
// values into the contract it creates. The measured sizes depend on this machine, so the tests hold
// the rule's invariants (powers of two within the probe's range) and the behaviour they cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startTestServer, tinyLinearModel, tempModelRepository } from '@ferry/test-kit';
import { initModel } from '../../serving/repository/init-model.js';

const lin = tinyLinearModel();
const isPowerOfTwo = (n: number) => Number.isInteger(n) && n >= 1 && n <= 128 && (n & (n - 1)) === 0;

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : NaN;
}

test('a contract without batching is batched with a measured size, on every worker', async () => {
  const t = await startTestServer(
    [
      { name: 'auto', version: '1.0.0', files: lin },
      {
        name: 'off',
        version: '1.0.0',
        files: { ...lin, manifest: { ...lin.manifest, batching: { enabled: false } } },
      },
      {
        name: 'set',
        version: '1.0.0',
        files: { ...lin, manifest: { ...lin.manifest, batching: { maxBatchSize: 4, instances: 1 } } },
      },
    ],
    { 'runtime.workers': 2 },
  );
  try {
    const app = t.server.app;
    const describe = async (name: string) => {
      const r = await app.inject({ method: 'GET', url: `/v1/models/${name}` });
      assert.equal(r.statusCode, 200, r.body);
      return r.json().versions[0].batching;
    };
    const auto = await describe('auto');
    assert.equal(auto.enabled, true);
    assert.equal(auto.source, 'measured');
    assert.equal(auto.concurrency, 2, 'one batch per worker of the pool');
    assert.ok(isPowerOfTwo(auto.maxBatchSize), `maxBatchSize ${auto.maxBatchSize}`);
    // The fixture's run costs a message round trip whatever its rows: batching pays, so a size > 1.
    assert.ok(auto.maxBatchSize >= 2, `maxBatchSize ${auto.maxBatchSize}`);
    assert.ok(auto.maxQueueDelayUs >= 0 && auto.maxQueueDelayUs <= 2000, `delay ${auto.maxQueueDelayUs}`);
    assert.deepEqual(await describe('off'), {
      enabled: false,
      maxBatchSize: 1,
      maxQueueDelayUs: 0,
      concurrency: 2,
      source: 'contract',
    });
    assert.deepEqual(await describe('set'), {
      enabled: true,
      maxBatchSize: 4,
      maxQueueDelayUs: 0,
      concurrency: 1,
      source: 'contract',
    });

    // A burst: every answer is its own row's, and the rows went in fewer inferences than requests.
    const n = 64;
    const rows = Array.from({ length: n }, (_, i) => ({ x: [i, 1, 2, 3, 4, 5, 6, i / 10] }));
    const before = await app.inject({ method: 'GET', url: '/metrics' });
    const count0 = metric(before.body, 'ferry_batch_size_count', 'model="auto"') || 0;
    const rs = await Promise.all(
      rows.map((row) => app.inject({ method: 'POST', url: '/v1/models/auto/predict', payload: { instances: [row] } })),
    );
    rs.forEach((r, i) => {
      assert.equal(r.statusCode, 200, r.body);
      const want = lin.reference(rows[i]!)[0]!;
      assert.ok(Math.abs(r.json().predictions[0].value - want) < 1e-4, `row ${i}: ${r.body} vs ${want}`);
    });
    const after = await app.inject({ method: 'GET', url: '/metrics' });
    const batches = metric(after.body, 'ferry_batch_size_count', 'model="auto"') - count0;
    assert.ok(batches > 0 && batches < n, `${n} requests ran in ${batches} inferences`);
  } finally {
    await t.close();
  }
});

test('ferry init writes the measured batching into the contract, and the server keeps it', async () => {
  const repo = await tempModelRepository();
  try {
    const onnx = join(repo.dir, 'lin.onnx');
    writeFileSync(onnx, lin.onnx);
    const modelsDir = join(repo.dir, 'models');
    const { dir, manifest } = await initModel({ onnxPath: onnx, repo: modelsDir, name: 'lin' });
    const text = readFileSync(join(dir, 'ferry.yaml'), 'utf8');
    assert.match(text, /# batching: measured on this machine/);
    const written = parse(text).batching as { maxBatchSize: number; maxQueueDelayUs: number };
    assert.deepEqual(written, manifest.batching);
    assert.ok(isPowerOfTwo(written.maxBatchSize), `maxBatchSize ${written.maxBatchSize}`);
    assert.ok(written.maxQueueDelayUs >= 0 && written.maxQueueDelayUs <= 2000);

    // Told not to measure, it writes no batching (the server then measures at warm-up).
    const quiet = await initModel({ onnxPath: onnx, repo: modelsDir, name: 'lin-q', measureBatching: false });
    assert.equal(quiet.manifest.batching, undefined);
    assert.doesNotMatch(readFileSync(join(quiet.dir, 'ferry.yaml'), 'utf8'), /batching/);
  } finally {
    await repo.remove();
  }
});

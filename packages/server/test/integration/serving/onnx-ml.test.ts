// scikit-learn exports (ONNX-ML operators, ending in a ZipMap) added with `ferry init` and nothing else:
// named features, labels read from the model, probabilities from before the ZipMap, answers equal to
// scikit-learn's own on held-out rows, hostile values refused as 4xx naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { onnxMlExpected, onnxMlFixture, tempModelRepository } from '@ferry/test-kit';
import { loadConfig } from '../../config/index.js';
import { createServer } from '../../app/create-server.js';
import { initModel } from '../../serving/repository/init-model.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);

test('scikit-learn ONNX-ML exports: ferry init writes a named-feature contract that serves their answers', async () => {
  const repo = await tempModelRepository();
  const expected = onnxMlExpected();
  try {
    const models = join(repo.dir, 'models');
    // The CLI, as a user runs it, on the file as exported (ZipMap and all).
    const { stdout } = await run(process.execPath, [CLI, 'init', onnxMlFixture('iris-forest'), '--repo', models]);
    assert.match(stdout, /iris-forest\/1\.0\.0\/ferry\.yaml/);
    await initModel({ onnxPath: onnxMlFixture('wine-logistic'), repo: models });
    await initModel({ onnxPath: onnxMlFixture('diabetes-boosting'), repo: models });

    const iris = parse(readFileSync(join(models, 'iris-forest/1.0.0/ferry.yaml'), 'utf8'));
    assert.deepEqual(
      iris.inputs.map((f: { name: string; type: string }) => [f.name, f.type]),
      ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'].map((n) => [n, 'number']),
    );
    assert.deepEqual(iris.postprocess, {
      kind: 'classification',
      output: 'output_probability',
      labels: ['setosa', 'versicolor', 'virginica'],
    });
    const wine = parse(readFileSync(join(models, 'wine-logistic/1.0.0/ferry.yaml'), 'utf8'));
    assert.equal(wine.inputs.length, 13);
    assert.equal(wine.inputs[12].name, 'x12');
    assert.deepEqual(wine.postprocess.labels, ['0', '1', '2'], 'integer class labels read from the ZipMap');
    const diabetes = parse(readFileSync(join(models, 'diabetes-boosting/1.0.0/ferry.yaml'), 'utf8'));
    assert.deepEqual(diabetes.inputs[0], { name: 'sex', type: 'category', values: ['F', 'M'] });
    assert.deepEqual(diabetes.postprocess, { kind: 'regression', output: 'variable' });

    const server = await createServer(
      loadConfig({
        env: {},
        overrides: {
          'models.dir': models,
          'runtime.workers': 1,
          'runtime.warmupRuns': 1,
          'log.level': 'silent',
          'store.url': 'sqlite::memory:',
        },
      }),
      { logger: false },
    );
    try {
      await server.loaded;
      assert.deepEqual(
        server.service.states().map((s) => [s.key, s.state]),
        [
          ['diabetes-boosting@1.0.0', 'ready'],
          ['iris-forest@1.0.0', 'ready'],
          ['wine-logistic@1.0.0', 'ready'],
        ].sort(),
      );
      const predict = (model: string, instances: unknown[]) =>
        server.app.inject({ method: 'POST', url: `/v1/models/${model}/predict`, payload: { instances } });

      const ir = await predict(
        'iris-forest',
        expected['iris-forest'].rows.map((r) => r.instance),
      );
      assert.equal(ir.statusCode, 200, ir.body);
      assert.equal(ir.json().predictions.length, expected['iris-forest'].rows.length);
      ir.json().predictions.forEach((p: { label: string; scores: Record<string, number> }, i: number) => {
        const want = expected['iris-forest'].rows[i]!;
        assert.equal(p.label, want.label, `iris row ${i}`);
        for (const [label, score] of Object.entries(want.probabilities))
          close(p.scores[label]!, score, 1e-5, `iris row ${i} ${label}`);
      });

      const wr = await predict(
        'wine-logistic',
        expected['wine-logistic'].rows.map((r) => Object.fromEntries(r.features.map((v, j) => [`x${j}`, v]))),
      );
      assert.equal(wr.statusCode, 200, wr.body);
      assert.equal(wr.json().predictions.length, 10);
      wr.json().predictions.forEach((p: { label: string; scores: Record<string, number> }, i: number) => {
        const want = expected['wine-logistic'].rows[i]!;
        assert.equal(p.label, String(want.label), `wine row ${i}`);
        for (const [label, score] of Object.entries(want.probabilities))
          close(p.scores[label]!, score, 1e-4, `wine row ${i} class ${label}`);
      });

      const dr = await predict(
        'diabetes-boosting',
        expected['diabetes-boosting'].rows.map((r) => r.instance),
      );
      assert.equal(dr.statusCode, 200, dr.body);
      assert.equal(dr.json().predictions.length, 10);
      dr.json().predictions.forEach((p: { value: number | number[] }, i: number) => {
        const value = Array.isArray(p.value) ? p.value[0]! : p.value;
        close(value, expected['diabetes-boosting'].rows[i]!.value, 1e-3, `diabetes row ${i}`);
      });

      // The probabilities are a plain tensor on the Open Inference Protocol too.
      const v2 = await server.app.inject({
        method: 'POST',
        url: '/v2/models/iris-forest/infer',
        payload: {
          inputs: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'].map((name) => ({
            name,
            shape: [1, 1],
            datatype: 'FP32',
            data: [expected['iris-forest'].rows[0]!.instance[name]],
          })),
          outputs: [{ name: 'output_probability' }],
        },
      });
      assert.equal(v2.statusCode, 200, v2.body);
      const out = v2.json().outputs[0];
      assert.deepEqual(out.shape, [1, 3]);
      close(out.data[0], expected['iris-forest'].rows[0]!.probabilities.setosa!, 1e-5, 'v2 setosa');

      // Hostile values: 4xx naming the field, never a 5xx.
      const good = expected['diabetes-boosting'].rows[0]!.instance;
      for (const [instance, pointer] of [
        [{ ...good, sex: 'X' }, '/instances/0/sex'],
        [{ ...good, sex: 7 }, '/instances/0/sex'],
        [{ ...good, bmi: 'heavy' }, '/instances/0/bmi'],
        [{ sex: 'F', age: 0, bp: 0 }, '/instances/0/bmi'],
      ] as const) {
        const r = await predict('diabetes-boosting', [instance]);
        assert.equal(r.statusCode, 400, `${JSON.stringify(instance)}: ${r.body}`);
        assert.match(r.headers['content-type'] as string, /application\/problem\+json/);
        assert.ok(
          r.json().errors.some((e: { pointer: string }) => e.pointer === pointer),
          `${pointer} named in ${r.body}`,
        );
      }
    } finally {
      await server.close();
    }
  } finally {
    await repo.remove();
  }
});

// Issue 24, finding 0: one model can never take the process (or the other models) down. A scikit-learn
// ZipMap export with the contract an older `ferry init` wrote, a truncated file, an unknown operator and a
// model whose run throws on some inputs sit beside a good model: each bad version ends `failed` with its
// reason (or answers its one bad request with an error), and everything else keeps answering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  onnxMlFixture,
  startTestServer,
  tempModelRepository,
  tinyLinearModel,
  writeModelVersion,
  type TestModel,
} from '@ferry/test-kit';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const IRIS = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];
const irisInputs = IRIS.map((name) => ({ name, type: 'tensor', dtype: 'float32', shape: [-1, 1] }));
const setosa = { sepal_length: [5.1], sepal_width: [3.5], petal_length: [1.4], petal_width: [0.2] };

function models(): TestModel[] {
  const linear = tinyLinearModel();
  const wine = readFileSync(onnxMlFixture('wine-logistic'));
  return [
    { name: 'good', version: '1.0.0', files: { onnx: linear.onnx, manifest: linear.manifest } },
    {
      // What `ferry init` wrote before it knew ONNX-ML: the ZipMap's sequence of maps named as an output.
      name: 'zipmap',
      version: '1.0.0',
      files: {
        onnx: readFileSync(onnxMlFixture('iris-forest')),
        manifest: {
          inputs: irisInputs,
          outputs: [{ name: 'output_label', dtype: 'string', shape: [-1] }, { name: 'output_probability' }],
          postprocess: { kind: 'raw' },
        },
      },
    },
    {
      // The same export with a contract that names only its label: served, the ZipMap never fetched.
      name: 'zipmap-label',
      version: '1.0.0',
      files: {
        onnx: readFileSync(onnxMlFixture('iris-forest')),
        manifest: {
          inputs: irisInputs,
          outputs: [{ name: 'output_label', dtype: 'string', shape: [-1] }],
          postprocess: { kind: 'raw' },
        },
      },
    },
    {
      name: 'truncated',
      version: '1.0.0',
      files: {
        onnx: wine.subarray(0, Math.floor(wine.length / 2)),
        manifest: {
          inputs: [{ name: 'float_input', type: 'tensor', dtype: 'float32', shape: [-1, 13] }],
          outputs: [{ name: 'output_label', dtype: 'int64', shape: [-1] }],
          postprocess: { kind: 'raw' },
        },
      },
    },
    {
      name: 'unsupported',
      version: '1.0.0',
      files: {
        onnx: readFileSync(onnxMlFixture('unsupported-op')),
        manifest: {
          inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, 2] }],
          outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }],
          postprocess: { kind: 'raw' },
        },
      },
    },
    {
      name: 'gather',
      version: '1.0.0',
      files: {
        onnx: readFileSync(onnxMlFixture('gather-index')),
        manifest: {
          inputs: [{ name: 'index', type: 'tensor', dtype: 'int64', shape: [-1, 1] }],
          outputs: [{ name: 'row', dtype: 'float32', shape: [-1, 1, 2] }],
          postprocess: { kind: 'raw' },
          // One failing request must not open the breaker for the next ones in this test.
          fallback: { policy: 'none', breaker: { failures: 100 } },
        },
      },
    },
  ];
}

const FAILED = {
  zipmap: /output_probability.*not a tensor/,
  truncated: /./,
  unsupported: /Frobnicate|com\.example\.ferry/,
};

test('a model that fails to load, warm or run leaves the others serving (fail-readiness policy)', async () => {
  const t = await startTestServer(models(), { 'runtime.workers': 1 });
  try {
    const { app } = t.server;
    const states = new Map(t.server.service.states().map((s) => [s.key.split('@')[0], s]));
    for (const name of ['good', 'zipmap-label', 'gather']) assert.equal(states.get(name)?.state, 'ready', name);
    for (const [name, reason] of Object.entries(FAILED)) {
      assert.equal(states.get(name)?.state, 'failed', name);
      assert.match(states.get(name)!.error!, reason, name);
    }

    // /readyz: 503 under the default policy, each failed version with its reason.
    const ready = await app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    const listed = new Map(ready.json().models.map((m: { key: string }) => [m.key.split('@')[0], m]));
    assert.match((listed.get('zipmap') as { error: string }).error, FAILED.zipmap);
    assert.equal((await app.inject({ url: '/v2/health/ready' })).statusCode, 503);
    // /v1/models shows the state and reason per version.
    const catalogue = (await app.inject({ url: '/v1/models' })).json().models as Array<{
      name: string;
      versions: Array<{ state: string; error?: string }>;
    }>;
    const unsupported = catalogue.find((m) => m.name === 'unsupported')!.versions[0]!;
    assert.equal(unsupported.state, 'failed');
    assert.match(unsupported.error!, FAILED.unsupported);
    assert.equal(catalogue.find((m) => m.name === 'good')!.versions[0]!.error, undefined);

    const predict = (model: string, instances: unknown[]) =>
      app.inject({ method: 'POST', url: `/v1/models/${model}/predict`, payload: { instances } });
    const good = tinyLinearModel();
    const goodAnswer = async () => {
      const r = await predict('good', [good.example]);
      assert.equal(r.statusCode, 200, r.body);
      assert.ok(Math.abs(r.json().predictions[0].value - good.reference(good.example)[0]!) < 1e-5);
    };
    await goodAnswer();

    // A failed version answers 503 model-not-ready with its reason, as problem+json.
    const z = await predict('zipmap', [setosa]);
    assert.equal(z.statusCode, 503);
    assert.match(z.headers['content-type'] as string, /application\/problem\+json/);
    assert.match(z.json().detail, FAILED.zipmap);

    // The ZipMap export whose contract names only tensors serves: its sequence-of-maps output is never fetched.
    const label = await predict('zipmap-label', [setosa]);
    assert.equal(label.statusCode, 200, label.body);
    assert.deepEqual(label.json().predictions[0].output_label, 'setosa');
    // On v2 the non-tensor output is not offered (400 naming it), never fetched.
    const v2 = await app.inject({
      method: 'POST',
      url: '/v2/models/zipmap-label/infer',
      payload: {
        inputs: IRIS.map((name) => ({ name, shape: [1, 1], datatype: 'FP32', data: [1] })),
        outputs: [{ name: 'output_probability' }],
      },
    });
    assert.equal(v2.statusCode, 400, v2.body);
    assert.equal(v2.json().errors[0].pointer, '/outputs/0/name');

    // A run that throws on one input fails that request alone.
    const ok = await predict('gather', [{ index: [1] }]);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json().predictions[0].row, [[3, 4]]);
    const bad = await predict('gather', [{ index: [7] }]);
    assert.equal(bad.statusCode, 500, bad.body);
    assert.equal(bad.json().code, 'inference-failed');
    assert.match(bad.headers['content-type'] as string, /application\/problem\+json/);
    const again = await predict('gather', [{ index: [2] }]);
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json().predictions[0].row, [[5, 6]]);
    await goodAnswer();
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
  } finally {
    await t.close();
  }
});

test('models.onLoadFailure: serve-others is ready without the failed versions; exit rejects `loaded`', async () => {
  const some = models().filter((m) => ['good', 'zipmap', 'truncated'].includes(m.name));
  const t = await startTestServer(some, { 'runtime.workers': 1, 'models.onLoadFailure': 'serve-others' });
  try {
    const ready = await t.server.app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 200, ready.body);
    assert.equal(ready.json().models.filter((m: { state: string }) => m.state === 'failed').length, 2);
    assert.equal((await t.server.app.inject({ url: '/v2/health/ready' })).statusCode, 200);
  } finally {
    await t.close();
  }
  // Only failed versions: not ready, whatever the policy.
  const none = await startTestServer(
    some.filter((m) => m.name !== 'good'),
    { 'runtime.workers': 1, 'models.onLoadFailure': 'serve-others' },
  );
  try {
    assert.equal((await none.server.app.inject({ url: '/readyz' })).statusCode, 503);
  } finally {
    await none.close();
  }
  const exit = await startTestServer(some, { 'runtime.workers': 1, 'models.onLoadFailure': 'exit' }, { wait: false });
  try {
    await assert.rejects(exit.server.loaded, (e: Error & { code?: string }) => {
      assert.equal(e.code, 'load-failed');
      assert.match(e.message + String((e as { detail?: string }).detail), /zipmap@1\.0\.0/);
      return true;
    });
  } finally {
    await exit.close();
  }
});

test('`ferry serve` stays up beside a ZipMap export that once aborted the process, and serves the others', async () => {
  const repo = await tempModelRepository();
  const some = models().filter((m) => ['good', 'zipmap'].includes(m.name));
  for (const m of some) await writeModelVersion(repo.dir, m.name, m.version, m.files);
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--models', repo.dir, '--port', '0', '--host', '127.0.0.1', '--workers', '1', '--log-level', 'info'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FERRY_STORE_URL: 'sqlite::memory:' } },
  );
  try {
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"url":"(http:[^"]+)".*serving without the failed model versions/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`ferry serve exited (${code}): ${out.slice(-2000)}`)));
    });
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    const r = await fetch(`${url}/v1/models/good/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [tinyLinearModel().example] }),
    });
    assert.equal(r.status, 200);
    assert.equal(child.exitCode, null, 'the process is still running');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await repo.remove();
  }
});

test('a worker thread that dies mid-request fails only the requests it held; it is replaced and its models reloaded', async () => {
  const linear = tinyLinearModel();
  const t = await startTestServer(
    [
      { name: 'good', version: '1.0.0', files: { onnx: linear.onnx, manifest: linear.manifest } },
      {
        // Trusted code can still end its thread (as a fatal native error inside a worker would).
        name: 'killer',
        version: '1.0.0',
        files: {
          onnx: linear.onnx,
          manifest: {
            handler: 'handler.js',
            inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, 8] }],
            outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 1] }],
            postprocess: { kind: 'regression', output: 'y' },
            fallback: { policy: 'none', breaker: { failures: 100 } },
          },
          files: {
            'handler.js':
              'export default { async predict(instances, ctx) {\n' +
              '  if (instances[0].x[0] === 666) process.exit(3);\n' +
              '  return ctx.decode(await ctx.run(ctx.encode(instances)), instances.length);\n} };\n',
          },
        },
      },
    ],
    { 'runtime.workers': 1 },
  );
  try {
    const predict = (model: string, x: number[]) =>
      t.server.app.inject({ method: 'POST', url: `/v1/models/${model}/predict`, payload: { instances: [{ x }] } });
    const x = linear.example.x;
    assert.equal((await predict('killer', x)).statusCode, 200);
    const died = await predict('killer', [666, ...x.slice(1)]);
    assert.equal(died.statusCode, 500, died.body);
    assert.equal(died.json().code, 'inference-failed');
    assert.match(died.json().detail, /exited/);
    // The replacement worker reloads both models; until then they answer 503 model-not-ready, never a crash.
    let r = await predict('good', x);
    for (let i = 0; i < 200 && r.statusCode === 503; i++) {
      assert.equal(r.json().code, 'model-not-ready');
      await new Promise((res) => setTimeout(res, 50));
      r = await predict('good', x);
    }
    assert.equal(r.statusCode, 200, r.body);
    assert.ok(Math.abs(r.json().predictions[0].value - linear.reference(linear.example)[0]!) < 1e-5);
    let k = await predict('killer', x);
    for (let i = 0; i < 200 && k.statusCode === 503; i++) {
      await new Promise((res) => setTimeout(res, 50));
      k = await predict('killer', x);
    }
    assert.equal(k.statusCode, 200, k.body);
  } finally {
    await t.close();
  }
});

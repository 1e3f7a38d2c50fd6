import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { GraphBuilder } from '@ferry/tools/onnx';
import { tempModelRepository } from '@ferry/test-kit';
import { loadConfig } from '../../../config/index.js';
import { createServer } from '../../../app/create-server.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../../cli/main.js', import.meta.url));

/** A model with two inputs of different types and a fixed-size one, to exercise the metadata import. */
function twoInputModel(): Uint8Array {
  const g = new GraphBuilder({ name: 'two-inputs' });
  g.input('a', 'float32', ['batch', 3]).input('ids', 'int64', ['batch', 2]).input('scale', 'float32', [1]);
  g.output('sum', 'float32', ['batch', 1]).output('ids_out', 'int64', ['batch', 2]);
  g.intInitializer('axis1', [1]);
  g.node('Mul', [g.op('ReduceSum', ['a', 'axis1'], { keepdims: 1 }), 'scale'], ['sum']);
  g.node('Identity', ['ids'], ['ids_out']);
  return g.toBytes();
}

test("ferry init writes model.onnx and a ferry.yaml from the model's own metadata, which serves", async () => {
  const repo = await tempModelRepository();
  try {
    const onnx = join(repo.dir, 'upload.onnx');
    writeFileSync(onnx, twoInputModel());
    const modelsDir = join(repo.dir, 'models');
    const { stdout } = await run(process.execPath, [
      CLI,
      'init',
      onnx,
      '--name',
      'two',
      '--version',
      '1.2.0',
      '--repo',
      modelsDir,
    ]);
    assert.match(stdout, /wrote .*two\/1\.2\.0\/ferry\.yaml/);
    const dir = join(modelsDir, 'two', '1.2.0');
    assert.ok(existsSync(join(dir, 'model.onnx')));
    const m = parse(readFileSync(join(dir, 'ferry.yaml'), 'utf8'));
    assert.equal(m.name, 'two');
    assert.equal(m.version, '1.2.0');
    assert.deepEqual(m.inputs, [
      { name: 'a', type: 'tensor', dtype: 'float32', shape: [-1, 3] },
      { name: 'ids', type: 'tensor', dtype: 'int64', shape: [-1, 2] },
      { name: 'scale', type: 'tensor', dtype: 'float32', shape: [1] },
    ]);
    assert.deepEqual(
      m.outputs.map((o: { name: string; dtype: string }) => [o.name, o.dtype]),
      [
        ['sum', 'float32'],
        ['ids_out', 'int64'],
      ],
    );

    // Running it again without --force refuses to overwrite the contract.
    await assert.rejects(
      run(process.execPath, [CLI, 'init', onnx, '--name', 'two', '--version', '1.2.0', '--repo', modelsDir]),
      /exists; use --force/,
    );
    await assert.rejects(
      run(process.execPath, [CLI, 'init', onnx, '--name', 'Bad Name', '--repo', modelsDir]),
      /invalid model name/,
    );

    // A model whose 'scale' input has no batch dimension is served one instance at a time.
    const server = await createServer(
      loadConfig({ env: {}, overrides: { 'models.dir': modelsDir, 'runtime.workers': 1, 'log.level': 'silent' } }),
      { logger: false },
    );
    try {
      await server.loaded;
      const r = await server.app.inject({
        method: 'POST',
        url: '/v1/models/two/predict',
        payload: { instances: [{ a: [[1, 2, 3]], ids: [[7, 9]], scale: [2] }] },
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.deepEqual(r.json().predictions[0], { sum: [[12]], ids_out: [[7, 9]] });
      const v2 = await server.app.inject({
        method: 'POST',
        url: '/v2/models/two/infer',
        payload: {
          inputs: [
            { name: 'a', shape: [2, 3], datatype: 'FP32', data: [1, 1, 1, 2, 2, 2] },
            { name: 'ids', shape: [2, 2], datatype: 'INT64', data: [1, 2, 3, 4] },
            { name: 'scale', shape: [1], datatype: 'FP32', data: [0.5] },
          ],
        },
      });
      assert.equal(v2.statusCode, 200, v2.body);
      assert.deepEqual(v2.json().outputs, [
        { name: 'sum', datatype: 'FP32', shape: [2, 1], data: [1.5, 3] },
        { name: 'ids_out', datatype: 'INT64', shape: [2, 2], data: [1, 2, 3, 4] },
      ]);
    } finally {
      await server.close();
    }
  } finally {
    await repo.remove();
  }
});

test('ferry init refuses a file that is not ONNX', async () => {
  const repo = await tempModelRepository();
  try {
    const bad = join(repo.dir, 'bad.onnx');
    writeFileSync(bad, 'not a model');
    await assert.rejects(run(process.execPath, [CLI, 'init', bad, '--repo', repo.dir]), /ferry:/);
    assert.ok(!existsSync(join(repo.dir, 'bad')));
  } finally {
    await repo.remove();
  }
});

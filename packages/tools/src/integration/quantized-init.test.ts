// `ferry init --contract-from`: a quantised build joins the repository as a new version with its
// source's contract and serves. Lives with the quantiser, which the server's own tests cannot import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { createServer, loadConfig } from '@ferry/server';
import { tempModelRepository, tinyClassifier, writeModelVersion } from '@ferry/test-kit';
import { quantizeModel } from '../quantize/quantize-model.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../../server/dist/cli/main.js', import.meta.url));

test("a quantised model joins the repository as a new version with its source's contract, and serves", async () => {
  const repo = await tempModelRepository();
  try {
    // A classifier with a weight matrix large enough to be quantised.
    const cls = tinyClassifier();
    await writeModelVersion(repo.dir, 'cls', '1.0.0', cls);
    const q = quantizeModel(cls.onnx, { minElements: 1 });
    assert.ok(q.report.quantized.length >= 1, JSON.stringify(q.report));
    const int8 = join(repo.dir, 'int8.onnx');
    writeFileSync(int8, q.bytes);
    await run(process.execPath, [
      CLI,
      'init',
      int8,
      '--name',
      'cls',
      '--version',
      '1.1.0',
      '--repo',
      repo.dir,
      '--contract-from',
      'cls@1.0.0',
    ]);
    const m = parse(readFileSync(join(repo.dir, 'cls', '1.1.0', 'ferry.yaml'), 'utf8'));
    assert.equal(m.version, '1.1.0');
    assert.deepEqual(m.postprocess, cls.manifest.postprocess);
    const server = await createServer(
      loadConfig({ env: {}, overrides: { 'models.dir': repo.dir, 'runtime.workers': 1, 'log.level': 'silent' } }),
      { logger: false },
    );
    try {
      await server.loaded;
      const a = await server.app.inject({
        method: 'POST',
        url: '/v1/models/cls@1.0.0/predict',
        payload: { instances: [cls.example] },
      });
      const b = await server.app.inject({
        method: 'POST',
        url: '/v1/models/cls@1.1.0/predict',
        payload: { instances: [cls.example] },
      });
      assert.equal(b.statusCode, 200, b.body);
      assert.equal(b.json().predictions[0].label, a.json().predictions[0].label);
      assert.ok(Math.abs(b.json().predictions[0].scores.yes - a.json().predictions[0].scores.yes) < 0.05);
    } finally {
      await server.close();
    }
    await assert.rejects(
      run(process.execPath, [
        CLI,
        'init',
        int8,
        '--name',
        'cls',
        '--version',
        '1.2.0',
        '--repo',
        repo.dir,
        '--contract-from',
        'cls',
      ]),
      /name@version/,
    );
  } finally {
    await repo.remove();
  }
});

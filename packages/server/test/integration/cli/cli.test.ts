// The CLI end to end, as a user runs it: models, predict (in process and against a server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { tempModelRepository, tinyClassifier, writeModelVersion, startTestServer } from '@ferry/test-kit';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const cls = tinyClassifier();

test('ferry models lists versions and the default; ferry predict answers in process and via --url', async () => {
  const repo = await tempModelRepository();
  try {
    await writeModelVersion(repo.dir, 'cls', '1.0.0', cls);
    await writeModelVersion(repo.dir, 'cls', '1.2.0', cls);
    const listed = await run(process.execPath, [CLI, 'models', '--models', repo.dir, '--json']);
    assert.deepEqual(JSON.parse(listed.stdout), [
      { name: 'cls', default: '1.2.0', versions: ['1.2.0', '1.0.0'], aliases: {} },
    ]);
    const text = await run(process.execPath, [CLI, 'models', '--models', repo.dir]);
    assert.match(text.stdout, /^cls\tdefault 1\.2\.0\tversions 1\.2\.0, 1\.0\.0$/m);

    const local = await run(process.execPath, [
      CLI,
      'predict',
      'cls@1.0.0',
      '--models',
      repo.dir,
      '--data',
      JSON.stringify(cls.example),
    ]);
    const out = JSON.parse(local.stdout);
    assert.equal(out.version, '1.0.0');
    assert.ok(Math.abs(out.predictions[0].scores.yes - cls.reference(cls.example)[1]!) < 1e-5);

    const bad = await run(process.execPath, [
      CLI,
      'predict',
      'cls',
      '--models',
      repo.dir,
      '--data',
      '{"amount": "x"}',
    ]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 1);
    assert.match((bad as { stderr: string }).stderr, /invalid-input/);
  } finally {
    await repo.remove();
  }

  const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: cls }], {
    'server.port': 0,
    'server.host': '127.0.0.1',
  });
  try {
    const { url } = await t.server.listen();
    const remote = await run(process.execPath, [
      CLI,
      'predict',
      'cls',
      '--url',
      url,
      '--data',
      JSON.stringify([cls.example, cls.example]),
    ]);
    assert.equal(JSON.parse(remote.stdout).predictions.length, 2);
  } finally {
    await t.close();
  }
});

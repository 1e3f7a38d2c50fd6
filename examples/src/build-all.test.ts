import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAll, EXAMPLES } from './build-all.js';
import { MARKER, type ExampleModel } from './lib/example-model.js';

test('buildAll builds what is missing or stale and skips what is fresh', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-build-all-'));
  try {
    const data = join(root, 'data.txt');
    writeFileSync(data, 'v1');
    let builds = 0;
    const fake: ExampleModel = {
      name: 'fake',
      version: '1.0.0',
      inputs: [data, 'examples/src/lib'],
      async build() {
        builds++;
        return { 'model.onnx': new Uint8Array([1, 2, 3]), 'card.md': '# fake\n' };
      },
    };
    const models = join(root, 'models');
    const run = async (force = false) => (await buildAll([fake], { modelsDir: models, force }))[0]!;
    const dir = join(models, 'fake', '1.0.0');

    assert.deepEqual([(await run()).reason, builds], ['.ferry-build.json is missing or unreadable', 1]);
    assert.deepEqual([(await run()).action, builds], ['fresh', 1]);

    unlinkSync(join(dir, 'model.onnx'));
    assert.deepEqual([(await run()).reason, builds], ['model.onnx is missing', 2]);

    writeFileSync(join(dir, 'card.md'), '# edited by hand\n');
    assert.deepEqual([(await run()).reason, builds], ['card.md was modified', 3]);

    writeFileSync(data, 'v2');
    assert.deepEqual([(await run()).reason, builds], ['the generator or its data changed', 4]);
    assert.equal((await run()).action, 'fresh');

    unlinkSync(join(dir, MARKER));
    assert.match((await run()).reason!, /missing or unreadable/);
    assert.deepEqual([(await run(true)).reason, builds], ['--force', 6]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('every example model has a distinct name and declares its inputs', () => {
  assert.deepEqual(EXAMPLES.map((e) => e.name).sort(), [...new Set(EXAMPLES.map((e) => e.name))].sort());
  for (const e of EXAMPLES) assert.ok(e.inputs.length > 0, e.name);
});

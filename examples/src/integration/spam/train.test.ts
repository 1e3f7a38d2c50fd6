// The full rebuild check of the `spam` example: training from the npm corpus reproduces the committed
// version folder byte for byte, over the bar, and ONNX Runtime agrees with the trainer. It trains the whole
// model (about 40 s on a 2-core machine), so it runs with the integration tests, not the unit layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODELS_DIR } from '../../lib/paths.js';
import { versionDir } from '../../lib/example-model.js';
import { loadCorpus } from '../../spam/data.js';
import { BAR, checkWithRuntime, spam, trainSpam } from '../../spam/train.js';

const corpus = loadCorpus();
const committedDir = versionDir(spam, MODELS_DIR);

test('the committed version folder is exactly what the generator produces, over the bar, and model.onnx matches the trainer', async () => {
  const result = trainSpam({}, corpus);
  for (const [file, content] of Object.entries(result.files)) {
    const committed = readFileSync(join(committedDir, file));
    assert.ok(
      committed.equals(Buffer.from(content)),
      `${file} differs from a fresh build: run npm run models -- --force --only spam`,
    );
  }
  assert.ok(result.heldOut.accuracy >= BAR.accuracy, `accuracy ${result.heldOut.accuracy}`);
  assert.ok(result.heldOut.f1 >= BAR.f1, `F1 ${result.heldOut.f1}`);
  // Catches a leak between train and held-out as much as a broken pipeline.
  assert.ok(result.heldOut.accuracy < 0.999);
  assert.ok((await checkWithRuntime(result)) <= 1e-5);
});

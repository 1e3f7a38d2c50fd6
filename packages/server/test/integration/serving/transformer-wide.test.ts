// models/spam-transformer-wide: spam-transformer's recipe at 512 wide, the model on which `ferry quantize`
// pays off. Served as committed (its contract written by `ferry init`), it must equal PyTorch on each
// reference text alone; quantised with the library call behind `ferry quantize` and served as a second
// version beside it, it must keep PyTorch's labels and stay close to its scores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { int8SaturatesHere, quantizeModel } from '@ferry/tools/quantize';
import type { FerryServer } from '@ferry/server';
import { startServerOn } from '@ferry/test-kit';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const NAME = 'spam-transformer-wide';
const MODEL_DIR = join(ROOT, `models/${NAME}/1.0.0`);
interface RefCase {
  text: string;
  inputIds: number[];
  probabilities: number[];
}
const REF = JSON.parse(
  readFileSync(join(ROOT, `examples/src/spam-transformer/pytorch-reference-${NAME}.json`), 'utf8'),
) as {
  cases: RefCase[];
  parity: RefCase[];
};
const maxAbs = (a: readonly number[], b: readonly number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
type Scores = { predictions: Array<{ label: string; scores: Record<string, number> }> };

describe('spam-transformer-wide, FP32 as committed and INT8 from ferry quantize', () => {
  let server: FerryServer;
  let work: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ferry-transformer-wide-'));
    const repo = join(work, 'models');
    cpSync(MODEL_DIR, join(repo, NAME, '1.0.0'), { recursive: true });
    // The INT8 build as version 1.1.0: the same contract, the quantised file (default options, but 7-bit
    // weights on a CPU whose INT8 GEMM saturates, as docs/quantization.md advises for such a host).
    const int8Dir = join(repo, NAME, '1.1.0');
    cpSync(MODEL_DIR, int8Dir, { recursive: true });
    const { bytes, report } = quantizeModel(readFileSync(join(MODEL_DIR, 'model.onnx')), {
      reduceRange: int8SaturatesHere(),
    });
    const taken = report.quantized.map((q) => `${q.opType} ${q.shape.join('×')}`);
    assert.ok(taken.includes('Gather 9241×512'), taken.join(', '));
    assert.deepEqual(
      taken.filter((t) => t.startsWith('MatMul')).sort(),
      ['512×1536', '512×512', '512×2048', '2048×512', '512×1536', '512×512', '512×2048', '2048×512']
        .map((s) => `MatMul ${s}`)
        .sort(),
    );
    assert.ok(report.bytesAfter < 0.3 * report.bytesBefore, `${report.bytesBefore} → ${report.bytesAfter} bytes`);
    writeFileSync(join(int8Dir, 'model.onnx'), bytes);
    const yamlPath = join(int8Dir, 'ferry.yaml');
    writeFileSync(yamlPath, readFileSync(yamlPath, 'utf8').replace(/^version: .*$/m, 'version: 1.1.0'));
    server = await startServerOn(repo, { 'runtime.workers': 1 });
  });

  after(async () => {
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const predict = async (version: string, texts: readonly string[]) => {
    const r = await server.app.inject({
      method: 'POST',
      url: `/v1/models/${NAME}/versions/${version}/predict`,
      payload: { instances: texts.map((text) => ({ text })) },
    });
    assert.equal(r.statusCode, 200, r.body);
    return r.json<Scores>().predictions;
  };

  test('FP32: 12 texts of 3–128 tokens in one request, and 20 held-out messages, equal PyTorch on each alone', async () => {
    for (const set of [REF.cases, REF.parity]) {
      const preds = await predict(
        '1.0.0',
        set.map((c) => c.text),
      );
      preds.forEach((p, i) => {
        const d = maxAbs([p.scores.ham!, p.scores.spam!], set[i]!.probabilities);
        assert.ok(d <= 1e-4, `${set === REF.cases ? 'case' : 'parity'} ${i}: |Δ| = ${d}`);
      });
    }
  });

  test('INT8: the same texts keep PyTorch labels, scores within 0.02', async () => {
    const set = [...REF.cases, ...REF.parity];
    const preds = await predict(
      '1.1.0',
      set.map((c) => c.text),
    );
    let worst = 0;
    preds.forEach((p, i) => {
      const want = set[i]!.probabilities;
      worst = Math.max(worst, maxAbs([p.scores.ham!, p.scores.spam!], want));
      assert.equal(p.label, want[1]! > want[0]! ? 'spam' : 'ham', `text ${i}: the label changed`);
    });
    assert.ok(worst <= 0.02, `max |Δ score| ${worst}`);
  });
});

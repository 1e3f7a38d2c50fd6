// `ferry quantize`'s rewrite on the repository's real transformer (models/spam-transformer, exported by
// torch.onnx.export): which nodes it takes, what the file weighs after, and that the INT8 build still
// answers like PyTorch on the reference texts of 3 to 128 tokens, run as one padded batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { readModel } from '../onnx/index.js';
import { quantizeModel } from './quantize-model.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const MODEL = `${ROOT}models/spam-transformer/1.0.0/model.onnx`;
const REFERENCE = `${ROOT}examples/src/spam-transformer/pytorch-reference.json`;

interface Case {
  inputIds: number[];
  logits: [number, number];
}

test('spam-transformer: the token table and all eight weight MatMuls become int8; answers stay with PyTorch', async () => {
  const fp32 = readFileSync(MODEL); // a Buffer, as a caller would pass it
  const { bytes, report } = quantizeModel(fp32, { minElements: 1024 });
  const taken = report.quantized.map((q) => `${q.opType} ${q.shape.join('×')}`);
  assert.deepEqual(taken.slice(0, 2), ['Gather 9241×96', 'Gather 128×96']);
  assert.deepEqual(
    taken.slice(2).sort(),
    ['96×288', '96×96', '96×192', '192×96', '96×288', '96×96', '96×192', '192×96'].map((s) => `MatMul ${s}`).sort(),
  );
  // The attention products read no weight, and the 2×96 head and segment table are under 1024 values.
  const skipped = report.skipped.map((s) => s.reason);
  assert.equal(skipped.filter((r) => /not an initializer/.test(r)).length, 4);
  assert.ok(report.bytesAfter < 0.3 * report.bytesBefore, `${report.bytesBefore} → ${report.bytesAfter} bytes`);
  assert.ok(!readModel(bytes).graph!.initializer!.some((t) => t.name === 'tok.weight'));

  // The twelve reference texts (3…128 tokens) as one right-padded batch, as Ferry's ragged batching feeds them.
  const cases = (JSON.parse(readFileSync(REFERENCE, 'utf8')) as { cases: Case[] }).cases;
  const width = Math.max(...cases.map((c) => c.inputIds.length));
  const ids = new BigInt64Array(cases.length * width);
  const mask = new BigInt64Array(cases.length * width);
  cases.forEach((c, r) =>
    c.inputIds.forEach((id, j) => {
      ids[r * width + j] = BigInt(id);
      mask[r * width + j] = 1n;
    }),
  );
  const dims = [cases.length, width];
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({
      input_ids: new ort.Tensor('int64', ids, dims),
      attention_mask: new ort.Tensor('int64', mask, dims),
      token_type_ids: new ort.Tensor('int64', new BigInt64Array(ids.length), dims),
    });
    const logits = out.logits!.data as Float32Array;
    cases.forEach((c, r) => {
      const [a, b] = [logits[2 * r]!, logits[2 * r + 1]!];
      // Held-out, `ferry quantize --validate` measures max |Δ logit| 0.09 against FP32 over 1187 messages.
      assert.ok(
        Math.abs(a - c.logits[0]) < 0.15 && Math.abs(b - c.logits[1]) < 0.15,
        `case ${r}: ${a}, ${b} vs ${c.logits}`,
      );
      assert.equal(b > a, c.logits[1] > c.logits[0], `case ${r}: the label changed`);
    });
  } finally {
    await session.release();
  }
});

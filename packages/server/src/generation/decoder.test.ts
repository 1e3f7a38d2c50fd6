// The KV-cache decoder path against a full recompute, on a GPT-2-shaped model built here (random
// weights, LayerNorm, GELU, two layers): the logits of each step with the cache must match the
// logits of running the whole sequence at once, as a Hugging Face export's would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '@ferry/tools/onnx';
import { decoderLayout, KvSequence } from './decoder-session.js';
import { tinyDecoder } from '@ferry/test-kit';
import { argmax, sampleToken, seededRandom } from './sampler.js';
import { TextCodec, TextStream } from './text-codec.js';
import { byteLevelTokenizerJson } from './byte-tokenizer.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TOL = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('KV-cache steps give the logits of a full recompute (GPT-2-shaped, 2 layers)', async () => {
  const { onnx, shape } = tinyDecoder({ seed: 11, layers: 2, hidden: 16, heads: 2, contextLength: 64 });
  const session = await ort.InferenceSession.create(onnx);
  try {
    const layout = decoderLayout(session);
    assert.deepEqual(
      {
        layers: layout.layers,
        heads: layout.heads,
        headDim: layout.headDim,
        vocab: layout.vocabSize,
        pos: layout.positionIds,
      },
      { layers: 2, heads: 2, headDim: 8, vocab: shape.vocabSize, pos: true },
    );
    const ids = [5, 77, 104, 9, 200, 33, 41, 150, 7, 12, 99];
    const prompt = 4;
    // Cached: the prompt at once, then one token per step.
    const cached = new KvSequence(session, layout);
    const stepLogits: Float32Array[] = [await cached.step(ids.slice(0, prompt))];
    for (let i = prompt; i < ids.length; i++) stepLogits.push(await cached.step([ids[i]!]));
    assert.equal(cached.length, ids.length);
    cached.dispose();
    // Full recompute of the whole sequence, every position's logits.
    const full = new KvSequence(session, layout);
    const all = await full.step(ids, true);
    full.dispose();
    const v = shape.vocabSize;
    let worst = 0;
    stepLogits.forEach((row, k) => {
      const pos = prompt - 1 + k;
      worst = Math.max(worst, maxAbsDiff(row, all.subarray(pos * v, (pos + 1) * v)));
    });
    assert.ok(worst < TOL, `cached vs full logits differ by ${worst}`);
    // The logits really depend on the context: the last two rows are not equal.
    assert.ok(maxAbsDiff(stepLogits.at(-1)!, stepLogits.at(-2)!) > 1e-3);
    // The eos token is unreachable by construction.
    assert.ok(stepLogits.every((row) => row[0]! < -50 && argmax(row) !== 0));
  } finally {
    await session.release();
  }
});

test('a prompt fed in chunks and a prompt fed at once leave the same cache', async () => {
  const { onnx } = tinyDecoder({ seed: 3, layers: 1 });
  const session = await ort.InferenceSession.create(onnx);
  try {
    const layout = decoderLayout(session);
    const a = new KvSequence(session, layout);
    await a.step([10, 20, 30]);
    const la = await a.step([40, 50]);
    const b = new KvSequence(session, layout);
    const lb = await b.step([10, 20, 30, 40, 50]);
    a.dispose();
    b.dispose();
    assert.ok(maxAbsDiff(la, lb) < TOL);
  } finally {
    await session.release();
  }
});

test('a model without past_key_values inputs is refused with the reason', async () => {
  const g = new GraphBuilder();
  g.input('input_ids', 'int64', ['b', 's'])
    .input('attention_mask', 'int64', ['b', 's'])
    .output('logits', 'float32', ['b', 's', 4]);
  g.floatInitializer('emb', new Float32Array(40), [10, 4]);
  g.node('Gather', ['emb', 'input_ids'], ['logits']);
  const session = await ort.InferenceSession.create(g.toBytes());
  try {
    assert.throws(() => decoderLayout(session), /past_key_values/);
  } finally {
    await session.release();
  }
});

test('sampling: temperature 0 is argmax, the same seed draws the same tokens, a tiny top_p keeps only the best', () => {
  const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i * 1.7) * 2);
  const best = argmax(logits);
  assert.equal(sampleToken(logits, { temperature: 0, topP: 1 }, seededRandom(1)), best);
  const draw = (seed: number) => {
    const r = seededRandom(seed);
    return Array.from({ length: 30 }, () => sampleToken(logits, { temperature: 1.5, topP: 1 }, r));
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
  assert.ok(new Set(draw(42)).size > 3, 'temperature 1.5 should spread the draws');
  const r = seededRandom(9);
  for (let i = 0; i < 50; i++) assert.equal(sampleToken(logits, { temperature: 1, topP: 1e-6 }, r), best);
});

test('text stream: stop sequences are cut and never partly sent; split UTF-8 characters are held back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-codec-'));
  try {
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson(['<|endoftext|>'])));
    const codec = new TextCodec(dir, { contextLength: 16, eosTokens: ['<|endoftext|>'] });
    assert.deepEqual(codec.eosIds, [0]);
    const ids = codec.encode('héllo END tail', false);
    assert.equal(ids.length, 15); // é is two bytes
    const s = new TextStream(codec, ['END']);
    const deltas: string[] = [];
    let stopped = false;
    for (const id of ids) {
      const r = s.push(id);
      deltas.push(r.delta);
      if (r.stopped) {
        stopped = true;
        break;
      }
    }
    assert.ok(stopped);
    assert.equal(deltas.join(''), 'héllo ');
    assert.ok(
      deltas.every((d) => !d.includes('\uFFFD')),
      'no half character was sent',
    );
    assert.ok(!deltas.some((d) => d.includes('E')), 'no part of the stop sequence was sent');
    assert.equal(s.text, 'héllo ');
    // Incremental decoding adds up to the whole text, multi-byte characters included, over many tokens.
    const long = 'Grüße aus Köln — naïve café ✓ 漢字 '.repeat(20);
    const all = new TextStream(codec, []);
    let out = '';
    for (const id of codec.encode(long, false)) {
      const d = all.push(id).delta;
      assert.ok(!d.includes('\uFFFD'));
      out += d;
    }
    out += all.flush();
    assert.equal(out, long);
    assert.equal(all.text, long);
    // A generation whose first token was eos has no ids: its flush is empty text, not a tokenizer error.
    const none = new TextStream(codec, ['END']);
    assert.equal(none.flush(), '');
    assert.equal(none.text, '');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

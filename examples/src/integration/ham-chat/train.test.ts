// The ham-chat trainer: its hand-written gradients against finite differences, its TypeScript forward
// pass against ONNX Runtime running the exported Hugging Face-layout graph, and a short real training
// run on the corpus that must lower the held-out loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { buildDecoderOnnx, randomDecoderWeights, seededRandom, type DecoderShape } from '../../lib/generation.js';
import { backward, forward, loss, parameters, zerosLike } from '../../ham-chat/network.js';
import {
  conversationIds,
  exportFiles,
  NAME,
  SHAPE,
  SPECIALS,
  train,
  USER,
  ASSISTANT,
  END,
  VERSION,
} from '../../ham-chat/train.js';

const small: DecoderShape = {
  vocabSize: 12,
  hidden: 8,
  heads: 2,
  layers: 1,
  maxPositions: 10,
  mlpHidden: 6,
  layerNorm: false,
  activation: 'relu',
};

test('backward gives the gradient of the loss (central finite differences)', () => {
  const w = randomDecoderWeights(small, seededRandom(1), 0.5);
  const ids = [1, 5, 3, 7, 7, 2, 11, 0];
  const g = zerosLike(w);
  backward(small, w, g, forward(small, w, ids), 1);
  const ps = parameters(w);
  const gs = parameters(g);
  const r = seededRandom(2);
  let checked = 0;
  for (let k = 0; k < ps.length; k++) {
    for (let s = 0; s < 3; s++) {
      const i = Math.floor(r() * ps[k]!.length);
      const h = 1e-2;
      const old = ps[k]![i]!;
      ps[k]![i] = old + h;
      const up = loss(small, forward(small, w, ids).logits, ids);
      ps[k]![i] = old - h;
      const down = loss(small, forward(small, w, ids).logits, ids);
      ps[k]![i] = old;
      const numeric = (up - down) / (2 * h);
      assert.ok(
        Math.abs(numeric - gs[k]![i]!) < 2e-3 + 0.02 * Math.abs(numeric),
        `parameter ${k}[${i}]: analytic ${gs[k]![i]} vs numeric ${numeric}`,
      );
      checked++;
    }
  }
  assert.equal(checked, ps.length * 3);
});

test('the exported ONNX model (run with its KV cache) computes the TypeScript forward pass', async () => {
  const w = randomDecoderWeights(SHAPE, seededRandom(3), 0.08);
  const session = await ort.InferenceSession.create(buildDecoderOnnx(SHAPE, w));
  try {
    const ids = conversationIds('Re: meeting on friday\n\nSee you there, bring the slides.', 40);
    assert.deepEqual([ids[0], ids.includes(END), ids.includes(ASSISTANT)], [USER, true, true]);
    const ref = forward(SHAPE, w, ids).logits;
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, SHAPE.heads, 0, SHAPE.hidden / SHAPE.heads]);
    const n = ids.length;
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
      position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
        [1, n],
      ),
      'past_key_values.0.key': empty,
      'past_key_values.0.value': empty,
    });
    const got = out.logits!.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i]! - got[i]!));
    assert.ok(worst < 1e-4, `max |ts - ort| = ${worst}`);
    assert.deepEqual(out['present.0.key']!.dims, [1, SHAPE.heads, n, SHAPE.hidden / SHAPE.heads]);
  } finally {
    await session.release();
  }
});

test('a short training run on the ham corpus beats the byte-frequency baseline on held-out mail', () => {
  const r = train({ steps: 100, maxDocs: 1000, seed: 9 });
  assert.ok(r.heldOutLoss < Math.log(SHAPE.vocabSize) - 1, `held-out ${r.heldOutLoss}`);
  assert.ok(r.heldOutLoss < r.unigramLoss, `held-out ${r.heldOutLoss} vs unigram ${r.unigramLoss}`);
});

test('the trained model served by Ferry (KV cache, decode worker) completes exactly as the TypeScript full recompute', async () => {
  const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createServer, loadConfig } = await import('@ferry/server');
  const trained = train({ steps: 30, maxDocs: 300, seed: 4 });
  const files = exportFiles(trained);
  const repo = await mkdtemp(join(tmpdir(), 'ferry-ham-chat-'));
  const dir = join(repo, NAME, VERSION);
  await mkdir(dir, { recursive: true });
  for (const [f, c] of Object.entries(files)) await writeFile(join(dir, f), c);
  const server = await createServer(
    loadConfig({
      env: {},
      overrides: { 'models.dir': repo, 'runtime.workers': 1, 'log.level': 'silent', 'store.url': 'sqlite::memory:' },
    }),
    { logger: false },
  );
  try {
    await server.loaded;
    const res = await server.app.inject({
      method: 'POST',
      url: '/openai/v1/chat/completions',
      payload: { model: NAME, messages: [{ role: 'user', content: 'lunch?' }], max_tokens: 40, temperature: 0 },
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as {
      choices: { message: { content: string }; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    // The reference: greedy decoding by recomputing the whole sequence each step in TypeScript, no cache.
    const ids = [
      USER,
      ...[...new TextEncoder().encode('\nlunch?')].map((b) => b + SPECIALS.length),
      END,
      ...[10 + SPECIALS.length],
      ASSISTANT,
      10 + SPECIALS.length,
    ];
    assert.equal(body.usage.prompt_tokens, ids.length);
    const out: number[] = [];
    let finish = 'length';
    for (let i = 0; i < 40; i++) {
      const logits = forward(SHAPE, trained.weights, [...ids, ...out]).logits;
      const row = logits.subarray(
        (ids.length + out.length - 1) * SHAPE.vocabSize,
        (ids.length + out.length) * SHAPE.vocabSize,
      );
      let best = 0;
      for (let j = 1; j < row.length; j++) if (row[j]! > row[best]!) best = j;
      if (best === END || best === 0) {
        finish = 'stop';
        break;
      }
      out.push(best);
    }
    const text = new TextDecoder().decode(
      Uint8Array.from(out.filter((t) => t >= SPECIALS.length).map((t) => t - SPECIALS.length)),
    );
    assert.equal(body.choices[0]!.message.content, text);
    assert.equal(body.choices[0]!.finish_reason, finish);
    assert.equal(body.usage.completion_tokens, out.length);
  } finally {
    await server.close();
    await rm(repo, { recursive: true, force: true });
  }
});

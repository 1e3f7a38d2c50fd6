// The committed ham-gpt model (PyTorch export, BPE tokenizer) through the batch engine: greedy output
// of 20 prompts of different lengths decoded together in one batch equals each decoded alone, token
// for token, and the engine really batched them. Reads models/ham-gpt/3.0.0 from the repository.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { BatchEngine } from '../../generation/batch-engine.js';
import { decoderLayout, KvSequence } from '../../generation/decoder-session.js';
import { argmax } from '../../generation/sampler.js';
import { TextCodec } from '../../generation/text-codec.js';

const DIR = fileURLToPath(new URL('../../../../../models/ham-gpt/3.0.0/', import.meta.url));
const TOKENS = 16;

test('ham-gpt: batched greedy decoding equals one-at-a-time decoding on 20 prompts', async () => {
  const session = await ort.InferenceSession.create(`${DIR}model.onnx`, { intraOpNumThreads: 1 });
  try {
    const layout = decoderLayout(session);
    assert.deepEqual([layout.layers, layout.heads, layout.headDim, layout.vocabSize], [4, 1, 32, 2048]);
    const codec = new TextCodec(DIR, { contextLength: 256, eosTokens: ['<|end|>'] });
    const words = 'the list server was down again this morning so please send your patches to me directly'.split(' ');
    // Completion prompts of 1 to 20 words, and chat prompts: lengths from 1 to about 40 tokens.
    const prompts = Array.from({ length: 20 }, (_, i) =>
      i % 2
        ? codec.encode(words.slice(0, i + 1).join(' '), false)
        : codec.encode(
            codec.renderChat([{ role: 'user', content: words.slice(i % 7, (i % 7) + 3 + i).join(' ') }]),
            false,
          ),
    );
    assert.ok(new Set(prompts.map((p) => p.length)).size >= 15);
    const alone: number[][] = [];
    for (const p of prompts) {
      const seq = new KvSequence(session, layout);
      let logits = await seq.step(p);
      const out: number[] = [];
      for (let i = 0; i < TOKENS; i++) {
        out.push(argmax(logits));
        if (i + 1 < TOKENS) logits = await seq.step([out[i]!]);
      }
      seq.dispose();
      alone.push(out);
    }
    const got = new Map<number, number[]>();
    const engine = new BatchEngine(
      session,
      layout,
      { maxBatchSize: 32, prefillChunkTokens: 4096 },
      {
        token: (e) => got.set(e.id, [...(got.get(e.id) ?? []), e.token]),
        done: () => undefined,
        error: (id, m) => assert.fail(`${id}: ${m}`),
      },
    );
    prompts.forEach((p, i) =>
      engine.add({ id: i, promptIds: p, maxTokens: TOKENS, temperature: 0, topP: 1, seed: 1, eosIds: [], credit: 99 }),
    );
    await engine.idle();
    prompts.forEach((_, i) => assert.deepEqual(got.get(i), alone[i], `prompt ${i} (${prompts[i]!.length} tokens)`));
    // The outputs are not all the same text (the test would be weak if every prompt gave blank lines).
    assert.ok(new Set(alone.map((a) => a.join())).size >= 5);
    assert.equal(engine.stats.maxRows, 20);
    assert.equal(engine.stats.decodeRuns, TOKENS - 1);
  } finally {
    await session.release();
  }
});

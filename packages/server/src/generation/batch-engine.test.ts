// Continuous batching against one-at-a-time decoding: the batch engine's greedy tokens must equal
// those of KvSequence (one sequence, batch 1, no padding) for prompts of different lengths arriving
// together or staggered, prefilled whole or in chunks, with pauses for credit, forks (`n`), the
// prefix cache and cancellation. The model is the GPT-2-shaped tiny decoder (random weights, 2 layers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { tinyDecoder } from '@ferry/test-kit';
import { BatchEngine, logprobsOf, type DoneEvent, type EngineOptions, type SequenceSpec } from './batch-engine.js';
import { decoderLayout, KvSequence } from './decoder-session.js';
import { PrefixCache } from './prefix-cache.js';
import { argmax, seededRandom } from './sampler.js';
import type { DecoderLayout } from './protocol.js';

const model = tinyDecoder({ seed: 5, layers: 2, hidden: 16, heads: 2, contextLength: 128 });
const session = await ort.InferenceSession.create(model.onnx);
const layout: DecoderLayout = decoderLayout(session);
const vocab = model.shape.vocabSize;

/** 20 prompts of 1 to 58 tokens. */
function prompts(count = 20, seed = 3): number[][] {
  const r = seededRandom(seed);
  return Array.from({ length: count }, (_, i) =>
    Array.from({ length: 1 + ((i * 7 + 3) % 58) }, () => 4 + Math.floor(r() * 256)),
  );
}

/** Greedy decoding of one prompt alone, the reference. */
async function alone(prompt: number[], maxTokens: number): Promise<{ tokens: number[]; rows: Float32Array[] }> {
  const seq = new KvSequence(session, layout);
  const tokens: number[] = [];
  const rows: Float32Array[] = [];
  let logits = await seq.step(prompt);
  for (let i = 0; i < maxTokens; i++) {
    rows.push(logits);
    const t = argmax(logits);
    tokens.push(t);
    if (i + 1 < maxTokens) logits = await seq.step([t]);
  }
  seq.dispose();
  return { tokens, rows };
}

function spec(id: number, promptIds: number[], o: Partial<SequenceSpec> = {}): SequenceSpec {
  return { id, promptIds, maxTokens: 12, temperature: 0, topP: 1, seed: 1, eosIds: [0], credit: 1000, ...o };
}

interface Run {
  engine: BatchEngine;
  tokens: Map<number, number[]>;
  done: Map<number, DoneEvent>;
  logprobs: Map<number, { logprob: number; top: [number, number][] }[]>;
  onToken?: (id: number, count: number) => void;
}

function engine(o: Partial<EngineOptions> = {}): Run {
  const run: Run = { tokens: new Map(), done: new Map(), logprobs: new Map() } as Run;
  run.engine = new BatchEngine(
    session,
    layout,
    { maxBatchSize: 32, prefillChunkTokens: 256, ...o },
    {
      token: (e) => {
        const list = run.tokens.get(e.id) ?? [];
        list.push(e.token);
        run.tokens.set(e.id, list);
        if (e.logprob !== undefined) {
          const lp = run.logprobs.get(e.id) ?? [];
          lp.push({ logprob: e.logprob, top: e.top ?? [] });
          run.logprobs.set(e.id, lp);
        }
        run.onToken?.(e.id, list.length);
      },
      done: (e) => run.done.set(e.id, e),
      error: (id, message) => assert.fail(`sequence ${id} failed: ${message}`),
    },
  );
  return run;
}

test('batched greedy decoding equals one-at-a-time decoding on 20 prompts of different lengths', async () => {
  const ps = prompts();
  const expected = await Promise.all(ps.map((p) => alone(p, 12)));
  // A prefill budget that takes every prompt in one run, so all 20 join the batch at the same step.
  const run = engine({ prefillChunkTokens: 2048 });
  ps.forEach((p, i) => run.engine.add(spec(i + 1, p)));
  await run.engine.idle();
  ps.forEach((_, i) =>
    assert.deepEqual(run.tokens.get(i + 1), expected[i]!.tokens, `prompt ${i} (${ps[i]!.length} tokens)`),
  );
  for (const d of run.done.values()) assert.equal(d.reason, 'length');
  // One run per step for all of them: 20 sequences × 11 decode steps in 11 runs, 20 rows each.
  assert.equal(run.engine.stats.maxRows, 20);
  assert.equal(run.engine.stats.decodeRuns, 11);
  assert.equal(run.engine.stats.decodeRows, 20 * 11);
  assert.equal(run.engine.stats.prefillRuns, 1);
});

test('staggered arrivals, chunked prefill, a batch cap and pauses for credit keep the outputs exact', async () => {
  const ps = prompts(20, 9);
  const expected = await Promise.all(ps.map((p) => alone(p, 12)));
  const run = engine({ maxBatchSize: 5, prefillChunkTokens: 7 });
  // Half arrive at once; each of the others when an earlier one has produced its 3rd token.
  ps.slice(0, 10).forEach((p, i) => run.engine.add(spec(i + 1, p, i % 3 === 0 ? { credit: 2 } : {})));
  let next = 10;
  run.onToken = (id, count) => {
    if (count === 3 && next < ps.length) {
      run.engine.add(spec(next + 1, ps[next]!));
      next++;
    }
    // Sequences started with credit 2 pause after their 2nd token until given more.
    if (count === 2 && (id - 1) % 3 === 0 && id <= 10) setTimeout(() => run.engine.credit(id, 100), 5);
  };
  await run.engine.idle();
  assert.equal(next, 20);
  ps.forEach((_, i) => assert.deepEqual(run.tokens.get(i + 1), expected[i]!.tokens, `prompt ${i}`));
  assert.ok(run.engine.stats.maxRows <= 5 && run.engine.stats.maxRows > 1, `max rows ${run.engine.stats.maxRows}`);
  // Chunks of at most 7 tokens: the longest prompt (58) alone needs 9 prefill runs.
  assert.ok(run.engine.stats.prefillRuns >= 9);
  assert.equal(
    run.engine.stats.prefillTokens,
    ps.reduce((a, p) => a + p.length, 0),
  );
});

test('cancelling frees the sequence at the next step; the others carry on unchanged', async () => {
  const ps = prompts(4, 11);
  const expected = await Promise.all(ps.map((p) => alone(p, 20)));
  const run = engine();
  ps.forEach((p, i) => run.engine.add(spec(i + 1, p, { maxTokens: 20 })));
  run.onToken = (id, count) => {
    if (id === 2 && count === 3) run.engine.cancel(2);
  };
  await run.engine.idle();
  assert.equal(run.done.get(2)!.reason, 'cancelled');
  assert.deepEqual(run.tokens.get(2), expected[1]!.tokens.slice(0, 3));
  for (const id of [1, 3, 4]) assert.deepEqual(run.tokens.get(id), expected[id - 1]!.tokens);
  // 19 decode steps; from the 4th on the cancelled sequence has no row.
  assert.equal(run.engine.stats.decodeRows, 3 * 19 + 3 - 1);
});

test('n choices share one prefill: each fork equals a sequence started alone with its seed', async () => {
  const [p] = prompts(1, 13);
  const sampled = { temperature: 0.9, topP: 0.95, maxTokens: 15 };
  const run = engine();
  run.engine.add(spec(1, p!, { ...sampled, seed: 100 }), [
    { id: 2, seed: 101 },
    { id: 3, seed: 102 },
  ]);
  await run.engine.idle();
  assert.equal(run.engine.stats.prefillRuns, 1);
  const solo = engine();
  for (const seed of [100, 101, 102]) solo.engine.add(spec(seed, p!, { ...sampled, seed }));
  await solo.engine.idle();
  for (const [id, seed] of [
    [1, 100],
    [2, 101],
    [3, 102],
  ] as const)
    assert.deepEqual(run.tokens.get(id), solo.tokens.get(seed));
  // Different seeds really do sample different continuations.
  assert.notDeepEqual(run.tokens.get(1), run.tokens.get(2));
});

test('log-probabilities are the log-softmax of the logits, alternatives most likely first', async () => {
  const [p] = prompts(1, 17);
  const ref = await alone(p!, 6);
  const run = engine();
  run.engine.add(spec(1, p!, { maxTokens: 6, topLogprobs: 3 }));
  run.engine.add(spec(2, prompts(1, 19)[0]!, { maxTokens: 6 }));
  await run.engine.idle();
  const lps = run.logprobs.get(1)!;
  assert.equal(lps.length, 6);
  assert.equal(run.logprobs.get(2), undefined);
  lps.forEach((lp, i) => {
    const row = ref.rows[i]!;
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    const norm = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
    const token = ref.tokens[i]!;
    assert.ok(Math.abs(lp.logprob - (row[token]! - norm)) < 1e-4);
    assert.equal(lp.top.length, 3);
    assert.equal(lp.top[0]![0], token); // greedy: the chosen token is the most likely
    assert.ok(lp.top[0]![1] >= lp.top[1]![1] && lp.top[1]![1] >= lp.top[2]![1]);
  });
  const direct = logprobsOf([0, Math.log(3)], 1, 2);
  assert.ok(Math.abs(direct.logprob - Math.log(0.75)) < 1e-12);
  assert.deepEqual(
    direct.top.map(([t]) => t),
    [1, 0],
  );
});

test('the prefix cache serves a shared prefix and changes no output', async () => {
  const r = seededRandom(23);
  const system = Array.from({ length: 40 }, () => 4 + Math.floor(r() * 256));
  const ps = [5, 9, 1, 17].map((n) => [...system, ...Array.from({ length: n }, () => 4 + Math.floor(r() * 256))]);
  const expected = await Promise.all(ps.map((p) => alone(p, 10)));
  const cache = new PrefixCache(layout.heads, layout.headDim, layout.layers, 1000, 16);
  const run = engine({ prefixCache: cache });
  run.engine.add(spec(1, ps[0]!, { maxTokens: 10 }));
  await run.engine.idle();
  assert.equal(run.done.get(1)!.cachedPromptTokens, 0);
  ps.slice(1).forEach((p, i) => run.engine.add(spec(i + 2, p, { maxTokens: 10 })));
  await run.engine.idle();
  ps.forEach((_, i) => assert.deepEqual(run.tokens.get(i + 1), expected[i]!.tokens, `prompt ${i}`));
  // 40 shared tokens = two whole blocks of 16.
  for (const id of [2, 3, 4]) assert.equal(run.done.get(id)!.cachedPromptTokens, 32);
  assert.equal(cache.stats.hits, 3);
  assert.equal(cache.stats.hitTokens, 96);
  void vocab;
});

test('the prefix cache is bounded and evicts the least recently used chain first', () => {
  const cache = new PrefixCache(1, 1, 1, 4, 2);
  const kv = (n: number) => ({ keys: [Float32Array.from({ length: n }, (_, i) => i)], values: [new Float32Array(n)] });
  cache.insert([1, 2, 3, 4, 5], kv(5), 5); // blocks [1,2] [3,4]
  cache.insert([7, 8, 9], kv(3), 3); // block [7,8]: 6 tokens > 4, the oldest block goes: [3,4]
  assert.equal(cache.stats.tokens, 4);
  assert.equal(cache.stats.evictedBlocks, 1);
  const hit = cache.lookup([1, 2, 3, 4, 5]);
  assert.equal(hit?.length, 2); // only [1,2] is left of that chain
  assert.deepEqual([...hit!.kv.keys[0]!], [0, 1]);
  assert.equal(cache.lookup([7, 8])?.length, undefined); // would leave no token to run
  assert.equal(cache.lookup([7, 8, 0])?.length, 2);
  assert.equal(cache.lookup([9, 9, 9]), undefined);
});

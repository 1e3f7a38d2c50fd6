// The KV-cache memory cap (generation.maxKvMiB): generations reserve (prompt + max_tokens) tokens of
// keys and values; a request that would pass the cap while others hold theirs gets 503 with
// Retry-After, one that could never fit a 400 naming max_tokens, and a finished generation's
// reservation is returned. The tiny decoder's cache is 2 layers × 2 (key, value) × 2 heads × 8 × 4 bytes
// = 256 bytes per token, so 0.3 MiB holds about 1,228 tokens.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { startTestServer, tinyGenerativeModel, type TestServer } from '@ferry/test-kit';

let t: TestServer;
let url: string;

before(async () => {
  t = await startTestServer([tinyGenerativeModel('tiny-gpt', { contextLength: 2048, seed: 5 })], {
    'server.port': 0,
    'server.host': '127.0.0.1',
    'generation.maxKvMiB': 0.3,
  });
  url = (await t.server.listen()).url;
});

after(async () => {
  await t?.close();
});

const complete = (maxTokens: number) =>
  fetch(`${url}/openai/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny-gpt', prompt: 'Dear Ann,', max_tokens: maxTokens, temperature: 0 }),
  });

test('past generation.maxKvMiB a request is refused with 503 and Retry-After; alone too large, 400', async () => {
  const g = t.server.generation;
  const gv = g.resolve('tiny-gpt');
  // A generation that holds 1,000 tokens' reservation: never acknowledged, it pauses after its credit.
  const held = g.start(gv, [1, 2, 3], { maxTokens: 1000, temperature: 0, topP: 1, stop: [] }, performance.now());
  try {
    const busy = await complete(500);
    assert.equal(busy.status, 503);
    assert.equal(busy.headers.get('retry-after'), '1');
    const body = (await busy.json()) as { code: string; detail: string };
    assert.equal(body.code, 'server-overloaded');
    assert.match(body.detail, /maxKvMiB/);
    // A small one still fits beside it.
    assert.equal((await complete(8)).status, 200);
  } finally {
    held.cancel('disconnected');
    await held.done;
  }
  // Its reservation is returned: the same request is served now.
  assert.equal((await complete(500)).status, 200);
  const never = await complete(2000);
  assert.equal(never.status, 400);
  const err = (await never.json()) as { code: string; errors: { pointer: string }[] };
  assert.equal(err.code, 'invalid-request');
  assert.equal(err.errors[0]!.pointer, '/max_tokens');
});

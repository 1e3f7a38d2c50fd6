// The OpenAI-compatible API end to end, driven by the official `openai` client against a real server
// (listening on a port) serving a tiny GPT-2-shaped model through the decode worker and its KV cache.
// Greedy outputs are checked against a direct greedy decode of the same ONNX model here in the test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import * as ort from 'onnxruntime-node';
import { join } from 'node:path';
import { startTestServer, type TestServer, tinyLinearModel, tinyDecoder, tinyGenerativeModel } from '@ferry/test-kit';
import { decoderLayout, KvSequence } from '../../generation/decoder-session.js';
import { argmax } from '../../generation/sampler.js';
import { TextCodec } from '../../generation/text-codec.js';

const CONTEXT = 2048;
let t: TestServer;
let url: string;
let client: OpenAI;
let codec: TextCodec;
let session: ort.InferenceSession;

/** Greedy decode of `n` tokens straight from ONNX Runtime, as the reference for temperature 0. */
async function greedy(promptIds: number[], n: number): Promise<string> {
  const seq = new KvSequence(session, decoderLayout(session));
  const out: number[] = [];
  let logits = await seq.step(promptIds);
  for (let i = 0; i < n; i++) {
    const tok = argmax(logits);
    out.push(tok);
    if (i + 1 < n) logits = await seq.step([tok]);
  }
  seq.dispose();
  return codec.decode(out);
}

const chatPromptIds = (content: string) => codec.encode(`<|user|>\n${content}<|end|>\n<|assistant|>\n`, false);

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const m = await t.server.metrics.registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(async () => {
  const tiny = tinyGenerativeModel('tiny-gpt', { contextLength: CONTEXT, seed: 5 });
  const lin = tinyLinearModel();
  t = await startTestServer(
    [tiny, { name: 'lin', version: '1.0.0', files: { onnx: lin.onnx, manifest: lin.manifest } }],
    {
      'server.port': 0,
      'server.host': '127.0.0.1',
      'generation.maxConcurrent': 2,
    },
  );
  url = (await t.server.listen()).url;
  client = new OpenAI({ baseURL: `${url}/openai/v1`, apiKey: 'unused', maxRetries: 0 });
  codec = new TextCodec(join(t.repoDir, 'tiny-gpt', '1.0.0'), { contextLength: CONTEXT, eosTokens: ['<|endoftext|>'] });
  session = await ort.InferenceSession.create(tinyDecoder({ contextLength: CONTEXT, seed: 5 }).onnx);
});

after(async () => {
  await session?.release();
  await t?.close();
});

describe('openai client against /openai/v1', () => {
  test('models lists the generative model by name and by name@version, and not the predict-only model', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['tiny-gpt', 'tiny-gpt@1.0.0']);
    const one = await client.models.retrieve('tiny-gpt@1');
    assert.equal(one.id, 'tiny-gpt@1.0.0');
    assert.equal(one.object, 'model');
  });

  test('chat completion (stream: false) returns the greedy decode, usage and finish_reason length', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny-gpt',
      messages: [{ role: 'user', content: 'hello there' }],
      max_tokens: 24,
      temperature: 0,
    });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'tiny-gpt@1.0.0');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0]!.message.role, 'assistant');
    assert.equal(r.choices[0]!.finish_reason, 'length');
    const prompt = chatPromptIds('hello there');
    assert.deepEqual(r.usage, {
      prompt_tokens: prompt.length,
      completion_tokens: 24,
      total_tokens: prompt.length + 24,
      // An addition to OpenAI's shape (their field): prompt tokens served from the prefix cache.
      prompt_tokens_details: { cached_tokens: 0 },
    });
    assert.equal(r.choices[0]!.message.content, await greedy(prompt, 24));
  });

  test('chat completion (stream: true) sends role first, deltas that add up to the same text, finish_reason, usage and [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'tiny-gpt',
      messages: [{ role: 'user', content: 'hello there' }],
      max_tokens: 24,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id));
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, await greedy(chatPromptIds('hello there'), 24));
    const finals = chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finals.length, 1);
    assert.equal(finals[0]!.choices[0]!.finish_reason, 'length');
    const usageChunk = chunks.at(-1)!;
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage?.completion_tokens, 24);
    assert.ok(chunks.length > 5, 'streamed token by token');
  });

  test('the raw stream is text/event-stream ending with data: [DONE]', async () => {
    const res = await fetch(`${url}/openai/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-gpt', prompt: 'abc', max_tokens: 5, temperature: 0, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const body = await res.text();
    const events = body.split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    assert.ok(events.every((e) => e.startsWith('data: ')));
  });

  test('seed: the same seed gives the same sampled text, another seed another', async () => {
    const ask = (seed: number) =>
      client.chat.completions.create({
        model: 'tiny-gpt',
        messages: [{ role: 'user', content: 'sample me' }],
        max_tokens: 40,
        temperature: 1.2,
        top_p: 0.95,
        seed,
      });
    const a = await ask(1234);
    const b = await ask(1234);
    const c = await ask(99);
    assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
    assert.notEqual(a.choices[0]!.message.content, c.choices[0]!.message.content);
    assert.notEqual(
      a.choices[0]!.message.content,
      await greedy(chatPromptIds('sample me'), 40),
      'temperature 1.2 samples, it is not greedy',
    );
  });

  test('stop: the text ends before the first stop sequence and finish_reason is stop', async () => {
    const full = await greedy(codec.encode('The quick', true), 40);
    const stop = [...full.slice(6, 9)].join('');
    const cut = full.indexOf(stop);
    for (const stream of [false, true]) {
      if (!stream) {
        const r = await client.completions.create({
          model: 'tiny-gpt',
          prompt: 'The quick',
          max_tokens: 40,
          temperature: 0,
          stop: [stop, '\u0000never'],
        });
        assert.equal(r.choices[0]!.text, full.slice(0, cut));
        assert.equal(r.choices[0]!.finish_reason, 'stop');
        assert.ok(r.usage!.completion_tokens < 40);
      } else {
        const s = await client.completions.create({
          model: 'tiny-gpt',
          prompt: 'The quick',
          max_tokens: 40,
          temperature: 0,
          stop,
          stream: true,
        });
        let text = '';
        let finish = '';
        for await (const c of s) {
          text += c.choices[0]?.text ?? '';
          finish = c.choices[0]?.finish_reason ?? finish;
        }
        assert.equal(text, full.slice(0, cut));
        assert.equal(finish, 'stop');
      }
    }
  });

  test('completions (stream: false) answers a text_completion with the greedy text', async () => {
    const r = await client.completions.create({
      model: 'tiny-gpt@1.0.0',
      prompt: 'Dear Bob,',
      max_tokens: 12,
      temperature: 0,
    });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0]!.text, await greedy(codec.encode('Dear Bob,', true), 12));
    assert.equal(r.usage!.prompt_tokens, 9);
  });

  // The server allows 2 generations at once (generation.maxConcurrent): n counts as n of them.
  test('n=2 shares one prefill: greedy choices both equal the greedy text; sampled ones follow seed, seed+1', async () => {
    const g = await client.chat.completions.create({
      model: 'tiny-gpt',
      messages: [{ role: 'user', content: 'three' }],
      max_tokens: 10,
      temperature: 0,
      n: 2,
    });
    const want = await greedy(chatPromptIds('three'), 10);
    assert.deepEqual(
      g.choices.map((c) => [c.index, c.message.content]),
      [
        [0, want],
        [1, want],
      ],
    );
    // The prompt is counted once, the completions of every choice.
    assert.equal(g.usage!.prompt_tokens, chatPromptIds('three').length);
    assert.equal(g.usage!.completion_tokens, 20);
    await assert.rejects(
      client.chat.completions.create({ model: 'tiny-gpt', messages: [{ role: 'user', content: 'x' }], n: 3 }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 503,
    );
    const sampled = { model: 'tiny-gpt', prompt: 'Dear Ann,', max_tokens: 16, temperature: 1.1 };
    const many = await client.completions.create({ ...sampled, n: 2, seed: 500 });
    const one = await client.completions.create({ ...sampled, seed: 501 });
    assert.equal(many.choices[1]!.text, one.choices[0]!.text);
    assert.notEqual(many.choices[0]!.text, many.choices[1]!.text);
    // Streamed, each chunk names its choice; each choice's deltas add up to that choice's text.
    const s = await client.completions.create({ ...sampled, n: 2, seed: 500, stream: true });
    const texts = ['', ''];
    const finished = [false, false];
    for await (const c of s)
      for (const ch of c.choices) {
        texts[ch.index] += ch.text;
        if (ch.finish_reason) finished[ch.index] = true;
      }
    assert.deepEqual(
      texts,
      many.choices.map((c) => c.text),
    );
    assert.deepEqual(finished, [true, true]);
  });

  test('logprobs: chat content entries and completions arrays hold the log-softmax of the model', async () => {
    const ids = chatPromptIds('odds');
    const seq = new KvSequence(session, decoderLayout(session));
    const logits = await seq.step(ids);
    seq.dispose();
    let max = -Infinity;
    for (const x of logits) max = Math.max(max, x);
    const norm = max + Math.log(logits.reduce((a, x) => a + Math.exp(x - max), 0));
    const best = argmax(logits);
    const r = await client.chat.completions.create({
      model: 'tiny-gpt',
      messages: [{ role: 'user', content: 'odds' }],
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = r.choices[0]!.logprobs!.content!;
    assert.equal(content.length, 5);
    assert.equal(content.map((c) => c.token).join(''), r.choices[0]!.message.content);
    assert.ok(Math.abs(content[0]!.logprob - (logits[best]! - norm)) < 1e-4);
    assert.equal(content[0]!.top_logprobs.length, 3);
    assert.equal(content[0]!.top_logprobs[0]!.token, content[0]!.token);
    assert.deepEqual(content[0]!.bytes, [...Buffer.from(content[0]!.token)]);
    const c = await client.completions.create({
      model: 'tiny-gpt',
      prompt: 'Dear Bob,',
      max_tokens: 4,
      temperature: 0,
      logprobs: 2,
    });
    const lp = c.choices[0]!.logprobs!;
    assert.equal(lp.tokens!.join(''), c.choices[0]!.text);
    assert.equal(lp.token_logprobs!.length, 4);
    assert.deepEqual(
      lp.text_offset,
      [0, 1, 2, 3].map((i) => lp.tokens!.slice(0, i).join('').length),
    );
    for (const [i, top] of lp.top_logprobs!.entries()) {
      assert.equal(Object.keys(top).length <= 2, true);
      assert.ok(Math.abs(Math.max(...Object.values(top)) - lp.token_logprobs![i]!) < 1e-9);
    }
    // Streamed: every chunk carries the entries of its own tokens.
    const s = await client.chat.completions.create({
      model: 'tiny-gpt',
      messages: [{ role: 'user', content: 'odds' }],
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
      stream: true,
    });
    const streamed: number[] = [];
    for await (const ch of s) for (const e of ch.choices[0]?.logprobs?.content ?? []) streamed.push(e.logprob);
    assert.equal(streamed.length, 5);
    streamed.forEach((v, i) => assert.ok(Math.abs(v - content[i]!.logprob) < 1e-6));
  });

  test('a shared system prompt is served from the prefix cache: cached_tokens reported, output unchanged', async () => {
    const system = 'You answer e-mails for the Ferry project. Keep it short, polite and on topic. '.repeat(2);
    const ask = (user: string) =>
      client.completions.create({ model: 'tiny-gpt', prompt: system + user, max_tokens: 8, temperature: 0 });
    const first = await ask('First question?');
    const second = await ask('Another one!');
    const cached = (second.usage as unknown as { prompt_tokens_details: { cached_tokens: number } })
      .prompt_tokens_details.cached_tokens;
    // Byte-level tokens: the system prompt is its length in tokens (+1 bos); whole blocks of 16 are shared.
    assert.equal(cached, Math.floor(codec.encode(system, true).length / 16) * 16);
    assert.ok(cached >= 128);
    assert.equal(second.choices[0]!.text, await greedy(codec.encode(system + 'Another one!', true), 8));
    assert.equal(first.choices[0]!.text, await greedy(codec.encode(system + 'First question?', true), 8));
    assert.ok(
      (await metricValue('ferry_generation_tokens_total', { model: 'tiny-gpt', kind: 'cached_prompt' })) >= cached,
    );
  });

  test('a prompt longer than the context is context-length-exceeded; so is max_tokens past it', async () => {
    await assert.rejects(
      client.completions.create({ model: 'tiny-gpt', prompt: 'x'.repeat(CONTEXT + 10), max_tokens: 1 }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.code, 'context-length-exceeded');
        assert.equal(e.param, 'prompt');
        return true;
      },
    );
    await assert.rejects(
      client.completions.create({ model: 'tiny-gpt', prompt: 'abc', max_tokens: CONTEXT }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.param, 'max_tokens');
        return true;
      },
    );
  });

  test('an unknown model is a 404, a predict-only model a 400 model-not-generative', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.NotFoundError);
        assert.equal(e.code, 'model-not-found');
        return true;
      },
    );
    await assert.rejects(
      client.chat.completions.create({ model: 'lin', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.code, 'model-not-generative');
        assert.equal(e.param, 'model');
        return true;
      },
    );
  });

  test('a client that disconnects mid-stream cancels the generation and frees it', async () => {
    const before = await metricValue('ferry_generation_finished_total', { model: 'tiny-gpt', reason: 'disconnected' });
    const tokensBefore = await metricValue('ferry_generation_tokens_total', { model: 'tiny-gpt', kind: 'completion' });
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      {
        model: 'tiny-gpt',
        messages: [{ role: 'user', content: 'go on' }],
        max_tokens: 2000,
        temperature: 0,
        stream: true,
      },
      { signal: ac.signal },
    );
    let seen = 0;
    // The openai client ends the iteration (or throws an abort error, by version) once the signal fires.
    await (async () => {
      for await (const c of stream) {
        if (c.choices[0]?.delta.content && ++seen === 3) ac.abort();
      }
    })().catch(() => undefined);
    assert.ok(seen >= 3);
    await waitFor(
      async () =>
        (await metricValue('ferry_generation_finished_total', { model: 'tiny-gpt', reason: 'disconnected' })) ===
        before + 1,
      'the generation to end as disconnected',
    );
    assert.equal(t.server.generation.active, 0);
    // The decode worker dropped it too: no sequence of the model is left in its batch.
    const [stats] = await t.server.generation.stats(t.server.generation.resolve('tiny-gpt'));
    assert.equal(stats!.sequences, 0);
    const produced =
      (await metricValue('ferry_generation_tokens_total', { model: 'tiny-gpt', kind: 'completion' })) - tokensBefore;
    assert.ok(produced < 2000, `generation stopped early (${produced} of 2000 tokens)`);
  });

  test('past generation.maxConcurrent a request gets 503 with Retry-After', async () => {
    const acs = [new AbortController(), new AbortController()];
    const streams = await Promise.all(
      acs.map((ac) =>
        client.chat.completions.create(
          {
            model: 'tiny-gpt',
            messages: [{ role: 'user', content: 'long' }],
            max_tokens: 2000,
            temperature: 0,
            stream: true,
          },
          { signal: ac.signal },
        ),
      ),
    );
    try {
      const res = await fetch(`${url}/openai/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny-gpt', prompt: 'x', max_tokens: 2 }),
      });
      const body = (await res.json()) as { code: string; error: { type: string } };
      // Both long generations may already have finished on a fast machine; then the third is simply served.
      if (t.server.generation.active >= 2 || res.status === 503) {
        assert.equal(res.status, 503);
        assert.equal(res.headers.get('retry-after'), '1');
        assert.equal(body.code, 'server-overloaded');
        assert.equal(body.error.type, 'rate_limit_error');
      }
    } finally {
      acs.forEach((ac) => ac.abort());
      await Promise.allSettled(
        streams.map(async (s) => {
          for await (const _ of s) {
            /* drain */
          }
        }),
      );
    }
    await waitFor(() => t.server.generation.active === 0, 'the generations to end');
  });

  test('time to first token and tokens/s are exported', async () => {
    await client.completions.create({ model: 'tiny-gpt', prompt: 'metrics', max_tokens: 8, temperature: 0 });
    const text = await (await fetch(`${url}/metrics`)).text();
    const count = (name: string) =>
      Number(new RegExp(`^${name}_count\\{model="tiny-gpt",version="1.0.0"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    assert.ok(count('ferry_generation_time_to_first_token_seconds') >= 1);
    assert.ok(count('ferry_generation_tokens_per_second') >= 1);
    assert.match(text, /ferry_generation_tokens_total\{model="tiny-gpt",version="1.0.0",kind="prompt"\} \d+/);
  });
});

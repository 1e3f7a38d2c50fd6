// The LLM gateway end to end: the official `openai` client calls a real Ferry (listening on a port) whose
// routes reach two PROVIDER EMULATORS started here (stand-ins for hosted OpenAI and Anthropic APIs,
// speaking their real wire protocols, told to fail in the ways real providers fail). Embedded defaults:
// in-process cache, budget counters and ledger in the SQLite store.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startLlmEmulator, startTestServer, type LlmEmulator, type TestServer } from '@ferry/test-kit';

let t: TestServer;
let base: string;
let client: OpenAI;
let emuA: LlmEmulator; // OpenAI wire protocol
let emuB: LlmEmulator; // Anthropic wire protocol

const fast = {
  connectTimeoutMs: 2000,
  firstTokenTimeoutMs: 400,
  totalTimeoutMs: 10_000,
  retryBaseDelayMs: 1,
  retryMaxDelayMs: 50,
};
const PRICE_A = { inputPerMTok: 1, cachedInputPerMTok: 0.5, outputPerMTok: 2 };
const PRICE_B = { inputPerMTok: 3, cachedInputPerMTok: 0, outputPerMTok: 15 };

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = await t.server.metrics.registry.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v))
    .reduce((s, x) => s + x.value, 0);
}

before(async () => {
  // Answers by model: the cheap model cannot write JSON, the big one can (the cascade's check).
  emuA = await startLlmEmulator({
    answer: (messages, model) => {
      const last = messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
      if (model === 'cheap-1' && last.startsWith('json:')) return 'Sure, here it is: {broken';
      if (model === 'big-1' && last.startsWith('json:')) return '{"ok": true}';
      return `reply: ${last}`;
    },
  });
  emuB = await startLlmEmulator();
  t = await startTestServer([], {
    'server.port': 0,
    'llm.providers': {
      a: {
        kind: 'openai',
        baseUrl: emuA.url,
        maxRetries: 1,
        ...fast,
        prices: { 'gpt-a': PRICE_A, 'cheap-1': PRICE_A, 'big-1': PRICE_B },
      },
      b: { kind: 'anthropic', baseUrl: emuB.url, maxRetries: 0, ...fast, prices: { 'claude-b': PRICE_B } },
      emb: { kind: 'openai', baseUrl: emuA.url, ...fast },
    },
    'llm.embeddings.provider': 'emb',
    'llm.embeddings.model': 'emb-1',
    'llm.routes': {
      'support-reply': {
        tiers: {
          main: [
            { provider: 'a', model: 'gpt-a' },
            { provider: 'b', model: 'claude-b' },
          ],
        },
      },
      'only-b': { tiers: { main: [{ provider: 'b', model: 'claude-b' }] } },
      trimmed: {
        tiers: { main: [{ provider: 'a', model: 'gpt-a' }] },
        maxPromptTokens: 80,
        cache: { exact: false },
      },
      strict: { tiers: { main: [{ provider: 'a', model: 'gpt-a' }] }, maxPromptTokens: 20, trim: 'refuse' },
      tiered: {
        tiers: { cheap: [{ provider: 'a', model: 'cheap-1' }], big: [{ provider: 'a', model: 'big-1' }] },
        rules: [
          { tier: 'big', metadata: { plan: 'pro' } },
          { tier: 'big', minMessages: 4 },
        ],
        cascade: { enabled: true, requireJson: false },
        cache: { exact: false },
      },
      'json-cascade': {
        tiers: { cheap: [{ provider: 'a', model: 'cheap-1' }], big: [{ provider: 'a', model: 'big-1' }] },
        cascade: { enabled: true, requireJson: true },
        cache: { exact: false },
      },
      semantic: {
        tiers: { main: [{ provider: 'a', model: 'gpt-a' }] },
        cache: { exact: true, semanticThreshold: 0.9 },
      },
      budgeted: {
        tiers: { main: [{ provider: 'a', model: 'gpt-a' }] },
        cache: { exact: false },
        defaultMaxTokens: 20,
      },
    },
    'llm.budgets': [{ scope: 'route', match: 'budgeted', window: 'day', tokens: 40 }],
  });
  const addr = await t.server.listen();
  base = addr.url;
  client = new OpenAI({ baseURL: `${base}/openai/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await t?.close();
  await emuA?.close();
  await emuB?.close();
});

const ask = (model: string, content: string, extra: Record<string, unknown> = {}) =>
  client.chat.completions
    .create({ model, messages: [{ role: 'user', content }], ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming)
    .withResponse();

describe('routes and providers', () => {
  test('a route answers through the OpenAI-compatible provider and says who answered', async () => {
    const before = emuA.requests.length;
    const { data, response } = await ask('support-reply', 'where is my parcel');
    assert.equal(data.choices[0]!.message.content, 'reply: where is my parcel');
    assert.equal(response.headers.get('ferry-llm-provider'), 'a', response.headers.get('ferry-llm-reason')!);
    assert.equal(response.headers.get('ferry-llm-model'), 'gpt-a');
    assert.equal(response.headers.get('ferry-llm-cache'), 'none');
    assert.equal((data as unknown as { ferry: { reason: string } }).ferry.reason, 'default tier');
    // The emulator counts words: 4 prompt words, 5 completion words.
    assert.deepEqual([data.usage?.prompt_tokens, data.usage?.completion_tokens], [4, 5]);
    const sent = emuA.requests.at(-1)!;
    assert.equal(emuA.requests.length, before + 1);
    assert.equal(sent.body.model, 'gpt-a');
    assert.equal(sent.headers.authorization, undefined, 'no key configured, none sent');
  });

  test('429 with Retry-After is retried on the same provider', async () => {
    const before = emuA.requests.length;
    emuA.faults.push({ kind: 'status', status: 429, retryAfter: '0' });
    const { data, response } = await ask('support-reply', 'retry me');
    assert.equal(data.choices[0]!.message.content, 'reply: retry me');
    assert.equal(response.headers.get('ferry-llm-provider'), 'a');
    assert.equal(emuA.requests.length, before + 2);
    assert.ok((await metric('ferry_llm_retries_total', { provider: 'a' })) >= 1);
  });

  test('500s past the retries fall back to the Anthropic provider, translated both ways', async () => {
    const beforeB = emuB.requests.length;
    emuA.faults.push({ kind: 'status', status: 500 }, { kind: 'status', status: 500 });
    const { data, response } = await client.chat.completions
      .create({
        model: 'support-reply',
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'hello there' },
        ],
        max_tokens: 50,
      })
      .withResponse();
    assert.equal(data.choices[0]!.message.content, 'reply: hello there');
    assert.equal(response.headers.get('ferry-llm-provider'), 'b');
    assert.match(response.headers.get('ferry-llm-reason')!, /fallback after a http 500/);
    const sent = emuB.requests.at(-1)!;
    assert.equal(emuB.requests.length, beforeB + 1);
    assert.equal(sent.body.system, 'be brief');
    assert.deepEqual(sent.body.messages, [{ role: 'user', content: 'hello there' }]);
    assert.equal(sent.body.max_tokens, 50);
    assert.equal(sent.headers['anthropic-version'], '2023-06-01');
    // Anthropic's usage (input 4 words incl. system, output 3) comes back as OpenAI usage.
    assert.deepEqual([data.usage?.prompt_tokens, data.usage?.completion_tokens], [4, 3]);
  });

  test('a streamed Anthropic answer becomes OpenAI chunks', async () => {
    const stream = await client.chat.completions.create({
      model: 'only-b',
      messages: [{ role: 'user', content: 'stream this answer please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, 'reply: stream this answer please');
    assert.equal(finish, 'stop');
    assert.deepEqual([usage?.prompt_tokens, usage?.completion_tokens], [4, 5]);
  });

  test('max_tokens reached upstream is finish_reason length (Anthropic max_tokens)', async () => {
    const { data } = await ask('only-b', 'one two three four five six', { max_tokens: 3 });
    assert.equal(data.choices[0]!.finish_reason, 'length');
    assert.equal(data.choices[0]!.message.content, 'reply: one two ');
  });

  test('a slow first byte past firstTokenTimeoutMs falls back', async () => {
    emuA.faults.push({ kind: 'slow-first-byte', ms: 3000 }, { kind: 'slow-first-byte', ms: 3000 });
    const { response } = await ask('support-reply', 'slow one');
    assert.equal(response.headers.get('ferry-llm-provider'), 'b');
    assert.match(response.headers.get('ferry-llm-reason')!, /first-token-timeout/);
    emuA.faults.length = 0;
  });

  test('a malformed chunk before any text is retried; a stream cut after text ends with an error event', async () => {
    emuA.faults.push({ kind: 'malformed-chunk', afterChunks: 0 });
    const s1 = await client.chat.completions.create({
      model: 'support-reply',
      messages: [{ role: 'user', content: 'malformed then fine' }],
      stream: true,
    });
    let text = '';
    for await (const c of s1) text += c.choices[0]?.delta.content ?? '';
    assert.equal(text, 'reply: malformed then fine');
    const errs = await t.server.metrics.registry.getSingleMetric('ferry_llm_upstream_errors_total')?.get();
    assert.ok(
      (await metric('ferry_llm_upstream_errors_total', { provider: 'a', failure: 'malformed' })) >= 1,
      JSON.stringify(errs?.values),
    );

    emuA.faults.push({ kind: 'cut-stream', afterChunks: 2 });
    const s2 = await client.chat.completions.create({
      model: 'support-reply',
      messages: [{ role: 'user', content: 'this stream will be cut midway' }],
      stream: true,
    });
    let got = '';
    await assert.rejects(async () => {
      for await (const c of s2) got += c.choices[0]?.delta.content ?? '';
    }, /upstream|failed/i);
    assert.equal(got, 'reply: this ', 'the two chunks sent before the cut reached the client');
  });

  test('wrong usage from the upstream is replaced by a count, bounded by max_tokens', async () => {
    emuA.faults.push({ kind: 'wrong-usage', promptTokens: 5, completionTokens: 1_000_000 });
    const { data } = await ask('support-reply', 'count me', { max_tokens: 10 });
    assert.ok(data.usage!.completion_tokens <= 10, `completion ${data.usage!.completion_tokens}`);
    assert.ok(data.usage!.completion_tokens >= 1);
  });
});

describe('caches', () => {
  test('exact cache: a temperature-0 request is answered once upstream, then from the cache (also streamed)', async () => {
    const before = emuA.requests.length;
    const r1 = await ask('support-reply', 'cache me exactly', { temperature: 0 });
    const r2 = await ask('support-reply', 'cache me exactly', { temperature: 0 });
    assert.equal(emuA.requests.length, before + 1);
    assert.equal(r1.response.headers.get('ferry-llm-cache'), 'none');
    assert.equal(r2.response.headers.get('ferry-llm-cache'), 'exact');
    assert.equal(r2.data.choices[0]!.message.content, r1.data.choices[0]!.message.content);
    const s = await client.chat.completions.create({
      model: 'support-reply',
      messages: [{ role: 'user', content: 'cache me exactly' }],
      temperature: 0,
      stream: true,
    });
    const pieces: string[] = [];
    for await (const c of s) if (c.choices[0]?.delta.content) pieces.push(c.choices[0].delta.content);
    assert.equal(pieces.join(''), 'reply: cache me exactly');
    assert.ok(pieces.length > 1, 'replayed as a stream of pieces');
    assert.equal(emuA.requests.length, before + 1);
    // Sampled requests are not cached by default.
    await ask('support-reply', 'cache me exactly', { temperature: 0.7 });
    assert.equal(emuA.requests.length, before + 2);
  });

  test('semantic cache: a near-duplicate prompt is answered from the cache; a different one is not', async () => {
    const before = emuA.requests.filter((r) => r.api === 'openai').length;
    await ask('semantic', 'How do I reset my account password?', { temperature: 0.5 });
    const near = await ask('semantic', 'how do i reset my account password', { temperature: 0.5 });
    assert.equal(near.response.headers.get('ferry-llm-cache'), 'semantic');
    assert.equal(near.data.choices[0]!.message.content, 'reply: How do I reset my account password?');
    const other = await ask('semantic', 'What is the weather in Lisbon tomorrow?', { temperature: 0.5 });
    assert.equal(other.response.headers.get('ferry-llm-cache'), 'none');
    assert.equal(emuA.requests.filter((r) => r.api === 'openai').length, before + 2);
    // Another tenant has its own scope.
    const otherTenant = await ask('semantic', 'how do i reset my account password', { temperature: 0.5, user: 'acme' });
    assert.equal(otherTenant.response.headers.get('ferry-llm-cache'), 'none');
    // Invalidation empties the route's scope (no keys configured: admin routes are off, so call the service).
    assert.ok((await t.server.llm.invalidate('semantic')) >= 1);
    const again = await ask('semantic', 'how do i reset my account password', { temperature: 0.5 });
    assert.equal(again.response.headers.get('ferry-llm-cache'), 'none');
  });
});

describe('tiering and prompt budgets', () => {
  test('rules pick a tier from metadata and message count', async () => {
    const cheap = await ask('tiered', 'hi');
    assert.equal(cheap.response.headers.get('ferry-llm-tier'), 'cheap');
    const pro = await ask('tiered', 'hi', { metadata: { plan: 'pro' } });
    assert.equal(pro.response.headers.get('ferry-llm-tier'), 'big');
    assert.equal(pro.response.headers.get('ferry-llm-reason'), 'rule 0');
    const long = await client.chat.completions
      .create({
        model: 'tiered',
        messages: ['a', 'b', 'c', 'd'].map((c, i) => ({ role: i % 2 ? 'assistant' : 'user', content: c }) as const),
      })
      .withResponse();
    assert.equal(long.response.headers.get('ferry-llm-tier'), 'big');
  });

  test('cascade: an answer that is not JSON escalates to the next tier', async () => {
    const { data, response } = await ask('json-cascade', 'json: the order status');
    assert.equal(data.choices[0]!.message.content, '{"ok": true}');
    assert.equal(response.headers.get('ferry-llm-tier'), 'big');
    assert.match(response.headers.get('ferry-llm-reason')!, /escalated from cheap: json/);
    assert.ok((await metric('ferry_llm_escalations_total', { route: 'json-cascade', reason: 'json' })) >= 1);
  });

  test('history trimming keeps the system prompt and the newest turns that fit', async () => {
    const filler = 'lorem ipsum dolor sit amet '.repeat(3);
    const messages = [
      { role: 'system' as const, content: 'you are terse' },
      ...Array.from({ length: 10 }, (_, i) => ({
        role: (i % 2 ? 'assistant' : 'user') as 'user' | 'assistant',
        content: `${i} ${filler}`,
      })),
      { role: 'user' as const, content: 'final question' },
    ];
    await client.chat.completions.create({ model: 'trimmed', messages });
    const sent = emuA.requests.at(-1)!.body.messages as { role: string; content: string }[];
    assert.ok(sent.length < messages.length && sent.length >= 2, `${sent.length} messages sent`);
    assert.deepEqual(sent[0], { role: 'system', content: 'you are terse' });
    assert.deepEqual(sent.at(-1), { role: 'user', content: 'final question' });
    // The kept turns are the newest ones, contiguous.
    assert.ok(sent.length > 2, 'at least one older turn fits');
    assert.equal(sent[1]!.content.split(' ')[0], String(10 - (sent.length - 2)));
  });

  test('a prompt that cannot fit is a 400 prompt-too-large naming /messages', async () => {
    const err = await ask('strict', 'word '.repeat(100)).then(
      () => assert.fail('accepted'),
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );
    assert.equal(err.status, 400);
    assert.equal((err.error as { code: string }).code, 'prompt-too-large');
    assert.equal((err.error as { param: string }).param, 'messages');
  });
});

describe('budgets and the ledger', () => {
  test('a route budget refuses with 429 budget-exceeded and Retry-After once the estimate does not fit', async () => {
    // Estimate: prompt (~11 tiktoken tokens) + 20 max tokens ≈ 31, reconciled to the 8 the emulator bills:
    // 40 tokens a day take two requests, and refuse the third (8 + 8 + 31 > 40).
    let ok = 0;
    let refused: InstanceType<typeof OpenAI.APIError> | undefined;
    for (let i = 0; i < 6 && !refused; i++) {
      await ask('budgeted', `budget probe ${i}`).then(
        () => ok++,
        (e: unknown) => {
          refused = e as InstanceType<typeof OpenAI.APIError>;
        },
      );
    }
    assert.ok(ok >= 2, `${ok} answered before the budget`);
    assert.ok(refused, 'the budget refused a request');
    assert.equal(refused.status, 429);
    assert.equal((refused.error as { code: string }).code, 'budget-exceeded');
    const retryAfter = Number(refused.headers?.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 86_400, `retry-after ${retryAfter}`);
    assert.ok((await metric('ferry_llm_budget_rejections_total', { scope: 'route', window: 'day' })) >= 1);
  });

  test('the ledger holds spend by route, priced from the usage; /v1/llm/spend reads it', async () => {
    const res = await fetch(`${base}/v1/llm/spend?sinceMs=0`);
    assert.equal(res.status, 200);
    const s = (await res.json()) as {
      byRoute: { group: string; requests: number; costUsd: number; promptTokens: number; completionTokens: number }[];
      byCache: { group: string; requests: number }[];
    };
    const onlyB = s.byRoute.find((r) => r.group === 'only-b')!;
    // only-b is priced $3 / $15 per million prompt / completion tokens.
    assert.ok(Math.abs(onlyB.costUsd - (onlyB.promptTokens * 3 + onlyB.completionTokens * 15) / 1e6) < 1e-9);
    assert.ok(onlyB.costUsd > 0);
    assert.ok(s.byCache.find((r) => r.group === 'exact')!.requests >= 2);
    assert.ok((await metric('ferry_llm_spend_usd_total', { route: 'only-b', provider: 'b' })) > 0);
    assert.ok((await metric('ferry_llm_tokens_total', { route: 'support-reply', kind: 'completion' })) > 0);
  });
});

describe('hostile input', () => {
  test('bad metadata, tenant and messages are 400s naming the field', async () => {
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}/openai/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    const m = [{ role: 'user', content: 'x' }];
    for (const [body, headers, pointer] of [
      [{ model: 'support-reply', messages: m, metadata: { a: 5 } }, {}, '/metadata/a'],
      [{ model: 'support-reply', messages: m, metadata: [1] }, {}, '/metadata'],
      [{ model: 'support-reply', messages: m, user: 'bad tenant\n' }, {}, '/user'],
      [{ model: 'support-reply', messages: [] }, {}, '/messages'],
      [{ model: 'support-reply', messages: m, max_tokens: -1 }, {}, '/max_tokens'],
    ] as const) {
      const res = await post(body, headers);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.headers.get('content-type')?.split(';')[0], 'application/problem+json');
      const p = (await res.json()) as { errors?: { pointer: string }[] };
      assert.equal(p.errors?.[0]?.pointer, pointer, JSON.stringify(body));
    }
    const bad = await post({ model: 'support-reply', messages: m }, { 'ferry-tenant': 'x'.repeat(300) });
    assert.equal(bad.status, 400);
    const comp = await fetch(`${base}/openai/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'support-reply', prompt: 'x' }),
    });
    assert.equal(comp.status, 400);
  });

  test('routes are listed as models', async () => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    assert.ok(ids.includes('support-reply') && ids.includes('only-b'));
  });
});

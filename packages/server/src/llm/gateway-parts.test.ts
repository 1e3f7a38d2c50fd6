// Unit tests of the gateway's pure parts: history trimming, the Anthropic translation, Retry-After,
// budget windows and subjects, cache keys and similarity, and the retry/breaker wrapper over an
// in-memory upstream (a stand-in for a remote API, not for a part of Ferry).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trimHistory, tiktokenCounter } from './tokens.js';
import { anthropicBody, finishFromAnthropic } from './providers/anthropic-provider.js';
import { parseRetryAfter, UpstreamError } from './upstream-error.js';
import { countersFor, windowOf } from './budgets.js';
import { cosine, exactKey, semanticScope } from './answer-cache.js';
import { ResilientProvider } from './resilience.js';
import type { ChatProvider, ChatRequest } from './types.js';
import type { LlmProviderConfig } from '../config/schemas/llm.js';

const req = (over: Partial<ChatRequest> = {}): ChatRequest => ({
  messages: [{ role: 'user', content: 'hi' }],
  maxTokens: 10,
  stop: [],
  stream: false,
  ...over,
});

test('tiktoken counts a chat the way OpenAI frames it', () => {
  const count = tiktokenCounter('gpt-4o-mini');
  // "hello world" is 2 tokens in o200k_base; +3 per message +1 role/name slack +3 reply primer.
  assert.equal(count([{ role: 'user', content: 'hello world' }]), 2 + 3 + 1 + 3);
  assert.ok(count([{ role: 'user', content: 'hello world '.repeat(50) }]) > 100);
});

test('trimming keeps system messages and the newest turns that fit, or refuses', () => {
  const count = (ms: readonly { content: string }[]) => ms.reduce((n, m) => n + m.content.length, 0);
  const msgs = [
    { role: 'system' as const, content: 'SS' },
    { role: 'user' as const, content: 'aaaa' },
    { role: 'assistant' as const, content: 'bbbb' },
    { role: 'user' as const, content: 'cc' },
  ];
  assert.deepEqual(trimHistory(msgs, 100, count)?.dropped, 0);
  const t = trimHistory(msgs, 8, count)!;
  assert.deepEqual(
    t.messages.map((m) => m.content),
    ['SS', 'bbbb', 'cc'],
  );
  assert.equal(t.promptTokens, 8);
  assert.equal(trimHistory(msgs, 3, count), undefined, 'system + newest turn do not fit');
});

test('OpenAI chats become Anthropic Messages requests', () => {
  const body = anthropicBody(
    'claude',
    req({
      messages: [
        { role: 'system', content: 'be kind' },
        { role: 'assistant', content: 'hello' },
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ],
      temperature: 1.5,
      stop: ['END'],
      stream: true,
    }),
  );
  assert.equal(body.system, 'be kind');
  assert.deepEqual(body.messages, [
    { role: 'user', content: '' },
    { role: 'assistant', content: 'hello' },
    { role: 'user', content: 'a\n\nb' },
  ]);
  assert.equal(body.temperature, 1, "clamped to Anthropic's range");
  assert.deepEqual(body.stop_sequences, ['END']);
  assert.equal(body.stream, true);
  assert.equal(finishFromAnthropic('max_tokens'), 'length');
  assert.equal(finishFromAnthropic('end_turn'), 'stop');
});

test('Retry-After in seconds or as a date', () => {
  assert.equal(parseRetryAfter('2'), 2000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6000);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(null), undefined);
});

test('budget windows and the counters a request touches', () => {
  const now = Date.UTC(2026, 1, 15, 13, 45, 30);
  assert.deepEqual(windowOf('minute', now), {
    start: Date.UTC(2026, 1, 15, 13, 45),
    end: Date.UTC(2026, 1, 15, 13, 46),
  });
  assert.deepEqual(windowOf('month', now), { start: Date.UTC(2026, 1, 1), end: Date.UTC(2026, 2, 1) });
  const budgets = [
    { scope: 'key' as const, match: '', window: 'day' as const, tokens: 10, usd: 0 },
    { scope: 'tenant' as const, match: 'acme', window: 'day' as const, tokens: 0, usd: 1 },
    { scope: 'route' as const, match: '', window: 'minute' as const, tokens: 5, usd: 0 },
  ];
  const c1 = countersFor(budgets, { key: 'k1', tenant: 'other', route: 'r' }, 'p:', now);
  assert.deepEqual(
    c1.map((c) => c.budget.scope),
    ['key', 'route'],
  );
  assert.ok(c1[0]!.id.includes(':k1:'));
  const c2 = countersFor(budgets, { key: undefined, tenant: 'acme', route: 'r' }, 'p:', now);
  assert.deepEqual(
    c2.map((c) => c.budget.scope),
    ['tenant', 'route'],
  );
});

test('exact keys depend on every sampling parameter; semantic scopes on the context', () => {
  const a = exactKey('r', undefined, req({ temperature: 0 }));
  assert.equal(a, exactKey('r', undefined, req({ temperature: 0 })));
  assert.notEqual(a, exactKey('r', undefined, req({ temperature: 0, maxTokens: 11 })));
  assert.notEqual(a, exactKey('r', 't', req({ temperature: 0 })));
  assert.notEqual(a, exactKey('r2', undefined, req({ temperature: 0 })));
  const ctx1 = semanticScope('r', undefined, [
    { role: 'system', content: 'x' },
    { role: 'user', content: 'q' },
  ]);
  const ctx2 = semanticScope('r', undefined, [
    { role: 'system', content: 'x' },
    { role: 'user', content: 'other q' },
  ]);
  assert.equal(ctx1, ctx2, 'only the last user turn is compared; the rest scopes');
  assert.ok(Math.abs(cosine([1, 0], [1, 0]) - 1) < 1e-12);
  assert.ok(Math.abs(cosine([1, 0], [0, 1])) < 1e-12);
  assert.equal(cosine([0, 0], [1, 0]), 0);
});

const cfg = (o: Partial<LlmProviderConfig> = {}): LlmProviderConfig => ({
  kind: 'openai',
  baseUrl: 'http://unused',
  apiKeyEnv: '',
  apiKeyFile: '',
  caFile: '',
  headers: {},
  connectTimeoutMs: 1000,
  firstTokenTimeoutMs: 1000,
  totalTimeoutMs: 1000,
  maxRetries: 2,
  retryBaseDelayMs: 0,
  retryMaxDelayMs: 5,
  breakerFailures: 2,
  breakerCoolDownMs: 60_000,
  maxConcurrent: 1,
  queueTimeoutMs: 1000,
  prices: {},
  ...o,
});

/** An in-memory upstream that fails with the given errors, then answers. */
function upstream(failures: UpstreamError[]): ChatProvider & { calls: number } {
  return {
    name: 'u',
    kind: 'openai',
    calls: 0,
    async chat(model, _r, _s, onDelta) {
      this.calls++;
      const f = failures.shift();
      if (f) throw f;
      onDelta?.('ok');
      return {
        text: 'ok',
        finishReason: 'stop',
        usage: { promptTokens: 1, completionTokens: 1, cachedPromptTokens: 0 },
        model,
      };
    },
  };
}

test('retries honour Retry-After, stop at maxRetries, and never retry a 400', async () => {
  const delays: number[] = [];
  const up = upstream([new UpstreamError('u', 'http', '429', 429, 3), new UpstreamError('u', 'http', '503', 503)]);
  const p = new ResilientProvider(up, cfg(), { onRetry: (_p, d) => delays.push(d) }, () => 1);
  assert.equal((await p.chat('m', req(), new AbortController().signal)).text, 'ok');
  assert.equal(up.calls, 3);
  assert.deepEqual(delays, [3, 0], 'Retry-After 3 ms first, then the backoff (base 0)');
  const bad = upstream([new UpstreamError('u', 'http', '400', 400)]);
  const p2 = new ResilientProvider(bad, cfg());
  await assert.rejects(p2.chat('m', req(), new AbortController().signal), { status: 400 });
  assert.equal(bad.calls, 1);
  assert.ok(p2.available, 'a 400 is the request’s fault and leaves the breaker closed');
});

test('the breaker opens after consecutive failed requests and fails fast', async () => {
  const e = () => new UpstreamError('u', 'http', '500', 500);
  const up = upstream([e(), e(), e(), e(), e(), e()]);
  const p = new ResilientProvider(up, cfg({ maxRetries: 0 }));
  const signal = new AbortController().signal;
  await assert.rejects(p.chat('m', req(), signal));
  assert.ok(p.available);
  await assert.rejects(p.chat('m', req(), signal));
  assert.equal(p.available, false);
  await assert.rejects(p.chat('m', req(), signal), { failure: 'breaker-open' });
  assert.equal(up.calls, 2, 'no call while open');
});

test('a failure after text was delivered is never retried', async () => {
  let calls = 0;
  const up: ChatProvider = {
    name: 'u',
    kind: 'openai',
    async chat(_m, _r, _s, onDelta) {
      calls++;
      onDelta?.('partial');
      throw new UpstreamError('u', 'stream-cut', 'cut');
    },
  };
  const p = new ResilientProvider(up, cfg());
  await assert.rejects(
    p.chat('m', req({ stream: true }), new AbortController().signal, () => undefined),
    {
      delivered: true,
    },
  );
  assert.equal(calls, 1);
});

test('a bad llm config is refused with the path of the bad key', async () => {
  const { resolveLlmConfig } = await import('../config/schemas/llm.js');
  const { validateLlmConfig } = await import('./index.js');
  const base = {
    cache: { maxEntries: 10, keyPrefix: 'p:', backend: '' as const },
    budgetBackend: '' as const,
    embeddings: { provider: '', model: '', field: 'text' },
    pricesFile: '',
  };
  assert.throws(
    () => resolveLlmConfig({ ...base, providers: { a: { kind: 'nope' } }, routes: {}, budgets: [] }),
    /llm\.providers\.a\.kind/,
  );
  assert.throws(
    () => resolveLlmConfig({ ...base, providers: {}, routes: {}, budgets: [{ scope: 'key', window: 'year' }] }),
    /llm\.budgets\[0\]\.window/,
  );
  const cfg = resolveLlmConfig({
    ...base,
    providers: { a: { kind: 'openai', baseUrl: 'http://x' } },
    routes: { r: { tiers: { t: [{ provider: 'b', model: 'm' }] } } },
    budgets: [],
  });
  assert.equal(cfg.providers.a!.maxRetries, 2, 'defaults filled');
  assert.throws(() => validateLlmConfig(cfg), /llm\.routes\.r\.tiers\.t\[0\]\.provider: no provider b/);
  const { resolveApiKey } = await import('./api-key.js');
  assert.throws(
    () => resolveApiKey('a', { ...cfg.providers.a!, apiKeyEnv: 'FERRY_TEST_UNSET_KEY' }, {}),
    /FERRY_TEST_UNSET_KEY is empty or unset/,
  );
  assert.equal(resolveApiKey('a', { ...cfg.providers.a!, apiKeyEnv: 'K' }, { K: ' sk-1 ' }), 'sk-1');
});

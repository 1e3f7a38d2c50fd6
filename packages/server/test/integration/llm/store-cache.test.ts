// The gateway's caches in the store (llm.cache.backend: store), on real databases: the backend alone
// once per dialect (a temporary SQLite file, a fresh PostgreSQL schema), then two Ferry replicas on one
// PostgreSQL schema sharing exact and semantic answers, with a PROVIDER EMULATOR (a labelled stand-in
// for a hosted OpenAI-compatible API, also serving its embeddings) as the upstream.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
  emulatorEmbedding,
  forEachDialect,
  startLlmEmulator,
  startTestServer,
  TEST_DATABASE_URL,
  uniqueSchemaName,
  withAdminClient,
  DIALECTS,
  type TestServer,
} from '@ferry/test-kit';
import { StoreAnswerCache } from '../../llm/store-answer-cache.js';
import { exactKey, semanticScope, type CachedAnswer } from '../../llm/answer-cache.js';

const entry = (text: string, costUsd = 0.01): CachedAnswer => ({
  answer: {
    text,
    finishReason: 'stop',
    usage: { promptTokens: 3, completionTokens: 2, cachedPromptTokens: 0 },
    model: 'm',
  },
  provider: 'p',
  tier: 'main',
  costUsd,
  at: 1,
});
const req = (content: string) => ({
  messages: [{ role: 'user' as const, content }],
  maxTokens: 10,
  stop: [],
  stream: false,
  temperature: 0,
});

forEachDialect('LLM answer cache in the store', (h) => {
  test('exact entries: set, get, overwrite, expiry', async () => {
    const { store } = await h.open();
    const c = new StoreAnswerCache(store);
    const k = exactKey('r1', 'acme', req('hello'));
    assert.equal(await c.get(k), undefined);
    await c.set(k, entry('first'), 60_000);
    assert.equal((await c.get(k))?.answer.text, 'first');
    await c.set(k, entry('second'), 60_000);
    assert.equal((await c.get(k))?.answer.text, 'second');
    await c.set(k, entry('gone'), 1);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(await c.get(k), undefined, 'an expired entry is a miss');
    assert.equal(await c.sweep(), 1, 'and is swept');
  });

  test('semantic entries: the nearest vector of the scope above the threshold, float32 round trip', async () => {
    const { store } = await h.open();
    const c = new StoreAnswerCache(store);
    const scope = semanticScope('r1', undefined, req('where is my parcel').messages);
    const other = semanticScope('r1', 'acme', req('where is my parcel').messages);
    await c.addVector(scope, emulatorEmbedding('where is my parcel'), entry('parcel answer'), 60_000);
    await c.addVector(scope, emulatorEmbedding('how do I reset my password'), entry('password answer'), 60_000);
    await c.addVector(other, emulatorEmbedding('where is my parcel'), entry('tenant answer'), 60_000);
    const hit = await c.nearest(scope, emulatorEmbedding('where is my parcel?'), 0.9);
    assert.equal(hit?.entry.answer.text, 'parcel answer');
    assert.ok(Math.abs(hit!.similarity - 1) < 1e-6, `similarity ${hit?.similarity}`);
    const near = await c.nearest(scope, emulatorEmbedding('where is my parcell'), 0.5);
    assert.equal(near?.entry.answer.text, 'parcel answer');
    assert.ok(near!.similarity < 0.99);
    assert.equal(await c.nearest(scope, emulatorEmbedding('the weather in Oslo tomorrow'), 0.9), undefined);
    assert.equal(await c.nearest('s|r1||nothing-here', emulatorEmbedding('where is my parcel'), 0.1), undefined);
  });

  test('invalidation drops a route, or one tenant of it', async () => {
    const { store } = await h.open();
    const c = new StoreAnswerCache(store);
    await c.set(exactKey('r1', 'acme', req('a')), entry('a'), 60_000);
    await c.set(exactKey('r1', undefined, req('b')), entry('b'), 60_000);
    await c.set(exactKey('r2', 'acme', req('c')), entry('c'), 60_000);
    await c.addVector(semanticScope('r1', 'acme', req('d').messages), [1, 0], entry('d'), 60_000);
    assert.equal(await c.invalidate('r1', 'acme'), 2);
    assert.equal(await c.get(exactKey('r1', 'acme', req('a'))), undefined);
    assert.equal((await c.get(exactKey('r1', undefined, req('b'))))?.answer.text, 'b');
    assert.equal(await c.invalidate('r1'), 1);
    assert.equal((await c.get(exactKey('r2', 'acme', req('c'))))?.answer.text, 'c', 'another route is kept');
  });
});

describe(
  'two replicas share cached answers through one PostgreSQL store',
  { skip: !DIALECTS.includes('postgres') },
  () => {
    const closers: (() => Promise<unknown>)[] = [];
    after(async () => {
      for (const c of closers.reverse()) await c().catch(() => undefined);
    });

    test('an answer cached by one replica is served by the other (exact and semantic), then invalidated', async () => {
      const emu = await startLlmEmulator();
      closers.push(() => emu.close());
      const schema = uniqueSchemaName('ferry_llmcache');
      closers.push(() => withAdminClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)));
      const urls: string[] = [];
      let first0: TestServer | undefined;
      for (let i = 0; i < 2; i++) {
        const t = await startTestServer([], {
          'store.url': TEST_DATABASE_URL,
          'store.schema': schema,
          'llm.cache.backend': 'store',
          'llm.providers': {
            up: { kind: 'openai', baseUrl: emu.url, prices: { m: { inputPerMTok: 1, outputPerMTok: 2 } } },
          },
          'llm.embeddings.provider': 'up',
          'llm.embeddings.model': 'emb',
          'llm.routes': {
            chat: { tiers: { main: [{ provider: 'up', model: 'm' }] }, cache: { exact: true, semanticThreshold: 0.9 } },
          },
        });
        urls.push((await t.server.listen()).url);
        first0 ??= t;
        closers.push(() => t.close());
      }
      const [c1, c2] = urls.map((u) => new OpenAI({ baseURL: `${u}/openai/v1`, apiKey: 'x', maxRetries: 0 }));
      const ask = (c: OpenAI, content: string) =>
        c.chat.completions
          .create({ model: 'chat', messages: [{ role: 'user', content }], temperature: 0 })
          .withResponse();
      const chats = () => emu.requests.filter((r) => r.api === 'openai').length;

      const first = await ask(c1!, 'where is my parcel');
      assert.equal(first.response.headers.get('ferry-llm-cache'), 'none');
      assert.equal(chats(), 1);
      // Cache writes are off the request path: wait until the row is there.
      for (let i = 0; i < 50; i++) {
        const n = await withAdminClient((c) => c.query(`SELECT count(*)::int AS n FROM "${schema}".llm_answer_cache`));
        if ((n.rows[0] as { n: number }).n >= 2) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const exact = await ask(c2!, 'where is my parcel');
      assert.equal(exact.response.headers.get('ferry-llm-cache'), 'exact');
      assert.equal(exact.data.choices[0]!.message.content, 'reply: where is my parcel');
      const semantic = await ask(c2!, 'Where is my parcel?');
      assert.equal(semantic.response.headers.get('ferry-llm-cache'), 'semantic');
      assert.equal(semantic.data.choices[0]!.message.content, 'reply: where is my parcel');
      assert.equal(chats(), 1, 'the second replica made no upstream call');

      // No keys configured: admin routes are off, so the service is called (on the first replica).
      assert.equal(await first0!.server.llm!.invalidate('chat'), 2);
      const after = await ask(c2!, 'where is my parcel');
      assert.equal(after.response.headers.get('ferry-llm-cache'), 'none');
      assert.equal(chats(), 2);
    });
  },
);

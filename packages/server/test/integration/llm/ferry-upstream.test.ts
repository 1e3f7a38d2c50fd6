// Ferry as a provider of the gateway, both ways it can be: a second Ferry serving the repository's
// ham-chat decoder (models/ham-chat, trained on the SpamAssassin ham corpus) reached over HTTP as an
// OpenAI-compatible upstream, and the gateway's own ham-chat called in process (provider kind `ferry`).
// Greedy answers through either route equal the answer of calling ham-chat directly.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { createServer, loadConfig, type FerryServer } from '@ferry/server';

const MODELS = fileURLToPath(new URL('../../../../../models', import.meta.url));
let upstream: FerryServer;
let gateway: FerryServer;
let direct: OpenAI;
let client: OpenAI;

const start = async (overrides: Record<string, unknown>) => {
  const s = await createServer(
    loadConfig({
      env: {},
      overrides: {
        'models.dir': MODELS,
        'models.only': ['ham-chat'],
        'runtime.workers': 1,
        'runtime.warmupRuns': 1,
        'log.level': 'silent',
        'store.url': 'sqlite::memory:',
        'server.port': 0,
        'server.host': '127.0.0.1',
        ...overrides,
      },
    }),
    { logger: false },
  );
  await s.loaded;
  return s;
};

before(async () => {
  upstream = await start({});
  const up = await upstream.listen();
  direct = new OpenAI({ baseURL: `${up.url}/openai/v1`, apiKey: 'x', maxRetries: 0 });
  gateway = await start({
    'llm.providers': {
      'other-ferry': { kind: 'openai', baseUrl: `${up.url}/openai/v1` },
      here: { kind: 'ferry' },
    },
    'llm.routes': {
      remote: { tiers: { main: [{ provider: 'other-ferry', model: 'ham-chat' }] } },
      local: { tiers: { main: [{ provider: 'here', model: 'ham-chat' }] } },
    },
  });
  const gw = await gateway.listen();
  client = new OpenAI({ baseURL: `${gw.url}/openai/v1`, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  await gateway?.close();
  await upstream?.close();
});

const params = {
  messages: [{ role: 'user' as const, content: 'meeting agenda for monday' }],
  temperature: 0,
  max_tokens: 24,
};

test('a second Ferry serving ham-chat answers through the gateway exactly as when called directly', async () => {
  const want = await direct.chat.completions.create({ model: 'ham-chat', ...params });
  assert.ok(want.choices[0]!.message.content!.length > 0);
  const { data, response } = await client.chat.completions.create({ model: 'remote', ...params }).withResponse();
  assert.equal(data.choices[0]!.message.content, want.choices[0]!.message.content);
  assert.equal(response.headers.get('ferry-llm-provider'), 'other-ferry');
  assert.equal(data.usage?.prompt_tokens, want.usage?.prompt_tokens);
  assert.equal(data.usage?.completion_tokens, want.usage?.completion_tokens);
  // Streamed through the gateway: the same text, chunk by chunk.
  const stream = await client.chat.completions.create({ model: 'remote', ...params, stream: true });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
  assert.equal(text, want.choices[0]!.message.content);
});

test("the gateway's own ham-chat (provider kind ferry) gives the same greedy answer, streamed or whole", async () => {
  const want = await direct.chat.completions.create({ model: 'ham-chat', ...params });
  const { data, response } = await client.chat.completions
    .create({ model: 'local', ...params, temperature: 0.0, seed: 1 })
    .withResponse();
  assert.equal(data.choices[0]!.message.content, want.choices[0]!.message.content);
  assert.equal(response.headers.get('ferry-llm-provider'), 'here');
  assert.equal(data.model, 'ham-chat@1.0.0');
  // The prompt is counted with ham-chat's own tokenizer, the same count the decoder reports.
  assert.equal(data.usage?.prompt_tokens, want.usage?.prompt_tokens);
  const stream = await client.chat.completions.create({ model: 'local', ...params, seed: 2, stream: true });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
  assert.equal(text, want.choices[0]!.message.content);
});

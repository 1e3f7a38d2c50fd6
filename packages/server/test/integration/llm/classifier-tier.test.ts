// Tiering by a classifier served by Ferry: the repository's spam model (logistic regression on the
// SpamAssassin corpus) labels the newest user turn, and its label picks the route's tier. Upstream: the
// PROVIDER EMULATOR (a stand-in for a hosted API).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { createServer, loadConfig, type FerryServer } from '@ferry/server';
import { startLlmEmulator, type LlmEmulator } from '@ferry/test-kit';

const MODELS = fileURLToPath(new URL('../../../../../models', import.meta.url));
let server: FerryServer;
let emu: LlmEmulator;
let base: string;

before(async () => {
  emu = await startLlmEmulator();
  server = await createServer(
    loadConfig({
      env: {},
      overrides: {
        'models.dir': MODELS,
        'models.only': ['spam'],
        'runtime.workers': 1,
        'runtime.warmupRuns': 1,
        'log.level': 'silent',
        'store.url': 'sqlite::memory:',
        'server.port': 0,
        'server.host': '127.0.0.1',
        'llm.providers': { up: { kind: 'openai', baseUrl: emu.url } },
        'llm.routes': {
          inbox: {
            tiers: { normal: [{ provider: 'up', model: 'small' }], review: [{ provider: 'up', model: 'big' }] },
            classifier: { model: 'spam', field: 'text', tiers: { spam: 'review' } },
          },
        },
      },
    }),
    { logger: false },
  );
  await server.loaded;
  base = (await server.listen()).url;
});

after(async () => {
  await server?.close();
  await emu?.close();
});

test("the spam model's label picks the tier; the answer says so", async () => {
  const client = new OpenAI({ baseURL: `${base}/openai/v1`, apiKey: 'x', maxRetries: 0 });
  const texts = [
    'Hi team, the notes from the Tuesday planning meeting are attached. Can we move the review to Thursday?',
    'FREE!!! Click here now to claim your CASH PRIZE. Limited offer, act now, 100% guaranteed, no risk, order today $$$',
  ];
  const labels: string[] = [];
  for (const text of texts) {
    const p = (await (
      await fetch(`${base}/v1/models/spam/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: [{ text }] }),
      })
    ).json()) as { predictions: { label: string }[] };
    const label = p.predictions[0]!.label;
    labels.push(label);
    const { response } = await client.chat.completions
      .create({ model: 'inbox', messages: [{ role: 'user', content: text }] })
      .withResponse();
    assert.equal(response.headers.get('ferry-llm-tier'), label === 'spam' ? 'review' : 'normal');
    assert.equal(emu.requests.at(-1)!.body.model, label === 'spam' ? 'big' : 'small');
    if (label === 'spam') assert.equal(response.headers.get('ferry-llm-reason'), 'classifier label "spam"');
    else assert.equal(response.headers.get('ferry-llm-reason'), 'default tier');
  }
  assert.deepEqual(labels, ['ham', 'spam'], 'the two texts are labelled differently, so both paths ran');
});

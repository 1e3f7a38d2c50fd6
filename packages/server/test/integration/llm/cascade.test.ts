// The cascade's JSON Schema and confidence checks, whole and streamed, end to end: the official `openai`
// client calls a real Ferry whose routes reach a PROVIDER EMULATOR (a labelled stand-in for a hosted
// OpenAI-compatible API) serving a cheap and a big model. The cheap model writes JSON of the wrong shape
// for `classify:` prompts and answers `unsure:` prompts with low log-probabilities.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startLlmEmulator, startTestServer, type LlmEmulator, type TestServer } from '@ferry/test-kit';

let t: TestServer;
let client: OpenAI;
let emu: LlmEmulator;

const SCHEMA = {
  type: 'object',
  required: ['label', 'score'],
  properties: { label: { enum: ['yes', 'no'] }, score: { type: 'number' } },
};
const fast = { connectTimeoutMs: 2000, firstTokenTimeoutMs: 2000, totalTimeoutMs: 10_000, maxRetries: 0 };
const tiers = { cheap: [{ provider: 'p', model: 'cheap' }], big: [{ provider: 'p', model: 'big' }] };

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = await t.server.metrics.registry.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v))
    .reduce((s, x) => s + x.value, 0);
}

before(async () => {
  emu = await startLlmEmulator({
    answer: (messages, model) => {
      const last = messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
      if (last.startsWith('classify:'))
        return model === 'cheap' ? '{"label": "maybe", "score": 0.5}' : '{"label": "no", "score": 0.8}';
      if (last.startsWith('ok:')) return `{"label": "yes", "score": 0.9}`;
      return `${model} says ${last}`;
    },
    logprob: (_w, model, messages) =>
      model === 'cheap' && messages.at(-1)?.content.startsWith('unsure:') ? -2 : -0.01,
  });
  t = await startTestServer([], {
    'server.port': 0,
    'llm.providers': { p: { kind: 'openai', baseUrl: emu.url, ...fast } },
    'llm.routes': {
      'route-schema': { tiers, cascade: { enabled: true, schema: SCHEMA }, cache: { exact: false } },
      'request-schema': { tiers, cascade: { enabled: true }, cache: { exact: false } },
      confident: { tiers, cascade: { enabled: true, minConfidence: 0.5 }, cache: { exact: false } },
      'live-stream': {
        tiers,
        cascade: { enabled: true, schema: SCHEMA, stream: 'off' },
        cache: { exact: false },
      },
    },
  });
  const addr = await t.server.listen();
  client = new OpenAI({ baseURL: `${addr.url}/openai/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await t?.close();
  await emu?.close();
});

const ask = (model: string, content: string, extra: Record<string, unknown> = {}) =>
  client.chat.completions
    .create({ model, messages: [{ role: 'user', content }], ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming)
    .withResponse();

async function streamed(model: string, content: string, extra: Record<string, unknown> = {}) {
  const { data: stream, response } = await client.chat.completions
    .create({
      model,
      messages: [{ role: 'user', content }],
      stream: true,
      ...extra,
    } as OpenAI.ChatCompletionCreateParamsStreaming)
    .withResponse();
  let text = '';
  let chunks = 0;
  for await (const c of stream) {
    const piece = c.choices[0]?.delta.content;
    if (piece) {
      text += piece;
      chunks++;
    }
  }
  return { text, chunks, headers: response.headers };
}

const requestSchema = {
  response_format: { type: 'json_schema', json_schema: { name: 'verdict', schema: SCHEMA, strict: true } },
};

describe('cascade by JSON Schema', () => {
  test("the route's schema escalates JSON of the wrong shape, naming the first error", async () => {
    const before = emu.requests.length;
    const { data, response } = await ask('route-schema', 'classify: is this spam');
    assert.equal(data.choices[0]!.message.content, '{"label": "no", "score": 0.8}');
    assert.equal(response.headers.get('ferry-llm-tier'), 'big');
    assert.equal(
      response.headers.get('ferry-llm-reason'),
      'escalated from cheap: schema (/label must be equal to one of the allowed values)',
    );
    assert.deepEqual(
      emu.requests.slice(before).map((r) => r.body.model),
      ['cheap', 'big'],
    );
    assert.equal(await metric('ferry_llm_escalations_total', { route: 'route-schema', reason: 'schema' }), 1);
  });

  test('an answer that conforms stays on the cheap tier', async () => {
    const { data, response } = await ask('route-schema', 'ok: fine');
    assert.equal(data.choices[0]!.message.content, '{"label": "yes", "score": 0.9}');
    assert.equal(response.headers.get('ferry-llm-tier'), 'cheap');
  });

  test("the request's response_format schema is checked and passed upstream", async () => {
    const { response } = await ask('request-schema', 'classify: a request schema', requestSchema);
    assert.equal(response.headers.get('ferry-llm-tier'), 'big');
    assert.match(response.headers.get('ferry-llm-reason')!, /escalated from cheap: schema/);
    assert.deepEqual(emu.requests.at(-1)!.body.response_format, requestSchema.response_format);
    // Without the request schema the same route takes the cheap answer (no check in force).
    const plain = await ask('request-schema', 'classify: no schema');
    assert.equal(plain.response.headers.get('ferry-llm-tier'), 'cheap');
    // json_object asks only for JSON: the cheap tier's text answer is not.
    const obj = await ask('request-schema', 'plain words', { response_format: { type: 'json_object' } });
    assert.equal(obj.response.headers.get('ferry-llm-tier'), 'big');
    assert.match(obj.response.headers.get('ferry-llm-reason')!, /escalated from cheap: json$/);
  });

  test('a request schema that is not a JSON Schema is a 400 naming the field', async () => {
    const bad = { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'nope' } } } };
    await assert.rejects(ask('request-schema', 'x', bad), (e: unknown) => {
      // OpenAI's error shape: the field is `param`.
      const err = e as { status: number; error: { param?: string; message: string } };
      assert.equal(err.status, 400);
      assert.equal(err.error.param, 'response_format.json_schema.schema');
      assert.match(err.error.message, /not a valid JSON Schema/);
      return true;
    });
    await assert.rejects(ask('request-schema', 'x', { response_format: { type: 'xml' } }), (e: unknown) => {
      assert.equal((e as { status: number }).status, 400);
      assert.match(String((e as Error).message), /response_format\/type/);
      return true;
    });
  });
});

describe('cascade by confidence', () => {
  test('logprobs are asked for and a low-confidence answer escalates', async () => {
    const { data, response } = await ask('confident', 'unsure: which one');
    assert.equal(data.choices[0]!.message.content, 'big says unsure: which one');
    assert.equal(response.headers.get('ferry-llm-reason'), 'escalated from cheap: confidence (0.135)');
    const sent = emu.requests.slice(-2);
    assert.deepEqual(
      sent.map((r) => [r.body.model, r.body.logprobs]),
      [
        ['cheap', true],
        ['big', true],
      ],
    );
    const sure = await ask('confident', 'sure: which one');
    assert.equal(sure.response.headers.get('ferry-llm-tier'), 'cheap');
    assert.equal(await metric('ferry_llm_escalations_total', { route: 'confident', reason: 'confidence' }), 1);
  });
});

describe('cascade on streams', () => {
  test("a lower tier's streamed answer is held until it passes, then the next tier streams live", async () => {
    const r = await streamed('route-schema', 'classify: streamed');
    assert.equal(r.text, '{"label": "no", "score": 0.8}');
    assert.equal(r.headers.get('ferry-llm-tier'), 'big');
    assert.match(r.headers.get('ferry-llm-reason')!, /escalated from cheap: schema/);
    assert.ok(r.chunks > 1, 'streamed in pieces');
    assert.equal(emu.requests.at(-2)!.body.stream, true, 'the cheap tier was streamed upstream too');
  });

  test('an answer that passes is replayed from the buffer', async () => {
    const r = await streamed('confident', 'sure: streamed and confident');
    assert.equal(r.text, 'cheap says sure: streamed and confident');
    assert.equal(r.headers.get('ferry-llm-tier'), 'cheap');
    assert.ok(r.chunks > 1);
    const low = await streamed('confident', 'unsure: streamed');
    assert.equal(low.text, 'big says unsure: streamed');
    assert.match(low.headers.get('ferry-llm-reason')!, /escalated from cheap: confidence/);
  });

  test('with cascade.stream off a stream is answered live by its tier, unchecked', async () => {
    const r = await streamed('live-stream', 'classify: live');
    assert.equal(r.text, '{"label": "maybe", "score": 0.5}');
    assert.equal(r.headers.get('ferry-llm-tier'), 'cheap');
    // The same request unstreamed is checked.
    const { response } = await ask('live-stream', 'classify: live');
    assert.equal(response.headers.get('ferry-llm-tier'), 'big');
  });
});

// Hostile and malformed requests to /openai/v1: every one is a 4xx problem+json document that also
// carries OpenAI's `error` object naming the bad parameter, never a 5xx, and the server keeps serving.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer, tinyGenerativeModel } from '@ferry/test-kit';

let t: TestServer;

before(async () => {
  const strict = tinyGenerativeModel('strict-gpt', { contextLength: 64 });
  strict.files.files = {
    ...strict.files.files,
    'chat_template.jinja':
      "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}",
  };
  t = await startTestServer([tinyGenerativeModel('tiny-gpt', { contextLength: 64 }), strict], {
    'server.bodyLimitBytes': 64 * 1024,
    'generation.maxPromptChars': 1000,
  });
});
after(async () => {
  await t?.close();
});

interface Reply {
  status: number;
  type: string;
  body: {
    code: string;
    errors?: { pointer: string }[];
    error: { message: string; type: string; param: string | null; code: string };
  };
}

async function post(path: string, payload: unknown, contentType = 'application/json'): Promise<Reply> {
  const res = await t.server.app.inject({
    method: 'POST',
    url: `/openai/v1${path}`,
    headers: { 'content-type': contentType },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
  return { status: res.statusCode, type: String(res.headers['content-type']), body: res.json() };
}

const chat = (extra: Record<string, unknown>) => ({
  model: 'tiny-gpt',
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 4,
  ...extra,
});

const CASES: [string, string, unknown, number, string | null, string][] = [
  ['not JSON', '/chat/completions', '{"model": ', 400, null, 'invalid-json'],
  ['an array body', '/chat/completions', [1, 2], 400, null, 'invalid-request'],
  ['no model', '/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, 400, 'model', 'invalid-request'],
  ['model not a string', '/chat/completions', chat({ model: 42 }), 400, 'model', 'invalid-request'],
  ['empty messages', '/chat/completions', chat({ messages: [] }), 400, 'messages', 'invalid-request'],
  ['messages an object', '/chat/completions', chat({ messages: { role: 'user' } }), 400, 'messages', 'invalid-request'],
  [
    'a bad role',
    '/chat/completions',
    chat({ messages: [{ role: 'wizard', content: 'x' }] }),
    400,
    'messages[0].role',
    'invalid-request',
  ],
  [
    'content a number',
    '/chat/completions',
    chat({ messages: [{ role: 'user', content: 7 }] }),
    400,
    'messages[0].content',
    'invalid-request',
  ],
  [
    'an image part',
    '/chat/completions',
    chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }),
    400,
    'messages[0].content[0]',
    'invalid-request',
  ],
  [
    'tool calls in a message',
    '/chat/completions',
    chat({ messages: [{ role: 'assistant', content: 'x', tool_calls: [] }] }),
    400,
    'messages[0].tool_calls',
    'invalid-request',
  ],
  ['temperature a string', '/chat/completions', chat({ temperature: 'hot' }), 400, 'temperature', 'invalid-request'],
  ['temperature 5', '/chat/completions', chat({ temperature: 5 }), 400, 'temperature', 'invalid-request'],
  ['top_p 0', '/chat/completions', chat({ top_p: 0 }), 400, 'top_p', 'invalid-request'],
  ['max_tokens -1', '/chat/completions', chat({ max_tokens: -1 }), 400, 'max_tokens', 'invalid-request'],
  ['max_tokens 1.5', '/chat/completions', chat({ max_tokens: 1.5 }), 400, 'max_tokens', 'invalid-request'],
  ['max_tokens 1e12', '/chat/completions', chat({ max_tokens: 1e12 }), 400, 'max_tokens', 'invalid-request'],
  [
    'max_tokens past the context',
    '/chat/completions',
    chat({ max_tokens: 64 }),
    400,
    'max_tokens',
    'context-length-exceeded',
  ],
  ['n 0', '/chat/completions', chat({ n: 0 }), 400, 'n', 'invalid-request'],
  ['n past generation.maxChoices', '/chat/completions', chat({ n: 1000 }), 400, 'n', 'invalid-request'],
  ['n "1"', '/chat/completions', chat({ n: '1' }), 400, 'n', 'invalid-request'],
  ['seed a float', '/chat/completions', chat({ seed: 0.5 }), 400, 'seed', 'invalid-request'],
  ['seed beyond 2^53', '/chat/completions', chat({ seed: 2 ** 60 }), 400, 'seed', 'invalid-request'],
  ['stop a number', '/chat/completions', chat({ stop: 5 }), 400, 'stop', 'invalid-request'],
  ['five stops', '/chat/completions', chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'stop', 'invalid-request'],
  ['an empty stop', '/chat/completions', chat({ stop: ['a', ''] }), 400, 'stop[1]', 'invalid-request'],
  ['stream "yes"', '/chat/completions', chat({ stream: 'yes' }), 400, 'stream', 'invalid-request'],
  [
    'stream_options without stream',
    '/chat/completions',
    chat({ stream_options: { include_usage: true } }),
    400,
    'stream_options',
    'invalid-request',
  ],
  ['tools', '/chat/completions', chat({ tools: [{ type: 'function' }] }), 400, 'tools', 'invalid-request'],
  ['logprobs "yes"', '/chat/completions', chat({ logprobs: 'yes' }), 400, 'logprobs', 'invalid-request'],
  [
    'top_logprobs without logprobs',
    '/chat/completions',
    chat({ top_logprobs: 2 }),
    400,
    'top_logprobs',
    'invalid-request',
  ],
  [
    'top_logprobs 21',
    '/chat/completions',
    chat({ logprobs: true, top_logprobs: 21 }),
    400,
    'top_logprobs',
    'invalid-request',
  ],
  [
    'json mode',
    '/chat/completions',
    chat({ response_format: { type: 'json_object' } }),
    400,
    'response_format',
    'invalid-request',
  ],
  ['an unknown parameter', '/chat/completions', chat({ best_of: 2 }), 400, 'best_of', 'invalid-request'],
  [
    'a __proto__ key',
    '/chat/completions',
    '{"model":"tiny-gpt","messages":[{"role":"user","content":"x"}],"__proto__":{"n":2}}',
    400,
    null,
    'invalid-json',
  ],
  [
    'a prompt past maxPromptChars',
    '/completions',
    { model: 'tiny-gpt', prompt: 'x'.repeat(1001) },
    400,
    'prompt',
    'invalid-request',
  ],
  [
    'a prompt past the context',
    '/completions',
    { model: 'tiny-gpt', prompt: 'x'.repeat(200) },
    400,
    'prompt',
    'context-length-exceeded',
  ],
  ['two prompts', '/completions', { model: 'tiny-gpt', prompt: ['a', 'b'] }, 400, 'prompt', 'invalid-request'],
  ['logprobs 6', '/completions', { model: 'tiny-gpt', prompt: 'a', logprobs: 6 }, 400, 'logprobs', 'invalid-request'],
  ['token-id prompt', '/completions', { model: 'tiny-gpt', prompt: [1, 2, 3] }, 400, 'prompt', 'invalid-request'],
  ['echo', '/completions', { model: 'tiny-gpt', prompt: 'a', echo: true }, 400, 'echo', 'invalid-request'],
  ['an unknown model', '/completions', { model: 'nope', prompt: 'a' }, 404, null, 'model-not-found'],
  [
    'a model name with a path',
    '/completions',
    { model: '../../etc/passwd', prompt: 'a' },
    404,
    null,
    'model-not-found',
  ],
  ['an unknown version', '/completions', { model: 'tiny-gpt@9', prompt: 'a' }, 404, null, 'version-not-found'],
  [
    'a body past the limit',
    '/completions',
    { model: 'tiny-gpt', prompt: 'x'.repeat(70 * 1024) },
    413,
    null,
    'body-too-large',
  ],
];

for (const [name, path, payload, status, param, code] of CASES) {
  test(`hostile: ${name} → ${status} ${code}${param ? ` (param ${param})` : ''}`, async () => {
    const r = await post(path, payload);
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.match(r.type, /^application\/problem\+json/);
    assert.equal(r.body.code, code);
    assert.equal(r.body.error.code, code);
    assert.equal(r.body.error.param, param);
    assert.equal(r.body.error.type, status === 404 ? 'not_found_error' : 'invalid_request_error');
    assert.ok(r.body.error.message.length > 0);
  });
}

test('hostile: a text/plain body is 415, an unknown route under /openai/v1 is 404 with the OpenAI error object', async () => {
  const r = await post('/chat/completions', 'hello', 'text/plain');
  assert.equal(r.status, 415);
  assert.equal(r.body.error.code, 'unsupported-media-type');
  const res = await t.server.app.inject({ method: 'POST', url: '/openai/v1/embeddings', payload: {} });
  assert.equal(res.statusCode, 404);
  assert.equal(res.json().error.type, 'not_found_error');
});

test('hostile: /v1 predict on a generative model is a 400 pointing at /openai/v1', async () => {
  const res = await t.server.app.inject({
    method: 'POST',
    url: '/v1/models/tiny-gpt/predict',
    payload: { instances: [{ prompt: 'x' }] },
  });
  assert.equal(res.statusCode, 400);
  assert.match(res.json().detail, /openai\/v1/);
});

test('after all that the server still generates', async () => {
  const res = await t.server.app.inject({
    method: 'POST',
    url: '/openai/v1/completions',
    payload: { model: 'tiny-gpt', prompt: 'ok', max_tokens: 3, temperature: 0 },
  });
  assert.equal(res.statusCode, 200);
  assert.equal(res.json().usage.completion_tokens, 3);
  assert.equal(t.server.generation.active, 0);
});

test('the OpenAPI document lists the /openai/v1 routes and stays valid', async () => {
  const { Validator } = await import('@seriousme/openapi-schema-validator');
  const doc = (await t.server.app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, unknown> };
  for (const p of ['/openai/v1/models', '/openai/v1/chat/completions', '/openai/v1/completions'])
    assert.ok(doc.paths[p], p);
  const res = await new Validator().validate(doc as never);
  assert.equal(res.valid, true, String(JSON.stringify(res.errors)).slice(0, 500));
});

test('hostile: a conversation the chat template refuses (raise_exception) is a 400 on /messages', async () => {
  const r = await post('/chat/completions', {
    model: 'strict-gpt',
    messages: [
      { role: 'system', content: 'be nice' },
      { role: 'user', content: 'hi' },
    ],
    max_tokens: 2,
  });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.param, 'messages');
  assert.match(r.body.error.message, /System role not supported/);
  const ok = await post('/chat/completions', {
    model: 'strict-gpt',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 2,
  });
  assert.equal(ok.status, 200);
});

test('hostile: a generative model folder without its tokenizer refuses to start, naming the file and /generation', async () => {
  const broken = tinyGenerativeModel('broken-gpt');
  broken.files.files = { 'chat_template.jinja': 'x' };
  await assert.rejects(startTestServer([broken]), (e: Error) => {
    assert.equal(e.name, 'ManifestError');
    assert.match(e.message, /broken-gpt\/1\.0\.0\/ferry\.yaml: \/generation: .*tokenizer\.json does not exist/);
    return true;
  });
});

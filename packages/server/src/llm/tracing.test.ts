import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attemptSpanAttributes, attemptSpanOutcome } from './tracing.js';
import { UpstreamError } from './upstream-error.js';
import type { ChatRequest } from './types.js';

const req: ChatRequest = {
  messages: [{ role: 'user', content: 'secret prompt' }],
  maxTokens: 32,
  stop: [],
  stream: true,
};

test('attempt attributes: gen_ai names, the attempt from 1, no prompt text', () => {
  const a = attemptSpanAttributes(
    { name: 'main', kind: 'anthropic' },
    { baseUrl: 'https://api.example.test/v1', maxRetries: 2 },
    'claude-x',
    { ...req, temperature: 0.2, stop: ['\n\n'] },
    1,
  );
  assert.deepEqual(a, {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'anthropic',
    'gen_ai.request.model': 'claude-x',
    'gen_ai.request.max_tokens': 32,
    'gen_ai.request.temperature': 0.2,
    'gen_ai.request.stop_sequences': ['\n\n'],
    'server.address': 'api.example.test',
    'server.port': 443,
    'ferry.llm.provider': 'main',
    'ferry.llm.stream': true,
    'ferry.llm.attempt': 2,
    'ferry.llm.retries': 1,
    'ferry.llm.max_retries': 2,
  });
  assert.ok(!JSON.stringify(a).includes('secret prompt'));
  // A Ferry model as provider has no URL.
  const local = attemptSpanAttributes({ name: 'f', kind: 'ferry' }, { baseUrl: '', maxRetries: 0 }, 'gpt2', req, 0);
  assert.equal(local['server.address'], undefined);
  assert.equal(local['ferry.llm.attempt'], 1);
});

test('attempt outcome: usage on success; status or failure kind as error.type', () => {
  assert.deepEqual(
    attemptSpanOutcome({
      text: 'hi',
      finishReason: 'length',
      model: 'm-2024',
      usage: { promptTokens: 7, completionTokens: 3, cachedPromptTokens: 4 },
    }),
    {
      'gen_ai.response.model': 'm-2024',
      'gen_ai.response.finish_reasons': ['length'],
      'gen_ai.usage.input_tokens': 7,
      'gen_ai.usage.output_tokens': 3,
      'ferry.llm.usage.cached_input_tokens': 4,
    },
  );
  assert.deepEqual(attemptSpanOutcome(undefined, new UpstreamError('p', 'http', 'p: 429', 429)), {
    'error.type': '429',
    'ferry.llm.failure': 'http',
    'ferry.llm.retryable': true,
    'http.response.status_code': 429,
  });
  assert.deepEqual(attemptSpanOutcome(undefined, new UpstreamError('p', 'first-token-timeout', 'p: slow')), {
    'error.type': 'first-token-timeout',
    'ferry.llm.failure': 'first-token-timeout',
    'ferry.llm.retryable': true,
  });
  assert.deepEqual(attemptSpanOutcome(undefined, new TypeError('bad')), { 'error.type': 'TypeError' });
});

// Unit tests of the cascade's checks: JSON, JSON Schema (route and request), refusals, truncation and
// the logprobs confidence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cascadeCheck, compileSchema, confidenceOf, type CascadeChecks } from './cascade.js';
import type { ChatAnswer } from './types.js';

const answer = (text: string, over: Partial<ChatAnswer> = {}): ChatAnswer => ({
  text,
  finishReason: 'stop',
  usage: { promptTokens: 1, completionTokens: 1, cachedPromptTokens: 0 },
  model: 'm',
  ...over,
});
const route = (over: Partial<CascadeChecks['route']> = {}): CascadeChecks['route'] => ({
  enabled: true,
  requireJson: false,
  refusalPatterns: [],
  minConfidence: 0,
  withoutLogprobs: 'accept',
  stream: 'buffer',
  ...over,
});
const schema = compileSchema({
  type: 'object',
  required: ['label', 'score'],
  properties: { label: { enum: ['yes', 'no'] }, score: { type: 'number', minimum: 0, maximum: 1 } },
});

test('confidence is the geometric mean of the token probabilities', () => {
  assert.equal(confidenceOf(undefined), undefined);
  assert.equal(confidenceOf([]), undefined);
  assert.ok(Math.abs(confidenceOf([Math.log(0.5), Math.log(0.5)])! - 0.5) < 1e-12);
  assert.ok(Math.abs(confidenceOf([Math.log(0.9), Math.log(0.1)])! - 0.3) < 1e-12);
  assert.ok(confidenceOf([-Infinity, 0])! > 0, 'a -Infinity logprob does not make NaN');
});

test('a JSON Schema escalates answers that parse but do not conform, naming the first error', () => {
  const c: CascadeChecks = { route: route(), refusals: [], routeSchema: schema };
  assert.equal(cascadeCheck(c, answer('{"label":"yes","score":0.5}')), undefined);
  assert.deepEqual(cascadeCheck(c, answer('{"label":"maybe","score":0.5}')), {
    failure: 'schema',
    detail: '/label must be equal to one of the allowed values',
  });
  assert.deepEqual(cascadeCheck(c, answer('{"label":"no"}')), {
    failure: 'schema',
    detail: "/ must have required property 'score'",
  });
  assert.deepEqual(cascadeCheck(c, answer('label: yes')), { failure: 'json' }, 'a schema implies JSON');
});

test('route and request schemas both hold; json_object only needs JSON', () => {
  const req = compileSchema({ type: 'object', required: ['extra'] });
  const c: CascadeChecks = { route: route(), refusals: [], routeSchema: schema, requestSchema: req };
  assert.equal(cascadeCheck(c, answer('{"label":"yes","score":1,"extra":1}')), undefined);
  assert.equal(cascadeCheck(c, answer('{"label":"yes","score":1}'))?.failure, 'schema');
  const j: CascadeChecks = { route: route(), refusals: [], requestJson: true };
  assert.equal(cascadeCheck(j, answer('[1]')), undefined);
  assert.equal(cascadeCheck(j, answer('nope'))?.failure, 'json');
  assert.equal(cascadeCheck({ route: route(), refusals: [] }, answer('nope')), undefined, 'no JSON asked');
});

test('refusals, truncated JSON and low confidence escalate', () => {
  const c: CascadeChecks = { route: route({ requireJson: true }), refusals: [/^I cannot/i] };
  assert.equal(cascadeCheck(c, answer('"I cannot help"')), undefined, 'a JSON string is not matched as a refusal');
  assert.equal(cascadeCheck(c, answer('{"a":1}', { finishReason: 'length' }))?.failure, 'length');
  const r: CascadeChecks = { route: route(), refusals: [/^I cannot/i] };
  assert.equal(cascadeCheck(r, answer('I cannot help'))?.failure, 'refusal');
  const conf: CascadeChecks = { route: route({ minConfidence: 0.5 }), refusals: [] };
  assert.equal(cascadeCheck(conf, answer('x', { logprobs: [Math.log(0.6)] })), undefined);
  assert.deepEqual(cascadeCheck(conf, answer('x', { logprobs: [Math.log(0.4)] })), {
    failure: 'confidence',
    detail: '0.400',
  });
  assert.equal(cascadeCheck(conf, answer('x')), undefined, 'no logprobs: accepted by default');
  const strict: CascadeChecks = { route: route({ minConfidence: 0.5, withoutLogprobs: 'escalate' }), refusals: [] };
  assert.equal(cascadeCheck(strict, answer('x'))?.failure, 'no-logprobs');
});

test('a schema that is not one is refused when compiled', () => {
  assert.throws(() => compileSchema({ type: 'no-such-type' }), /type/);
  assert.throws(() => compileSchema('string'), /object or a boolean/);
  assert.equal(compileSchema(true)(42), undefined);
});

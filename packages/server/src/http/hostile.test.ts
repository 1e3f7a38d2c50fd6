// Hostile requests: every one must be a 4xx application/problem+json naming what is wrong, and the
// server must keep answering correctly afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import { startTestServer, type TestServer, tinyClassifier, tinyLinearModel } from '@ferry/test-kit';
import { ERROR_CATALOGUE } from '../errors.js';

const cls = tinyClassifier();
const lin = tinyLinearModel();
const ok = cls.example;
const x8 = lin.example.x;

interface Case {
  name: string;
  req: InjectOptions;
  status: number;
  code: keyof typeof ERROR_CATALOGUE;
  /** A JSON pointer that must appear in `errors`, or a fragment of `detail`. */
  pointer?: string;
  detail?: RegExp;
}

const post = (url: string, payload: unknown, headers: Record<string, string> = {}): InjectOptions => ({
  method: 'POST',
  url,
  payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  headers: { 'content-type': 'application/json', ...headers },
});
const v1 = (payload: unknown) => post('/v1/models/cls/predict', payload);
const v2 = (payload: unknown, model = 'lin') => post(`/v2/models/${model}/infer`, payload);
const t8 = (over: Record<string, unknown>) => ({
  inputs: [{ name: 'x', shape: [1, 8], datatype: 'FP32', data: x8, ...over }],
});

const cases: Case[] = [
  // v1: the body itself
  { name: 'malformed JSON', req: post('/v1/models/cls/predict', '{"instances": ['), status: 400, code: 'invalid-json' },
  { name: 'empty body', req: post('/v1/models/cls/predict', ''), status: 400, code: 'invalid-json' },
  {
    name: 'NaN literal',
    req: post('/v1/models/cls/predict', '{"instances":[{"amount":NaN}]}'),
    status: 400,
    code: 'invalid-json',
  },
  {
    name: 'Infinity literal',
    req: post('/v1/models/cls/predict', '{"instances":[{"amount":Infinity}]}'),
    status: 400,
    code: 'invalid-json',
  },
  { name: 'body is an array', req: v1([ok]), status: 400, code: 'invalid-input' },
  { name: 'body is a string', req: v1('"hello"'), status: 400, code: 'invalid-input' },
  { name: 'body is null', req: v1('null'), status: 400, code: 'invalid-input' },
  { name: 'no instances', req: v1({}), status: 400, code: 'invalid-input', pointer: '/instances' },
  {
    name: 'unknown top-level member',
    req: v1({ instances: [ok], extra: 1 }),
    status: 400,
    code: 'invalid-input',
    pointer: '/extra',
  },
  {
    name: 'instances not an array',
    req: v1({ instances: ok }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances',
  },
  { name: 'empty instances', req: v1({ instances: [] }), status: 400, code: 'invalid-input', pointer: '/instances' },
  {
    name: 'instance is a number',
    req: v1({ instances: [5] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0',
  },
  {
    name: 'both instances and inputs',
    req: v1({ instances: [ok], inputs: {} }),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs',
  },
  {
    name: 'wrong content type',
    req: {
      method: 'POST',
      url: '/v1/models/cls/predict',
      payload: 'amount=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    },
    status: 415,
    code: 'unsupported-media-type',
  },
  {
    name: 'body over the limit',
    req: post('/v1/models/cls/predict', JSON.stringify({ instances: [{ ...ok, pad: 'x'.repeat(70_000) }] })),
    status: 413,
    code: 'body-too-large',
    detail: /65536 bytes/,
  },
  {
    name: 'too many instances',
    req: v1({ instances: Array.from({ length: 11 }, () => ok) }),
    status: 400,
    code: 'too-many-instances',
    detail: /limit \(limits\.maxInstances\) is 10/,
  },
  // v1: fields
  {
    name: 'unknown feature',
    req: v1({ instances: [{ ...ok, colour: 'red' }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/colour',
  },
  {
    name: 'missing feature',
    req: v1({ instances: [{ amount: 1, items: 1, member: true }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/color',
  },
  {
    name: 'number as string',
    req: v1({ instances: [{ ...ok, amount: '72.5' }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/amount',
  },
  {
    name: 'NaN as a string',
    req: v1({ instances: [{ ...ok, amount: 'NaN' }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/amount',
  },
  {
    name: 'integer given a fraction',
    req: v1({ instances: [{ ...ok, items: 1.5 }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/items',
  },
  {
    name: 'out of range above',
    req: v1({ instances: [{ ...ok, amount: 1e9 }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/amount',
    detail: /out of range/,
  },
  {
    name: 'out of range below',
    req: v1({ instances: [{ ...ok, items: -1 }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/items',
  },
  {
    name: 'unknown category',
    req: v1({ instances: [{ ...ok, color: 'mauve' }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/color',
    detail: /unknown category/,
  },
  {
    name: 'boolean as 1',
    req: v1({ instances: [{ ...ok, member: 1 }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/member',
  },
  {
    name: 'null feature',
    req: v1({ instances: [{ ...ok, amount: null }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/amount',
  },
  {
    name: 'second instance bad',
    req: v1({ instances: [ok, { ...ok, color: 7 }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/1/color',
  },
  {
    name: 'prototype pollution key',
    req: v1('{"instances":[{"__proto__":{"x":1},"amount":1,"items":1,"member":true,"color":"red"}]}'),
    status: 400,
    code: 'invalid-json',
  },
  {
    name: 'columnar ragged',
    req: v1({ inputs: { amount: [1, 2], items: [1], member: [true, true], color: ['red', 'red'] } }),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/items',
  },
  {
    name: 'columnar not arrays',
    req: v1({ inputs: { amount: 1 } }),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/amount',
  },
  // tensors through v1
  {
    name: 'tensor row too short',
    req: post('/v1/models/lin/predict', { instances: [{ x: [1, 2, 3] }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/x',
  },
  {
    name: 'tensor row nested wrongly',
    req: post('/v1/models/lin/predict', { instances: [{ x: [x8] }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/x',
  },
  {
    name: 'tensor element a string',
    req: post('/v1/models/lin/predict', { instances: [{ x: ['1', 2, 3, 4, 5, 6, 7, 8] }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/instances/0/x/0',
  },
  // unknown things
  {
    name: 'unknown model',
    req: post('/v1/models/nope/predict', { instances: [ok] }),
    status: 404,
    code: 'model-not-found',
    detail: /available: cls, lin/,
  },
  {
    name: 'unknown version',
    req: post('/v1/models/cls/versions/9.9.9/predict', { instances: [ok] }),
    status: 404,
    code: 'version-not-found',
    detail: /versions: 1\.0\.0/,
  },
  {
    name: 'path traversal as model',
    req: post('/v1/models/..%2F..%2Fetc%2Fpasswd/predict', { instances: [ok] }),
    status: 404,
    code: 'model-not-found',
  },
  {
    name: 'URL that does not decode',
    req: post('/v1/models/cls@%00%ff/predict', { instances: [ok] }),
    status: 400,
    code: 'invalid-request',
  },
  {
    name: 'garbage version',
    req: post('/v1/models/cls@%2e%2e%2f/predict', { instances: [ok] }),
    status: 404,
    code: 'version-not-found',
  },
  {
    name: 'GET on predict',
    req: { method: 'GET', url: '/v1/models/cls/predict' },
    status: 405,
    code: 'method-not-allowed',
  },
  { name: 'unknown v1 route', req: { method: 'GET', url: '/v1/whatever' }, status: 404, code: 'route-not-found' },
  // v2
  {
    name: 'v2 shape as string',
    req: v2(t8({ shape: ['1', 8] })),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/shape/0',
  },
  {
    name: 'v2 shape fraction',
    req: v2(t8({ shape: [1.5, 8] })),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/shape/0',
  },
  {
    name: 'v2 negative shape',
    req: v2(t8({ shape: [-1, 8] })),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/shape/0',
  },
  {
    name: 'v2 unknown datatype',
    req: v2(t8({ datatype: 'FLOAT' })),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/datatype',
  },
  {
    name: 'v2 wrong datatype for input',
    req: v2(t8({ datatype: 'INT64', data: [1, 2, 3, 4, 5, 6, 7, 8] })),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/datatype',
  },
  {
    name: 'v2 element count mismatch',
    req: v2(t8({ data: [1, 2, 3] })),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/data',
  },
  {
    name: 'v2 wrong fixed dim',
    req: v2(t8({ shape: [1, 7], data: [1, 2, 3, 4, 5, 6, 7] })),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/shape/1',
  },
  {
    name: 'v2 wrong rank',
    req: v2(t8({ shape: [8] })),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/shape',
  },
  {
    name: 'v2 string in FP32 data',
    req: v2(t8({ data: ['a', 2, 3, 4, 5, 6, 7, 8] })),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/data/0',
  },
  {
    name: 'v2 unknown input',
    req: v2({ inputs: [{ name: 'z', shape: [1], datatype: 'FP32', data: [1] }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/name',
  },
  {
    name: 'v2 duplicate input',
    req: v2({ inputs: [t8({}).inputs[0], t8({}).inputs[0]] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/1/name',
  },
  {
    name: 'v2 missing data',
    req: v2({ inputs: [{ name: 'x', shape: [1, 8], datatype: 'FP32' }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/0/data',
  },
  {
    name: 'v2 unknown requested output',
    req: v2({ ...t8({}), outputs: [{ name: 'nope' }] }),
    status: 400,
    code: 'invalid-input',
    pointer: '/outputs/0/name',
  },
  { name: 'v2 no inputs', req: v2({ inputs: [] }), status: 400, code: 'invalid-input', pointer: '/inputs' },
  { name: 'v2 id not a string', req: v2({ ...t8({}), id: 5 }), status: 400, code: 'invalid-input', pointer: '/id' },
  {
    name: 'v2 INT fraction in feature column',
    req: v2(
      {
        inputs: [
          { name: 'amount', shape: [1], datatype: 'FP32', data: [1] },
          { name: 'items', shape: [1], datatype: 'INT64', data: [1.5] },
          { name: 'member', shape: [1], datatype: 'BOOL', data: [true] },
          { name: 'color', shape: [1], datatype: 'BYTES', data: ['red'] },
        ],
      },
      'cls',
    ),
    status: 400,
    code: 'invalid-input',
    pointer: '/inputs/1/data/0',
  },
  { name: 'v2 huge declared shape', req: v2(t8({ shape: [100000000, 8] })), status: 400, code: 'tensor-too-large' },
  { name: 'v2 unknown model', req: post('/v2/models/nope/infer', t8({})), status: 404, code: 'model-not-found' },
];

describe('hostile requests', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer(
      [
        { name: 'cls', version: '1.0.0', files: cls },
        { name: 'lin', version: '1.0.0', files: lin },
      ],
      { 'server.bodyLimitBytes': 65536, 'limits.maxInstances': 10, 'limits.maxTensorElements': 100000 },
    );
  });
  after(() => t.close());

  test(`at least 30 hostile requests (${cases.length} here)`, () => assert.ok(cases.length >= 30));

  for (const c of cases) {
    test(c.name, async () => {
      const r = await t.server.app.inject(c.req);
      assert.equal(r.statusCode, c.status, r.body);
      assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
      const p = r.json();
      assert.equal(p.code, c.code, r.body);
      assert.equal(p.status, c.status);
      assert.equal(p.type, `https://ferry.dev/problems/${c.code}`);
      assert.equal(typeof p.title, 'string');
      assert.equal(typeof p.detail, 'string');
      assert.ok(!/at .*\.js:\d+/.test(r.body), 'no stack traces leak');
      if (c.pointer !== undefined) {
        assert.ok(Array.isArray(p.errors), `errors listed: ${r.body}`);
        assert.ok(
          p.errors.some((e: { pointer: string }) => e.pointer === c.pointer),
          `pointer ${c.pointer} in ${r.body}`,
        );
      }
      if (c.detail) assert.match(p.detail, c.detail);
      if (String(c.req.url).startsWith('/v2'))
        assert.equal(p.error, p.detail, "v2 errors carry the protocol's error string");
    });
  }

  test('after all of that the server still answers correctly', async () => {
    const r = await t.server.app.inject(post('/v1/models/cls/predict', { instances: [ok] }));
    assert.equal(r.statusCode, 200);
    const ref = cls.reference(ok);
    assert.ok(Math.abs(r.json().predictions[0].scores.yes - ref[1]!) < 1e-5);
    assert.equal((await t.server.app.inject({ url: '/readyz' })).statusCode, 200);
  });
});

// The predict lane answers exactly as the Fastify route does: the same requests, over real sockets,
// to a server with the lane and one without it (server.predictLane false), give the same status,
// body, content type and Ferry headers; and the lane really served them (its counter moved).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { slowModel, startTestServer, type TestServer, tinyClassifier, tinyLinearModel } from '@ferry/test-kit';
import { hashKey } from '../auth/keys.js';

const cls = tinyClassifier();
const lin = tinyLinearModel();
const ok = cls.example;

const PREDICT_SECRET = 'lane-predict-key-0123456789abcdef';
const LIMITED_SECRET = 'lane-limited-key-0123456789abcdef';
const JOBS_SECRET = 'lane-jobs-key-0123456789abcdef0123';
const keys = [
  { id: 'p', sha256: hashKey(PREDICT_SECRET), scopes: ['predict'], models: [], rateLimitMax: 0 },
  { id: 'limited', sha256: hashKey(LIMITED_SECRET), scopes: ['predict'], models: ['lin'], rateLimitMax: 0 },
  { id: 'jobs', sha256: hashKey(JOBS_SECRET), scopes: ['jobs'], models: [], rateLimitMax: 0 },
];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(port: number, method: string, path: string, body: string | Buffer, headers: Record<string, string>) {
  return new Promise<Answer>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

const listen = async (s: TestServer) => {
  await s.server.app.listen({ port: 0, host: '127.0.0.1' });
  return (s.server.app.server.address() as AddressInfo).port;
};

async function laneCount(port: number, headers: Record<string, string>): Promise<number> {
  const r = await send(port, 'GET', '/metrics', '', headers);
  const m = /^ferry_http_predict_lane_requests_total (\d+)/m.exec(r.body);
  return m ? Number(m[1]) : 0;
}

/** What must match between the two paths: everything but the request id and the connection's own headers. */
function comparable(a: Answer) {
  const body = a.headers['content-type']?.toString().includes('json')
    ? (JSON.parse(a.body) as Record<string, unknown>)
    : a.body;
  if (typeof body === 'object' && body !== null) delete body.requestId;
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a.headers))
    if (k.startsWith('ferry-') || ['content-type', 'www-authenticate', 'retry-after', 'allow'].includes(k))
      headers[k] = v;
  return { status: a.status, headers, body };
}

interface Case {
  name: string;
  path?: string;
  body: string | Buffer;
  headers?: Record<string, string>;
  /** Whether the lane takes it (false: it must leave it to Fastify). */
  lane: boolean;
}

const json = { 'content-type': 'application/json' };
const auth = (secret: string) => ({ ...json, authorization: `Bearer ${secret}` });
const body = (b: unknown) => JSON.stringify(b);
const deep = `{"instances":${'['.repeat(200)}${']'.repeat(200)}}`;

const cases: Case[] = [
  { name: 'one row', body: body({ instances: [ok] }), lane: true },
  { name: 'three rows', body: body({ instances: [ok, { ...ok, amount: 3 }, { ...ok, color: 'blue' }] }), lane: true },
  {
    name: 'columns',
    body: body({ inputs: { amount: [1, 2], items: [1, 2], member: [true, false], color: ['red', 'red'] } }),
    lane: true,
  },
  { name: 'one version', path: '/v1/models/cls/versions/1.0.0/predict', body: body({ instances: [ok] }), lane: true },
  {
    name: 'charset parameter',
    body: body({ instances: [ok] }),
    headers: { 'content-type': 'application/json; charset=utf-8' },
    lane: true,
  },
  { name: 'unknown model', path: '/v1/models/nope/predict', body: body({ instances: [ok] }), lane: true },
  {
    name: 'unknown version',
    path: '/v1/models/cls/versions/9.9.9/predict',
    body: body({ instances: [ok] }),
    lane: true,
  },
  { name: 'malformed JSON', body: '{"instances": [', lane: true },
  { name: 'NaN literal', body: '{"instances":[{"amount":NaN}]}', lane: true },
  { name: 'nesting bomb', body: deep, lane: true },
  { name: 'prototype pollution', body: '{"instances":[{"__proto__":{"x":1}}]}', lane: true },
  { name: 'body is an array', body: body([ok]), lane: true },
  { name: 'body is null', body: 'null', lane: true },
  { name: 'unknown member', body: body({ instances: [ok], extra: 1 }), lane: true },
  { name: 'both forms', body: body({ instances: [ok], inputs: {} }), lane: true },
  { name: 'value out of range', body: body({ instances: [{ ...ok, amount: -5 }] }), lane: true },
  { name: 'wrong type', body: body({ instances: [{ ...ok, member: 'yes' }] }), lane: true },
  { name: 'too many instances', body: body({ instances: Array.from({ length: 1025 }, () => ok) }), lane: true },
  {
    name: 'bad Ferry-Timeout-Ms',
    body: body({ instances: [ok] }),
    headers: { ...json, 'ferry-timeout-ms': '-3' },
    lane: true,
  },
  { name: 'malformed JSON to an unknown model', path: '/v1/models/nope/predict', body: '{"instances": [', lane: true },
  {
    name: 'an array body and a bad Ferry-Timeout-Ms',
    body: body([ok]),
    headers: { ...json, 'ferry-timeout-ms': 'soon' },
    lane: true,
  },
  { name: 'tensor model', path: '/v1/models/lin/predict', body: body({ instances: [lin.example] }), lane: true },
  // A plain tensor body is read straight into the tensor (serving/predict/tensor-body.ts); the rest parse.
  ...(
    [
      [
        'tensor body, spaced, two rows',
        '{ "instances" : [ {"x": [1, 2.5, -3, 0, -0, 0.125, 7, 8]},\n{"x":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]} ] }',
      ],
      ['tensor body with an exponent', '{"instances":[{"x":[1e0,2,3,4,5,6,7,8]}]}'],
      ['tensor body with 17 digits', '{"instances":[{"x":[0.12345678901234567,2,3,4,5,6,7,8]}]}'],
      ['tensor row too short', '{"instances":[{"x":[1,2,3,4,5,6,7]}]}'],
      ['tensor row with a string', '{"instances":[{"x":[1,2,3,4,5,6,7,"8"]}]}'],
      ['tensor body, leading zero', '{"instances":[{"x":[01,2,3,4,5,6,7,8]}]}'],
      ['tensor body, trailing bytes', '{"instances":[{"x":[1,2,3,4,5,6,7,8]}]} x'],
      ['tensor body, no rows', '{"instances":[]}'],
    ] as const
  ).map(([name, b]): Case => ({ name, path: '/v1/models/lin/predict', body: b, lane: true })),
  {
    name: 'tensor body and a bad Ferry-Timeout-Ms',
    path: '/v1/models/lin/predict',
    body: body({ instances: [lin.example] }),
    headers: { ...json, 'ferry-timeout-ms': '-3' },
    lane: true,
  },
  // Left to Fastify: nothing the lane does not do may reach it.
  { name: 'empty body', body: '', lane: false },
  { name: 'text/plain', body: body({ instances: [ok] }), headers: { 'content-type': 'text/plain' }, lane: false },
  {
    name: 'event stream',
    body: body({ instances: [ok] }),
    headers: { ...json, accept: 'text/event-stream' },
    lane: false,
  },
  { name: 'query string', path: '/v1/models/cls/predict?x=1', body: body({ instances: [ok] }), lane: false },
  { name: 'escaped name', path: '/v1/models/c%6Cs/predict', body: body({ instances: [ok] }), lane: false },
  { name: 'trailing slash', path: '/v1/models/cls/predict/', body: body({ instances: [ok] }), lane: false },
  { name: 'over the body limit', body: body({ instances: [ok], pad: 'x'.repeat(70_000) }), lane: false },
];

const keyCases: Case[] = [
  { name: 'a predict key', body: body({ instances: [ok] }), headers: auth(PREDICT_SECRET), lane: true },
  { name: 'no key', body: body({ instances: [ok] }), lane: false },
  {
    name: 'an unknown key',
    body: body({ instances: [ok] }),
    headers: auth('nope-0123456789abcdef0123456789'),
    lane: false,
  },
  { name: 'a key without predict', body: body({ instances: [ok] }), headers: auth(JOBS_SECRET), lane: false },
  { name: 'a key for another model', body: body({ instances: [ok] }), headers: auth(LIMITED_SECRET), lane: false },
  {
    name: 'a limited key, its model',
    path: '/v1/models/lin/predict',
    body: body({ instances: [lin.example] }),
    headers: auth(LIMITED_SECRET),
    lane: true,
  },
];

function suite(title: string, overrides: Record<string, unknown>, list: Case[]) {
  // /metrics takes any valid key once keys are on.
  const metricsHeaders: Record<string, string> =
    'auth.keys' in overrides ? { authorization: `Bearer ${PREDICT_SECRET}` } : {};
  describe(title, () => {
    let withLane: TestServer;
    let without: TestServer;
    let lanePort = 0;
    let plainPort = 0;
    before(async () => {
      const models = [
        {
          name: 'cls',
          version: '1.0.0',
          files: { onnx: cls.onnx, manifest: { ...cls.manifest, cache: { enabled: true } } },
        },
        { name: 'lin', version: '1.0.0', files: { onnx: lin.onnx, manifest: lin.manifest } },
      ];
      const common = { 'server.bodyLimitBytes': 65_536, ...overrides };
      withLane = await startTestServer(models, common);
      without = await startTestServer(models, { ...common, 'server.predictLane': false });
      lanePort = await listen(withLane);
      plainPort = await listen(without);
    });
    after(async () => {
      await withLane?.close();
      await without?.close();
    });

    for (const c of list) {
      test(`${c.name}: the same answer${c.lane ? ', from the lane' : ', from Fastify'}`, async () => {
        const path = c.path ?? '/v1/models/cls/predict';
        const headers = c.headers ?? json;
        // Twice through the lane: a prediction the cache answers the second time is compared too.
        for (let round = 0; round < 2; round++) {
          const before = await laneCount(lanePort, metricsHeaders);
          const a = await send(lanePort, 'POST', path, c.body, headers);
          const taken = (await laneCount(lanePort, metricsHeaders)) - before;
          const b = await send(plainPort, 'POST', path, c.body, headers);
          assert.equal(taken, c.lane ? 1 : 0, 'requests the lane took');
          assert.deepEqual(comparable(a), comparable(b));
          assert.ok(a.headers['x-request-id'], 'a request id');
          if (a.status === 200 && c.lane) assert.match(a.body, /"predictions":\[/);
        }
        // The caller's request id is kept.
        const a = await send(lanePort, 'POST', path, c.body, { ...headers, 'x-request-id': 'mine-1' });
        assert.equal(a.headers['x-request-id'], 'mine-1');
        if (a.status >= 400 && a.body.startsWith('{')) assert.equal(JSON.parse(a.body).requestId, 'mine-1');
      });
    }

    test('the lane counts its requests in ferry_requests_total like the route, and none stays in flight', async () => {
      const text = (await send(lanePort, 'GET', '/metrics', '', metricsHeaders)).body;
      assert.match(text, /ferry_requests_total\{[^}]*route="v1_predict"[^}]*model="cls"[^}]*status="200"[^}]*\} [1-9]/);
      // The scrape itself is the one request in flight.
      assert.match(text, /^ferry_http_in_flight_requests 1$/m);
    });
  });
}

suite('predict lane: open server', {}, cases);
suite('predict lane: open server, no answer memo', { 'cache.answerMemoMaxBytes': 0 }, cases.slice(0, 6));
suite('predict lane: API keys', { 'auth.keys': keys }, keyCases);

describe('the answer memo', () => {
  let t: TestServer;
  let port = 0;
  const metric = async (name: string, labels: RegExp) => {
    const text = (await send(port, 'GET', '/metrics', '', {})).body;
    const line = text.split('\n').find((l) => l.startsWith(name) && labels.test(l));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };
  before(async () => {
    t = await startTestServer([
      {
        name: 'cls',
        version: '1.0.0',
        files: { onnx: cls.onnx, manifest: { ...cls.manifest, cache: { enabled: true } } },
      },
      {
        name: 'brief',
        version: '1.0.0',
        files: { onnx: cls.onnx, manifest: { ...cls.manifest, cache: { enabled: true, ttlSeconds: 1 } } },
      },
      { name: 'plain', version: '1.0.0', files: { onnx: cls.onnx, manifest: cls.manifest } },
    ]);
    port = await listen(t);
  });
  after(() => t?.close());

  test('a body sent again is answered from it, counted as cache hits, and logged like a prediction', async () => {
    const rows = [ok, { ...ok, amount: 7 }, { ...ok, color: 'blue' }];
    const b = body({ instances: rows });
    const memo0 = await metric('ferry_answer_memo_hits_total', /model="cls"/);
    const hits0 = await metric('ferry_cache_requests_total', /model="cls".*result="hit"/);
    const first = await send(port, 'POST', '/v1/models/cls/predict', b, json);
    const again = await send(port, 'POST', '/v1/models/cls/predict', b, { ...json, 'x-request-id': 'again-1' });
    assert.equal(first.headers['ferry-cache'], 'miss');
    assert.equal(again.headers['ferry-cache'], 'hit');
    assert.equal(again.body, first.body);
    assert.equal((await metric('ferry_answer_memo_hits_total', /model="cls"/)) - memo0, 1);
    assert.equal((await metric('ferry_cache_requests_total', /model="cls".*result="hit"/)) - hits0, 3);
    // The same body with a space more is another body: the per-instance cache answers it, not the memo.
    const spaced = await send(port, 'POST', '/v1/models/cls/predict', `${b} `, json);
    assert.equal(spaced.headers['ferry-cache'], 'hit');
    assert.equal(spaced.body, first.body);
    assert.equal((await metric('ferry_answer_memo_hits_total', /model="cls"/)) - memo0, 1);
    // The prediction log has the memo's rows as well, with their inputs, outputs and request id.
    await t.server.predictionLog!.flush();
    const logged = await t.server.predictionLog!.query({ model: 'cls', since: 0, order: 'asc' });
    const fromMemo = logged.filter((r) => r.requestId === 'again-1');
    assert.equal(fromMemo.length, 3);
    assert.deepEqual(
      fromMemo.map((r) => r.input),
      rows,
    );
    assert.deepEqual(
      fromMemo.map((r) => r.output),
      (JSON.parse(first.body) as { predictions: unknown[] }).predictions,
    );
    assert.ok(fromMemo.every((r) => r.cacheHit));
  });

  test('an answer is kept no longer than its rows are fresh in the cache', async () => {
    const b = body({ instances: [{ ...ok, amount: 11 }] });
    const memo0 = await metric('ferry_answer_memo_hits_total', /model="brief"/);
    assert.equal((await send(port, 'POST', '/v1/models/brief/predict', b, json)).headers['ferry-cache'], 'miss');
    assert.equal((await send(port, 'POST', '/v1/models/brief/predict', b, json)).headers['ferry-cache'], 'hit');
    assert.equal((await metric('ferry_answer_memo_hits_total', /model="brief"/)) - memo0, 1);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await send(port, 'POST', '/v1/models/brief/predict', b, json)).headers['ferry-cache'], 'miss');
    assert.equal((await metric('ferry_answer_memo_hits_total', /model="brief"/)) - memo0, 1);
  });

  test('a model that does not cache is never answered from it', async () => {
    const b = body({ instances: [ok] });
    for (let i = 0; i < 3; i++) {
      const r = await send(port, 'POST', '/v1/models/plain/predict', b, json);
      assert.equal(r.status, 200);
      assert.equal(r.headers['ferry-cache'], undefined);
    }
    assert.equal(await metric('ferry_answer_memo_hits_total', /model="plain"/), 0);
  });
});

describe('a tensor body read in one pass (serving/predict/tensor-body.ts)', () => {
  let t: TestServer;
  let port = 0;
  before(async () => {
    t = await startTestServer([{ name: 'lin', version: '1.0.0', files: { onnx: lin.onnx, manifest: lin.manifest } }]);
    port = await listen(t);
  });
  after(() => t?.close());

  test('is answered as parsed, and logged with the instances as sent, parsed only for the log', async () => {
    const rows = [
      { x: [1, 2, 3, 4, 5, 6, 7, 8] },
      { x: [0.1, -0.25, 0.333333, 1e-7, 4, 5, 6, 7] }, // 1e-7: printed with an exponent, so parsed
    ];
    const plain = '{"instances":[{"x":[1,2,3,4,5,6,7,8]},{"x":[0.1,-0.25,0.333333,0,4,5,6,7]}]}';
    const a = await send(port, 'POST', '/v1/models/lin/predict', plain, { ...json, 'x-request-id': 'one-pass-1' });
    const b = await send(port, 'POST', '/v1/models/lin/predict', body({ instances: rows }), {
      ...json,
      'x-request-id': 'parsed-1',
    });
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    const preds = (r: Answer) => (JSON.parse(r.body) as { predictions: Array<Record<string, number>> }).predictions;
    const value = (p: Record<string, number> | undefined) => Object.values(p ?? {})[0]!;
    // The first rows are the same instance on both paths; the second rows differ by 1e-7 in x[3].
    assert.deepEqual(preds(a)[0], preds(b)[0]);
    const sent = (JSON.parse(plain) as { instances: Array<{ x: number[] }> }).instances;
    sent.forEach((inst, i) => assert.ok(Math.abs(value(preds(a)[i]) - lin.reference(inst)[0]!) < 1e-5));
    assert.ok(Math.abs(value(preds(a)[1]) - value(preds(b)[1])) < 1e-5);
    await t.server.predictionLog!.flush();
    const logged = await t.server.predictionLog!.query({ model: 'lin', since: 0, order: 'asc' });
    const onePass = logged.filter((r) => r.requestId === 'one-pass-1');
    assert.deepEqual(
      onePass.map((r) => r.input),
      sent,
    );
    assert.deepEqual(
      onePass.map((r) => r.output),
      preds(a),
    );
  });
});

describe('a one-pass body past its deadline (the batch answers after the request gave up)', () => {
  const slow = slowModel(120);
  let t: TestServer;
  let port = 0;
  const files = (fallback: object) => ({
    onnx: slow.onnx,
    manifest: { ...slow.manifest, timeoutMs: 5000, fallback },
  });
  before(async () => {
    t = await startTestServer(
      [
        { name: 'slow', version: '1.0.0', files: files({ policy: 'static', value: { value: -1 } }) },
        { name: 'bare', version: '1.0.0', files: files({ policy: 'none' }) },
      ],
      { 'runtime.workers': 1 },
    );
    port = await listen(t);
  });
  after(() => t?.close());
  const plain = '{"instances":[{"x":[1,2,3,4]}]}';

  test('is answered by the fallback, or 504 without one, and the late answer reaches no one', async () => {
    const before = await laneCount(port, {});
    const [fell, failed] = await Promise.all([
      send(port, 'POST', '/v1/models/slow/predict', plain, { ...json, 'ferry-timeout-ms': '10' }),
      send(port, 'POST', '/v1/models/bare/predict', plain, { ...json, 'ferry-timeout-ms': '10' }),
    ]);
    assert.equal(fell.status, 200, fell.body);
    assert.deepEqual(JSON.parse(fell.body), {
      model: 'slow',
      version: '1.0.0',
      predictions: [{ value: -1 }],
      fallback: { reason: 'timeout', policy: 'static' },
    });
    assert.equal(fell.headers['ferry-fallback'], 'timeout');
    assert.equal(failed.status, 504, failed.body);
    assert.equal((JSON.parse(failed.body) as { code: string }).code, 'timeout');
    // The next requests, queued behind the runs whose answers nobody waits for, get their own answers.
    const [a, b] = await Promise.all([
      send(port, 'POST', '/v1/models/slow/predict', plain, json),
      send(port, 'POST', '/v1/models/bare/predict', '{"instances":[{"x":[2,2,2,2]}]}', json),
    ]);
    assert.equal(a.status, 200, a.body);
    assert.equal(b.status, 200, b.body);
    const value = (r: Answer) =>
      (JSON.parse(r.body) as { predictions: Array<{ value: number }> }).predictions[0]!.value;
    assert.ok(Math.abs(value(a) - slow.reference({ x: [1, 2, 3, 4] })[0]!) < 1e-3, a.body);
    assert.ok(Math.abs(value(b) - slow.reference({ x: [2, 2, 2, 2] })[0]!) < 1e-3, b.body);
    assert.equal((await laneCount(port, {})) - before, 4, 'the lane took all four');
  });
});

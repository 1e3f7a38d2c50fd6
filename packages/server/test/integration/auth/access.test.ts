import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { biasModel, startRepoServer, type RepoServer } from '@ferry/test-kit';
import { hashKey, parseApiKeysEnv } from '../../auth/keys.js';
import type { ApiKeyConfig, Scope } from '../../config/schemas/auth.js';
import { loadConfig } from '../../config/index.js';
import { createLogger } from '../../app/create-server.js';
import { Validator } from '@seriousme/openapi-schema-validator';

const SECRETS: Record<string, string> = {
  admin: 'admin-secret-0123456789abcdef',
  predict: 'predict-secret-0123456789abcdef',
  jobs: 'jobs-secret-0123456789abcdef',
  pipelines: 'pipelines-secret-0123456789abcdef',
  bare: 'bare-secret-0123456789abcdef',
  limited: 'limited-secret-0123456789abcdef',
};
const key = (id: string, scopes: Scope[], models: string[] = [], rateLimitMax = 0): ApiKeyConfig => ({
  id,
  sha256: hashKey(SECRETS[id]!),
  scopes,
  models,
  rateLimitMax,
});
const KEYS = [
  key('admin', ['admin']),
  key('predict', ['predict']),
  key('jobs', ['jobs']),
  key('pipelines', ['pipelines:read']),
  key('bare', []),
  key('limited', ['predict'], ['m']),
];
const infer = { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [2, 1] }] };
const instances = { instances: [{ x: [2, 1] }] };

type Who = 'none' | 'wrong' | keyof typeof SECRETS;
const WHO: Who[] = ['none', 'wrong', 'admin', 'predict', 'jobs', 'pipelines', 'bare', 'limited'];
// 'pass' = the key is accepted (the route itself may then 404 on this branch, e.g. jobs); a number = exact status.
type Expect = number | 'pass';
interface Row {
  family: string;
  req: InjectOptions;
  ok: Expect;
  allow: Who[];
}
const ANY: Who[] = ['admin', 'predict', 'jobs', 'pipelines', 'bare', 'limited'];
const ROWS: Row[] = [
  { family: 'health', req: { url: '/healthz' }, ok: 200, allow: WHO },
  { family: 'health', req: { url: '/v2/health/live' }, ok: 200, allow: WHO },
  { family: 'docs', req: { url: '/openapi.json' }, ok: 200, allow: WHO },
  { family: 'static', req: { url: '/favicon.ico' }, ok: 404, allow: WHO },
  { family: 'metadata', req: { url: '/v1/models' }, ok: 200, allow: ANY },
  { family: 'metadata', req: { url: '/v2/models/m' }, ok: 200, allow: ANY },
  { family: 'metadata', req: { url: '/v2/models/o' }, ok: 200, allow: ANY.filter((w) => w !== 'limited') },
  { family: 'metadata', req: { method: 'POST', url: '/v2/repository/index' }, ok: 200, allow: ANY },
  { family: 'metrics', req: { url: '/metrics' }, ok: 200, allow: ANY },
  { family: 'rollout-status', req: { url: '/v1/models/m/rollout' }, ok: 200, allow: ANY },
  {
    family: 'v1-predict',
    req: { method: 'POST', url: '/v1/models/m/predict', payload: instances },
    ok: 200,
    allow: ['predict', 'limited'],
  },
  {
    family: 'v1-predict',
    req: { method: 'POST', url: '/v1/models/o/predict', payload: instances },
    ok: 200,
    allow: ['predict'],
  },
  {
    family: 'v2-infer',
    req: { method: 'POST', url: '/v2/models/m/versions/1.0.0/infer', payload: infer },
    ok: 200,
    allow: ['predict', 'limited'],
  },
  { family: 'stream', req: { url: '/v1/models/m/stream' }, ok: 'pass', allow: ['predict', 'limited'] },
  {
    family: 'openai',
    req: { method: 'POST', url: '/openai/v1/chat/completions', payload: {} },
    ok: 'pass',
    allow: ['predict', 'limited'],
  },
  {
    family: 'artifact',
    req: { url: '/v1/models/m/versions/1.0.0/artifact' },
    ok: 'pass',
    allow: ['predict', 'limited'],
  },
  {
    family: 'jobs',
    req: { method: 'POST', url: '/v1/models/m/jobs', payload: instances },
    ok: 'pass',
    allow: ['jobs'],
  },
  { family: 'jobs', req: { url: '/v1/jobs/0b2a' }, ok: 'pass', allow: ['jobs'] },
  { family: 'pipelines', req: { url: '/v1/pipelines/churn/predictions/7' }, ok: 'pass', allow: ['pipelines'] },
  { family: 'pipelines', req: { method: 'POST', url: '/v1/pipelines/churn/run' }, ok: 'pass', allow: ['admin'] },
  { family: 'drift', req: { url: '/v1/models/m/drift' }, ok: 400, allow: ANY },
  { family: 'drift', req: { url: '/v1/models/o/drift' }, ok: 400, allow: ANY.filter((w) => w !== 'limited') },
  { family: 'admin', req: { url: '/v1/admin/repository' }, ok: 200, allow: ['admin'] },
  { family: 'admin', req: { url: '/v1/admin/config' }, ok: 200, allow: ['admin'] },
  {
    family: 'repository-load',
    req: { method: 'POST', url: '/v2/repository/models/m/load' },
    ok: 200,
    allow: ['admin'],
  },
  { family: 'api-other', req: { url: '/v1/unknown/route' }, ok: 404, allow: ANY },
];

const headersFor = (who: Who): Record<string, string> =>
  who === 'none' ? {} : { authorization: `Bearer ${who === 'wrong' ? 'wrong-secret-0123456789abcdef' : SECRETS[who]}` };

describe('scope matrix with keys configured', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer(
      [
        { name: 'm', version: '1.0.0', files: biasModel(0) },
        { name: 'o', version: '1.0.0', files: biasModel(1) },
      ],
      {},
      { 'auth.keys': KEYS },
    );
  });
  after(() => t.close());

  test('/v2 lists the model_repository extension, which answers here', async () => {
    const v2 = (await t.server.app.inject({ url: '/v2', headers: headersFor('admin') })).json() as {
      extensions: string[];
    };
    assert.ok(v2.extensions.includes('model_repository'), JSON.stringify(v2));
  });

  test('every endpoint family × no key, a wrong key and each scope', async () => {
    const problems: string[] = [];
    for (const row of ROWS) {
      for (const who of WHO) {
        const r = await t.server.app.inject({ ...row.req, headers: headersFor(who) });
        const label = `${row.family} ${row.req.method ?? 'GET'} ${row.req.url} as ${who}: ${r.statusCode}`;
        if (row.allow.includes(who)) {
          if (row.ok === 'pass' ? r.statusCode === 401 || r.statusCode === 403 : r.statusCode !== row.ok)
            problems.push(`${label} (expected ${row.ok}) ${r.body.slice(0, 200)}`);
        } else {
          const want = who === 'none' || who === 'wrong' ? 401 : 403;
          if (r.statusCode !== want) problems.push(`${label} (expected ${want})`);
          else {
            assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8', label);
            assert.equal(r.json().code, want === 401 ? 'unauthorized' : 'forbidden', label);
            if (want === 401) assert.match(String(r.headers['www-authenticate']), /^Bearer realm="ferry"/, label);
          }
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  test('a refusal names the missing scope; malformed Authorization headers are 401s', async () => {
    const r = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m/predict',
      headers: headersFor('jobs'),
      payload: instances,
    });
    assert.equal(r.json().required, 'predict');
    for (const authorization of [
      'Basic YWxhZGRpbjpvcGVuc2VzYW1l',
      'Bearer',
      `Bearer ${SECRETS.predict} extra`,
      `bearer  ${'x'.repeat(5000)}`,
      `Token ${SECRETS.predict}`,
    ]) {
      const x = await t.server.app.inject({
        method: 'POST',
        url: '/v1/models/m/predict',
        headers: { authorization },
        payload: instances,
      });
      assert.equal(x.statusCode, 401, authorization.slice(0, 30));
    }
    // Browsers cannot set headers on a WebSocket: the key may come as a `ferry.bearer.<key>` subprotocol of an upgrade.
    const ws = (protocol: string, upgrade = 'websocket') =>
      t.server.app.inject({
        url: '/v1/models/m/stream',
        headers: {
          connection: 'Upgrade',
          upgrade,
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'sec-websocket-protocol': protocol,
        },
      });
    const accepted = await ws(`ferry.v1, ferry.bearer.${SECRETS.predict}`);
    // Accepted by auth; fixture model m declares no streaming mode, so the stream route refuses it.
    assert.equal(accepted.statusCode, 400);
    assert.equal(accepted.json().code, 'not-streamable');
    assert.equal((await ws(`ferry.v1, ferry.bearer.${SECRETS.jobs}`)).statusCode, 403);
    assert.equal((await ws('ferry.v1')).statusCode, 401);
    assert.equal((await ws(`ferry.bearer.${SECRETS.predict}`, 'h2c')).statusCode, 401); // only on a WebSocket upgrade
    // The scheme is case-insensitive (RFC 7235).
    assert.equal(
      (
        await t.server.app.inject({
          method: 'POST',
          url: '/v1/models/m/predict',
          headers: { authorization: `bearer ${SECRETS.predict}` },
          payload: instances,
        })
      ).statusCode,
      200,
    );
  });

  test('/openapi.json declares the bearer scheme and the management routes, and stays valid OpenAPI 3.1', async () => {
    const doc = (await t.server.app.inject({ url: '/openapi.json' })).json();
    const res = await new Validator().validate(doc);
    assert.equal(res.valid, true, JSON.stringify(res.errors ?? null).slice(0, 1500));
    assert.deepEqual(doc.security, [{ bearer: [] }]);
    assert.equal(doc.components.securitySchemes.bearer.scheme, 'bearer');
    assert.ok(doc.paths['/v1/admin/repository:reload'].post);
    assert.ok(doc.paths['/v2/repository/models/{model}/load'].post);
    assert.ok(doc.paths['/v1/models/{model}/rollout'].get);
  });

  test('a key limited to models lists only those', async () => {
    const names = async (who: Who) =>
      (await t.server.app.inject({ url: '/v1/models', headers: headersFor(who) }))
        .json()
        .models.map((m: { name: string }) => m.name);
    assert.deepEqual(await names('limited'), ['m']);
    assert.deepEqual(await names('bare'), ['m', 'o']);
    const index = (
      await t.server.app.inject({ method: 'POST', url: '/v2/repository/index', headers: headersFor('limited') })
    ).json();
    assert.deepEqual(
      index.map((e: { name: string }) => e.name),
      ['m'],
    );
  });

  test('the effective config never shows key digests', async () => {
    const body = (await t.server.app.inject({ url: '/v1/admin/config', headers: headersFor('admin') })).body;
    for (const k of KEYS) assert.ok(!body.includes(k.sha256));
    assert.match(body, /"id":"limited"/);
  });
});

describe('no keys configured', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer([{ name: 'm', version: '1.0.0', files: biasModel(0) }]);
  });
  after(() => t.close());

  test('inference and metadata are open, every management endpoint is a 404', async () => {
    assert.equal(
      (await t.server.app.inject({ method: 'POST', url: '/v1/models/m/predict', payload: instances })).statusCode,
      200,
    );
    assert.equal(
      (await t.server.app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: infer })).statusCode,
      200,
    );
    assert.equal((await t.server.app.inject({ url: '/v1/models' })).statusCode, 200);
    assert.equal((await t.server.app.inject({ url: '/metrics' })).statusCode, 200);
    assert.equal((await t.server.app.inject({ url: '/v1/models/m/rollout' })).statusCode, 200);
    // Drift is read like metadata: open here (the README's quick start reads it with no keys).
    // (This model ships no reference data, so the route itself answers why drift cannot be measured.)
    const drift = await t.server.app.inject({ url: '/v1/models/m/drift?window=1h' });
    assert.equal(drift.statusCode, 400, drift.body);
    assert.match(drift.json().detail, /ships no reference data/);
    // The repository extension (load/unload) does not exist without keys, so /v2 does not list it.
    const v2 = (await t.server.app.inject({ url: '/v2' })).json() as { extensions: string[] };
    assert.ok(!v2.extensions.includes('model_repository'), JSON.stringify(v2));
    assert.ok(v2.extensions.includes('model_repository_index'));
    for (const [method, url] of [
      ['POST', '/v1/admin/repository:reload'],
      ['POST', '/v1/admin/models/m/versions/1.0.0:unload'],
      ['GET', '/v1/admin/config'],
      ['POST', '/v2/repository/models/m/unload'],
      ['POST', '/v1/pipelines/x/run'],
    ] as const) {
      const r = await t.server.app.inject({ method, url, headers: headersFor('admin') });
      assert.equal(r.statusCode, 404, `${method} ${url}`);
      assert.equal(r.json().code, 'route-not-found');
    }
    // The model is still served: the unload above did not happen.
    assert.equal(
      (await t.server.app.inject({ method: 'POST', url: '/v1/models/m/predict', payload: instances })).statusCode,
      200,
    );
  });
});

describe('keys from FERRY_API_KEYS', () => {
  test('are parsed, hashed and scoped; bad entries are refused without echoing the secret', () => {
    const cfg = loadConfig({
      env: {
        FERRY_API_KEYS:
          'web=abcdefghijklmnop0123;scopes=predict+pipelines:read;models=spam+ham, ops=ZYXWVUTSRQPONMLK9876;scopes=admin;rate=5',
      },
    });
    assert.deepEqual(
      cfg.auth.keys.map((k) => [k.id, k.scopes, k.models, k.rateLimitMax]),
      [
        ['web', ['predict', 'pipelines:read'], ['spam', 'ham'], 0],
        ['ops', ['admin'], [], 5],
      ],
    );
    assert.equal(cfg.auth.keys[0]!.sha256, hashKey('abcdefghijklmnop0123'));
    assert.ok(!JSON.stringify(cfg).includes('abcdefghijklmnop0123'));
    for (const bad of [
      'web=short',
      'web=abcdefghijklmnop0123;scopes=root',
      'bad id=abcdefghijklmnop0123',
      'web=abcdefghijklmnop0123;models=../etc',
    ]) {
      assert.throws(
        () => parseApiKeysEnv(bad),
        (e: Error) => !e.message.includes('abcdefghijklmnop0123') && !e.message.includes('short'),
        bad,
      );
    }
  });
});

describe('rate limits', () => {
  for (const store of ['in-process', 'redis'] as const) {
    test(`per key and per address (${store}): 429 problem+json with Retry-After`, async () => {
      // Unique key ids: counters in the shared Redis never collide between runs.
      const id = `rl-${randomUUID().slice(0, 8)}`;
      const secret = `${id}-secret-0123456789`;
      const keys: ApiKeyConfig[] = [
        { id, sha256: hashKey(secret), scopes: ['predict'], models: [], rateLimitMax: 0 },
        { id: `${id}-big`, sha256: hashKey(`${secret}-big`), scopes: ['predict'], models: [], rateLimitMax: 6 },
      ];
      const overrides = {
        'auth.keys': keys,
        'auth.rateLimit.keyMax': 3,
        'auth.rateLimit.ipMax': 2,
        ...(store === 'redis' && { 'redis.url': 'redis://127.0.0.1:6379' }),
      };
      const a = await startRepoServer([{ name: 'm', version: '1.0.0', files: biasModel(0) }], {}, overrides);
      const b =
        store === 'redis'
          ? await startRepoServer([{ name: 'm', version: '1.0.0', files: biasModel(0) }], {}, overrides)
          : a;
      try {
        const call = (s: RepoServer, k?: string, remoteAddress = '10.1.2.3') =>
          s.server.app.inject({
            method: 'POST',
            url: '/v1/models/m/predict',
            remoteAddress,
            headers: k ? { authorization: `Bearer ${k}` } : {},
            payload: instances,
          });
        // Three calls pass, spread over both replicas when Redis shares the counter.
        assert.equal((await call(a, secret)).statusCode, 200);
        assert.equal((await call(b, secret)).statusCode, 200);
        assert.equal((await call(a, secret)).statusCode, 200);
        const limited = await call(b, secret);
        assert.equal(limited.statusCode, 429, limited.body);
        assert.equal(limited.headers['content-type'], 'application/problem+json; charset=utf-8');
        assert.equal(limited.json().code, 'rate-limited');
        assert.equal(limited.json().limit, 3);
        const retry = Number(limited.headers['retry-after']);
        assert.ok(retry >= 1 && retry <= 60, String(limited.headers['retry-after']));
        // Another key has its own budget (and its own larger limit).
        for (let i = 0; i < 6; i++) assert.equal((await call(a, `${secret}-big`)).statusCode, 200);
        assert.equal((await call(a, `${secret}-big`)).statusCode, 429);
        // Without a key: a wrong key is refused (401) and counted per address; the probe is never limited.
        const addr = `10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
        const open = async () => (await a.server.app.inject({ url: '/openapi.json', remoteAddress: addr })).statusCode;
        assert.equal(await open(), 200);
        assert.equal(await open(), 200);
        assert.equal(await open(), 429);
        assert.equal((await a.server.app.inject({ url: '/healthz', remoteAddress: addr })).statusCode, 200);
        // Guessing keys is counted per address too: the third wrong key from one address is a 429, not a 401.
        const guesser = `10.8.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
        const guess = async (i: number) => (await call(a, `guess-${i}-0123456789abcdef`, guesser)).statusCode;
        assert.deepEqual([await guess(1), await guess(2), await guess(3)], [401, 401, 429]);
        // All three failed authentication (the third was also throttled). Read from the registry: both keys have spent
        // their budget.
        assert.match(
          await a.server.metrics.registry.getSingleMetricAsString('ferry_auth_refusals_total'),
          /ferry_auth_refusals_total\{code="unauthorized"\} 3/,
        );
        assert.equal(
          // A fresh address: the Redis counters outlive a run, so a fixed one fails a rerun within the window.
          (await a.server.app.inject({ url: '/openapi.json', remoteAddress: `10.200.${addr.split('.')[2]}.1` }))
            .statusCode,
          200,
        );
      } finally {
        await a.close();
        if (b !== a) await b.close();
      }
    });
  }
});

describe('secrets in logs', () => {
  test('keys never appear in the log, at trace level, whatever the request', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const secret = SECRETS.predict!;
    const cfg = loadConfig({ env: {}, overrides: { 'log.level': 'trace' } });
    const log = createLogger(cfg, sink);
    const t = await startRepoServer(
      [{ name: 'm', version: '1.0.0', files: biasModel(0) }],
      {},
      { 'auth.keys': KEYS, 'log.level': 'trace' },
      log,
    );
    try {
      await t.server.app.inject({
        method: 'POST',
        url: '/v1/models/m/predict',
        headers: { authorization: `Bearer ${secret}` },
        payload: instances,
      });
      await t.server.app.inject({
        method: 'POST',
        url: '/v1/models/m/predict',
        headers: { authorization: `Bearer ${secret}x` },
        payload: instances,
      });
      await t.server.app.inject({
        method: 'POST',
        url: '/v1/models/m/predict',
        headers: { authorization: `Bearer ${secret}` },
        payload: { instances: [{ x: 'bad' }] },
      });
      // A component that logs a request's headers or a config object still leaks nothing.
      t.server.log.info({ req: { headers: { authorization: `Bearer ${secret}` } } }, 'headers');
      t.server.log.info({ config: { auth: { keys: KEYS } } }, 'config');
      t.server.log.info({ key: { apiKey: secret, secret, sha256: KEYS[1]!.sha256 } }, 'fields');
    } finally {
      await t.close();
    }
    const text = lines.join('');
    assert.ok(lines.length > 10, 'the log captured the requests');
    assert.match(text, /"apiKey":"predict"/, 'the key id is logged, for audit');
    assert.match(text, /\[redacted\]/);
    for (const s of [secret, `${secret}x`, KEYS[1]!.sha256]) assert.ok(!text.includes(s), 'a secret reached the log');
  });
});

describe('CORS allow-list and upload bounds', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer(
      [{ name: 'm', version: '1.0.0', files: biasModel(0) }],
      {},
      {
        'auth.keys': KEYS,
        'auth.cors.origins': ['https://app.example.com'],
        'server.bodyLimitBytes': 4096,
      },
    );
  });
  after(() => t.close());

  test('an allowed origin gets CORS headers, a preflight needs no key, other origins get none', async () => {
    const pre = await t.server.app.inject({
      method: 'OPTIONS',
      url: '/v1/models/m/predict',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,ferry-client-id',
      },
    });
    assert.equal(pre.statusCode, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.match(String(pre.headers['access-control-allow-headers']), /authorization/);
    const ok = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m/predict',
      headers: { origin: 'https://app.example.com', ...headersFor('predict') },
      payload: instances,
    });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.match(String(ok.headers['access-control-expose-headers']), /ferry-model-version/);
    const evil = await t.server.app.inject({
      method: 'OPTIONS',
      url: '/v1/models/m/predict',
      headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(evil.headers['access-control-allow-origin'], undefined);
    // A preflight-looking request does not skip the key check for the real method.
    const sneaky = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m/predict',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
      payload: instances,
    });
    assert.equal(sneaky.statusCode, 401);
  });

  test('the job event stream (hijacked SSE) carries the CORS headers too', async () => {
    const submit = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m/jobs',
      headers: { origin: 'https://app.example.com', ...headersFor('jobs') },
      payload: instances,
    });
    assert.equal(submit.statusCode, 202, submit.body);
    const events = await t.server.app.inject({
      method: 'GET',
      url: `/v1/jobs/${submit.json().id}/events`,
      headers: { origin: 'https://app.example.com', ...headersFor('jobs') },
    });
    assert.equal(events.statusCode, 200);
    assert.match(String(events.headers['content-type']), /text\/event-stream/);
    assert.equal(events.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.match(events.body, /event: completed/);
  });

  test('bodies are bounded and type-checked', async () => {
    const big = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m/predict',
      headers: { ...headersFor('predict'), 'content-type': 'application/json' },
      payload: JSON.stringify({ instances: Array.from({ length: 500 }, () => ({ x: [1, 2] })) }),
    });
    assert.equal(big.statusCode, 413);
    assert.equal(big.json().code, 'body-too-large');
    assert.equal(big.json().limit, 4096);
    const png = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m/predict',
      headers: { ...headersFor('predict'), 'content-type': 'image/png' },
      payload: Buffer.from('\x89PNG not really'),
    });
    assert.equal(png.statusCode, 415);
    const xml = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m/predict',
      headers: { ...headersFor('predict'), 'content-type': 'application/xml' },
      payload: '<a/>',
    });
    assert.equal(xml.statusCode, 415);
    // An oversized body without a key is refused before it is read: 401, not 413.
    const anon = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m/predict',
      headers: { 'content-type': 'application/json' },
      payload: 'x'.repeat(10_000),
    });
    assert.equal(anon.statusCode, 401);
  });
});

describe('client address behind a proxy', () => {
  test('with auth.trustProxyHops the per-address limit counts each forwarded client, not the proxy', async () => {
    const t = await startRepoServer(
      [{ name: 'm', version: '1.0.0', files: biasModel(0) }],
      {},
      { 'auth.rateLimit.ipMax': 2, 'auth.trustProxyHops': 1 },
    );
    try {
      const call = (client: string) =>
        t.server.app.inject({ url: '/v1/models', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': client } });
      assert.deepEqual(
        [
          (await call('203.0.113.7')).statusCode,
          (await call('203.0.113.7')).statusCode,
          (await call('203.0.113.7')).statusCode,
        ],
        [200, 200, 429],
      );
      assert.equal((await call('203.0.113.8')).statusCode, 200);
    } finally {
      await t.close();
    }
  });
});

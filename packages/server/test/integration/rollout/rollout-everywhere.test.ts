// Canary routing, deprecation and shadow copies on every route that addresses a model beyond v1
// predict: job submission, the WebSocket audio stream, the OpenAI-compatible API and v2 infer.
// Real servers over real models (the bias and threshold fixtures, Silero VAD, the tiny decoder).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import WebSocket from 'ws';
import type { LightMyRequestResponse } from 'fastify';
import {
  biasModel,
  softmaxYes,
  startRepoServer,
  thresholdClassifier,
  type RepoServer,
  tinyGenerativeModel,
  type ModelVersionFiles,
} from '@ferry/test-kit';
import { canaryBucket } from '../../rollout/rollout-manager.js';
import { hashKey } from '../../auth/keys.js';

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const waitFor = async (cond: () => boolean | Promise<boolean>, what: string, ms = 60_000) => {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};
/** Runs `fn` over 0..n-1, `width` at a time. */
async function inBatches<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += width)
    out.push(...(await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => fn(i + j)))));
  return out;
}
const CLIENTS = 2000;
const instances_ = { instances: [{ x: [2, 1] }] };
const WEIGHT = 20;
/** Checks the share against the weight and each client's arm against the documented bucket function. */
function checkSplit(model: string, arms: Array<{ client: string; canary: boolean }>): number {
  const canary = arms.filter((a) => a.canary).length;
  const share = (canary / arms.length) * 100;
  assert.ok(Math.abs(share - WEIGHT) <= 3, `canary share ${share}%`);
  for (const a of arms) assert.equal(a.canary, canaryBucket(model, a.client) < WEIGHT * 100, a.client);
  return canary;
}
const onCanary = (model: string) =>
  Array.from({ length: 500 }, (_, i) => `pin-${i}`).find((c) => canaryBucket(model, c) < WEIGHT * 100)!;
const problem = (r: LightMyRequestResponse) => {
  assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
  return r.json();
};

describe('jobs: canary, deprecation and shadow at submission', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer(
      [
        { name: 'm', version: '1.0.0', files: biasModel(0) },
        { name: 'm', version: '1.1.0', files: biasModel(10) },
        { name: 'd', version: '1.0.0', files: biasModel(1) },
        { name: 'd', version: '1.1.0', files: biasModel(1.5) },
        { name: 'd', version: '2.0.0', files: biasModel(2) },
        { name: 'cj', version: '1.0.0', files: thresholdClassifier(0) },
        { name: 'cj', version: '1.1.0', files: thresholdClassifier(0.5) },
      ],
      {
        m: `stable: 1.0.0\ncanary: { version: 1.1.0, weight: ${WEIGHT} }\n`,
        d: 'stable: 2.0.0\ndeprecated:\n  "1.0.0": { sunset: 2020-01-01 }\n  "1.1.0": { since: 2026-10-01, sunset: 2099-12-31, successor: 2.0.0 }\n',
        cj: 'stable: 1.0.0\nshadow: { version: 1.1.0, sample: 1 }\n',
      },
      { 'jobs.pollIntervalMs': 20, 'jobs.concurrency': 8 },
    );
  });
  after(() => t.close());
  const submit = (url: string, client: string, instances: unknown[] = [{ x: [2, 1] }]) =>
    t.server.app.inject({ method: 'POST', url, headers: { 'ferry-client-id': client }, payload: { instances } });
  const job = async (id: string) => (await t.server.app.inject({ url: `/v1/jobs/${id}` })).json();

  test(`${CLIENTS} clients: the job records the routed version and runs it`, async () => {
    const rs = await inBatches(CLIENTS, 50, (i) => submit('/v1/models/m/jobs', `user-${i}`));
    const arms = rs.map((r, i) => {
      assert.equal(r.statusCode, 202, r.body);
      const doc = r.json();
      assert.equal(r.headers['ferry-model-version'], doc.version);
      assert.equal(r.headers['ferry-rollout'], doc.version === '1.1.0' ? 'canary' : 'stable');
      return { client: `user-${i}`, canary: doc.version === '1.1.0', id: doc.id as string };
    });
    const canary = checkSplit('m', arms);
    assert.deepEqual(t.server.rollout.status('m').canary?.requests, { stable: CLIENTS - canary, canary });
    // The recorded version is what runs: y = 0.5·2 + 1 + bias (10 on the canary).
    for (const a of arms.slice(0, 60)) {
      await waitFor(async () => (await job(a.id)).state === 'completed', `job ${a.id}`);
      close((await job(a.id)).result.predictions[0].value, a.canary ? 12 : 2);
    }
  });

  test('a bad Ferry-Client-Id is a 400 naming the header; nothing is queued', async () => {
    const r = await submit('/v1/models/m/jobs', 'x'.repeat(300));
    assert.equal(r.statusCode, 400);
    assert.equal(problem(r).errors[0].pointer, '/headers/ferry-client-id');
  });

  test('one client keeps its arm; a pinned job is never re-routed', async () => {
    for (const client of ['alice', 'bob', 'carol']) {
      const versions = new Set(
        (await inBatches(8, 8, () => submit('/v1/models/m/jobs', client))).map((r) => r.json().version),
      );
      assert.equal(versions.size, 1, client);
    }
    const c = onCanary('m');
    assert.equal((await submit('/v1/models/m/jobs', c)).json().version, '1.1.0');
    for (const url of ['/v1/models/m/versions/1.0.0/jobs', '/v1/models/m@1.0/jobs', '/v1/models/m@stable/jobs']) {
      const r = await submit(url, c);
      assert.equal(r.statusCode, 202, url);
      assert.equal(r.json().version, '1.0.0', url);
      assert.equal(r.headers['ferry-rollout'], undefined, url);
    }
  });

  test("a deprecated version's 202 carries Deprecation, Sunset and Link; a retired one is a 410 at submission", async () => {
    const r = await submit('/v1/models/d@1.1/jobs', 'x');
    assert.equal(r.statusCode, 202);
    assert.equal(r.headers.deprecation, `@${Date.UTC(2026, 9, 1) / 1000}`);
    assert.equal(r.headers.sunset, 'Thu, 31 Dec 2099 00:00:00 GMT');
    assert.equal(r.headers.link, '</v1/models/d/versions/2.0.0>; rel="successor-version"');
    assert.equal((await submit('/v1/models/d/jobs', 'x')).headers.deprecation, undefined);
    // The same headers on v1 predict answered as Server-Sent Events (a hijacked reply).
    const sse = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/d@1.1/predict',
      headers: { accept: 'text/event-stream' },
      payload: instances_,
    });
    assert.equal(sse.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(sse.headers.sunset, 'Thu, 31 Dec 2099 00:00:00 GMT');
    assert.equal(sse.headers.link, '</v1/models/d/versions/2.0.0>; rel="successor-version"');
    assert.match(sse.body, /event: done/);
    const before = (await t.server.app.inject({ url: '/v1/jobs?model=d&limit=1000' })).json().jobs.length;
    for (const url of ['/v1/models/d/versions/1.0.0/jobs', '/v1/models/d@1.0.0/jobs']) {
      const gone = await submit(url, 'x');
      assert.equal(gone.statusCode, 410, url);
      const p = problem(gone);
      assert.equal(p.code, 'version-retired');
      assert.equal(p.successor, '2.0.0');
    }
    // Refused before anything was queued.
    assert.equal((await t.server.app.inject({ url: '/v1/jobs?model=d&limit=1000' })).json().jobs.length, before);
  });

  test('a retried submission with an Idempotency-Key replays its job even when the canary weight moved its client', async () => {
    // A client on the stable arm at weight 20 that a weight of 60 moves to the canary.
    const client = Array.from({ length: 500 }, (_, i) => `idem-${i}`).find(
      (c) => canaryBucket('m', c) >= 2000 && canaryBucket('m', c) < 6000,
    )!;
    const send = () =>
      t.server.app.inject({
        method: 'POST',
        url: '/v1/models/m/jobs',
        headers: { 'ferry-client-id': client, 'idempotency-key': `k-${client}` },
        payload: instances_,
      });
    const first = await send();
    assert.equal(first.json().version, '1.0.0');
    await t.writeAliases('m', 'stable: 1.0.0\ncanary: { version: 1.1.0, weight: 60 }\n');
    try {
      assert.deepEqual((await t.server.manager.reloadRepository()).failed, []);
      const fresh = await submit('/v1/models/m/jobs', client);
      assert.equal(fresh.json().version, '1.1.0'); // the client's arm did move
      const retry = await send();
      assert.equal(retry.statusCode, 202, retry.body);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.equal(retry.json().id, first.json().id);
      assert.equal(retry.json().version, '1.0.0');
    } finally {
      await t.writeAliases('m', `stable: 1.0.0\ncanary: { version: 1.1.0, weight: ${WEIGHT} }\n`);
      await t.server.manager.reloadRepository();
    }
  });

  test('a completed job is compared on the shadow, off its path: agreement and differences as the versions imply', async () => {
    const xs = Array.from({ length: 40 }, (_, i) => -1 + i * 0.05 + 0.025);
    const r = await submit(
      '/v1/models/cj/jobs',
      'x',
      xs.map((score) => ({ score })),
    );
    assert.equal(r.statusCode, 202);
    const id = r.json().id as string;
    await waitFor(async () => (await job(id)).state === 'completed', 'the shadowed job');
    const done = await job(id);
    close(done.result.predictions[5].scores.yes, softmaxYes(xs[5]!, 0));
    await waitFor(() => t.server.rollout.status('cj').shadow?.comparedInstances === 40, 'the shadow comparison');
    const s = t.server.rollout.status('cj').shadow!;
    assert.equal(s.sampledRequests, 1);
    assert.deepEqual(s.sampledBySource, { predict: 0, infer: 0, jobs: 1 });
    assert.equal(s.errors, 0);
    close(s.labelAgreement!, (40 - xs.filter((x) => x > 0 && x <= 0.5).length) / 40, 1e-9);
    const diffs = xs.map((x) => Math.abs(softmaxYes(x, 0) - softmaxYes(x, 0.5)));
    close(s.scoreDifference!.max, Math.max(...diffs), 1e-5);
  });
});

describe('v2 infer: shadow copies', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer(
      [
        { name: 'c', version: '1.0.0', files: thresholdClassifier(0) },
        { name: 'c', version: '1.1.0', files: thresholdClassifier(0.5) },
        { name: 'r', version: '1.0.0', files: biasModel(0) },
        { name: 'r', version: '1.0.1', files: biasModel(0.25) },
      ],
      { c: 'stable: 1.0.0\nshadow: { version: 1.1.0, sample: 1 }\n', r: 'stable: 1.0.0\nshadow: 1.0.1\n' },
    );
  });
  after(() => t.close());

  test('feature columns: label agreement (argmax) and score differences equal what the versions imply', async () => {
    const xs = Array.from({ length: 40 }, (_, i) => -1 + i * 0.05 + 0.025);
    for (let i = 0; i < xs.length; i += 8) {
      const r = await t.server.app.inject({
        method: 'POST',
        url: '/v2/models/c/infer',
        payload: { inputs: [{ name: 'score', shape: [8], datatype: 'FP32', data: xs.slice(i, i + 8) }] },
      });
      assert.equal(r.statusCode, 200, r.body);
      // The served answer is the stable version's own.
      close(r.json().outputs[0].data[1], softmaxYes(xs[i]!, 0));
    }
    await waitFor(() => t.server.rollout.status('c').shadow?.comparedInstances === 40, 'the v2 shadow');
    const s = (await t.server.app.inject({ url: '/v1/models/c/rollout' })).json().shadow;
    assert.equal(s.sampledRequests, 5);
    assert.deepEqual(s.sampledBySource, { predict: 0, infer: 5, jobs: 0 });
    assert.equal(s.errors, 0);
    close(s.labelAgreement, (40 - xs.filter((x) => x > 0 && x <= 0.5).length) / 40, 1e-9);
    const diffs = xs.map((x) => Math.abs(softmaxYes(x, 0) - softmaxYes(x, 0.5)));
    close(s.scoreDifference.max, Math.max(...diffs), 1e-5);
    close(s.scoreDifference.mean, diffs.reduce((a, b) => a + b, 0) / diffs.length, 1e-5);
    assert.match(
      (await t.server.app.inject({ url: '/metrics' })).body,
      /ferry_shadow_requests_total\{model="c",version="1.1.0",result="compared"\} 5/,
    );
  });

  test('raw tensors: the difference is exactly the bias difference, binary requests included', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await t.server.app.inject({
        method: 'POST',
        url: '/v2/models/r/infer',
        payload: { inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: [i, 1, 1, i] }] },
      });
      assert.equal(r.statusCode, 200, r.body);
      close(r.json().outputs[0].data[0], 0.5 * i + 1);
    }
    await waitFor(() => t.server.rollout.status('r').shadow?.comparedInstances === 8, 'the raw-tensor shadow');
    const s = t.server.rollout.status('r').shadow!;
    assert.equal(s.labelAgreement, null);
    close(s.scoreDifference!.p50, 0.25, 1e-6);
    close(s.scoreDifference!.max, 0.25, 1e-6);
  });
});

const SILERO = fileURLToPath(new URL('../../../../../models/silero-vad/4.0.0/', import.meta.url));
function silero(): ModelVersionFiles {
  const {
    name: _n,
    version: _v,
    ...manifest
  } = parse(readFileSync(`${SILERO}ferry.yaml`, 'utf8')) as Record<string, unknown>;
  return { onnx: readFileSync(`${SILERO}model.onnx`), manifest: manifest as ModelVersionFiles['manifest'] };
}

interface Handshake {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  ready?: { version: string };
  body?: string;
}
/** Opens a stream, returns the upgrade answer and the first (ready) message, then closes. */
function handshake(url: string, headers: Record<string, string>): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['ferry.v1'], { headers });
    let upgrade: Handshake['headers'] = {};
    ws.on('upgrade', (res) => {
      upgrade = res.headers;
    });
    ws.on('message', (data) => {
      ws.close();
      resolve({ status: 101, headers: upgrade, ready: JSON.parse(String(data)) });
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += String(d);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.on('error', reject);
  });
}

describe('WebSocket audio stream: canary and deprecation before the upgrade', () => {
  let t: RepoServer;
  let base: string;
  before(async () => {
    const files = silero();
    t = await startRepoServer(
      ['4.0.0', '4.1.0', '4.2.0', '4.3.0'].map((version) => ({ name: 'vad', version, files })),
      {
        vad: `stable: 4.2.0\ncanary: { version: 4.3.0, weight: ${WEIGHT} }\ndeprecated:\n  "4.0.0": { sunset: 2020-01-01 }\n  "4.1.0": { since: 2026-10-01, sunset: 2099-12-31, successor: 4.2.0 }\n`,
      },
      { 'server.port': 0, 'server.host': '127.0.0.1' },
    );
    base = (await t.server.listen()).url.replace(/^http/, 'ws');
  });
  after(() => t.close());

  test(`${CLIENTS} clients: the 101 and the ready event name the routed version`, async () => {
    const hs = await inBatches(CLIENTS, 25, (i) =>
      handshake(`${base}/v1/models/vad/stream`, { 'ferry-client-id': `user-${i}` }),
    );
    const arms = hs.map((h, i) => {
      assert.equal(h.status, 101);
      assert.equal(h.headers['ferry-model-version'], h.ready!.version);
      assert.equal(h.headers['ferry-rollout'], h.ready!.version === '4.3.0' ? 'canary' : 'stable');
      assert.ok(['4.2.0', '4.3.0'].includes(h.ready!.version));
      return { client: `user-${i}`, canary: h.ready!.version === '4.3.0' };
    });
    checkSplit('vad', arms);
  });

  test('stickiness, pinning, deprecation headers on the 101, 410 before the upgrade', async () => {
    for (const client of ['alice', 'bob']) {
      const seen = new Set<string>();
      for (let k = 0; k < 5; k++)
        seen.add((await handshake(`${base}/v1/models/vad/stream`, { 'ferry-client-id': client })).ready!.version);
      assert.equal(seen.size, 1, client);
    }
    // Browsers cannot set headers on a WebSocket: ?clientId= picks the same arm.
    const c = onCanary('vad');
    assert.equal((await handshake(`${base}/v1/models/vad/stream?clientId=${c}`, {})).ready!.version, '4.3.0');
    const stable = Array.from({ length: 100 }, (_, i) => `s${i}`).find((x) => canaryBucket('vad', x) >= WEIGHT * 100)!;
    assert.equal((await handshake(`${base}/v1/models/vad/stream?clientId=${stable}`, {})).ready!.version, '4.2.0');
    const badId = await handshake(`${base}/v1/models/vad/stream?clientId=${'x'.repeat(300)}`, {});
    assert.equal(badId.status, 400);
    assert.equal(JSON.parse(badId.body!).errors[0].pointer, '/query/clientId');
    const pinned = await handshake(`${base}/v1/models/vad/versions/4.2.0/stream`, {
      'ferry-client-id': onCanary('vad'),
    });
    assert.equal(pinned.ready!.version, '4.2.0');
    assert.equal(pinned.headers['ferry-rollout'], undefined);
    const dep = await handshake(`${base}/v1/models/vad@4.1/stream`, {});
    assert.equal(dep.status, 101);
    assert.equal(dep.ready!.version, '4.1.0');
    assert.equal(dep.headers.deprecation, `@${Date.UTC(2026, 9, 1) / 1000}`);
    assert.equal(dep.headers.sunset, 'Thu, 31 Dec 2099 00:00:00 GMT');
    assert.equal(dep.headers.link, '</v1/models/vad/versions/4.2.0>; rel="successor-version"');
    const gone = await handshake(`${base}/v1/models/vad/versions/4.0.0/stream`, {});
    assert.equal(gone.status, 410);
    assert.equal(JSON.parse(gone.body!).code, 'version-retired');
    // No successor named: the newest version that is not deprecated.
    assert.equal(gone.headers.link, '</v1/models/vad/versions/4.3.0>; rel="successor-version"');
  });
});

describe('OpenAI-compatible API: canary on `model`, deprecation, model-limited keys', () => {
  const SECRET = 'openai-all-secret-0123456789';
  const LIMITED = 'openai-limited-secret-0123456789';
  let t: RepoServer;
  let url: string;
  const auth = { authorization: `Bearer ${SECRET}` };
  before(async () => {
    const gen = tinyGenerativeModel('chat', { contextLength: 64 }).files;
    t = await startRepoServer(
      ['0.8.0', '0.9.0', '1.0.0', '1.1.0']
        .map((version) => ({ name: 'chat', version, files: gen }))
        .concat([{ name: 'lin', version: '1.0.0', files: biasModel(0) }]),
      {
        chat: `stable: 1.0.0\ncanary: { version: 1.1.0, weight: ${WEIGHT} }\ndeprecated:\n  "0.8.0": { since: 2026-10-01, sunset: 2099-12-31, successor: 1.0.0 }\n  "0.9.0": { sunset: 2020-01-01, successor: 1.0.0 }\n`,
      },
      {
        'server.port': 0,
        'server.host': '127.0.0.1',
        'generation.maxConcurrent': 32,
        'auth.keys': [
          { id: 'all', sha256: hashKey(SECRET), scopes: ['predict'], models: [], rateLimitMax: 0 },
          { id: 'lin-only', sha256: hashKey(LIMITED), scopes: ['predict'], models: ['lin'], rateLimitMax: 0 },
        ],
      },
    );
    url = (await t.server.listen()).url;
  });
  after(() => t.close());
  const chat = (
    model: string,
    client: string,
    headers: Record<string, string> = auth,
    extra: Record<string, unknown> = {},
  ) =>
    t.server.app.inject({
      method: 'POST',
      url: '/openai/v1/chat/completions',
      headers: { ...headers, 'ferry-client-id': client },
      payload: { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, temperature: 0, ...extra },
    });

  // 2,000 completions of one token each: a decode step of the tiny model is sub-millisecond, so the full count is
  // affordable.
  test(`${CLIENTS} clients: "chat" is split sticky per client; the answer names the routed version`, async () => {
    const rs = await inBatches(CLIENTS, 16, (i) => chat('chat', `user-${i}`));
    const arms = rs.map((r, i) => {
      assert.equal(r.statusCode, 200, r.body);
      const version = r.headers['ferry-model-version'];
      assert.equal(r.json().model, `chat@${version}`);
      assert.equal(r.headers['ferry-rollout'], version === '1.1.0' ? 'canary' : 'stable');
      assert.equal(r.json().usage.completion_tokens, 1);
      return { client: `user-${i}`, canary: version === '1.1.0' };
    });
    const canary = checkSplit('chat', arms);
    assert.deepEqual(t.server.rollout.status('chat').canary?.requests, { stable: CLIENTS - canary, canary });
  });

  test('one client keeps its arm; chat@1, chat@1.0.0 and chat@stable are pinned', async () => {
    const seen = new Set<string>();
    for (let k = 0; k < 6; k++) seen.add((await chat('chat', 'alice')).headers['ferry-model-version'] as string);
    assert.equal(seen.size, 1);
    const c = onCanary('chat');
    assert.equal((await chat('chat', c)).headers['ferry-model-version'], '1.1.0');
    for (const [model, want] of [
      ['chat@1.0.0', '1.0.0'],
      ['chat@stable', '1.0.0'],
      ['chat@1.0', '1.0.0'],
      ['chat@1', '1.1.0'],
    ] as const) {
      const r = await chat(model, c);
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().model, `chat@${want}`, model);
      assert.equal(r.headers['ferry-rollout'], undefined, model);
    }
  });

  test('deprecated: headers on whole and streamed answers; retired: 410 with the OpenAI error object', async () => {
    const r = await chat('chat@0.8.0', 'x');
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers.deprecation, `@${Date.UTC(2026, 9, 1) / 1000}`);
    assert.equal(r.headers.sunset, 'Thu, 31 Dec 2099 00:00:00 GMT');
    assert.equal(r.headers.link, '</v1/models/chat/versions/1.0.0>; rel="successor-version"');
    // Streamed: the hijacked SSE response carries them too.
    const s = await fetch(`${url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'chat@0.8.0',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 2,
        stream: true,
      }),
    });
    assert.equal(s.status, 200);
    assert.equal(s.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(s.headers.get('ferry-model-version'), '0.8.0');
    assert.equal(s.headers.get('deprecation'), `@${Date.UTC(2026, 9, 1) / 1000}`);
    assert.equal(s.headers.get('sunset'), 'Thu, 31 Dec 2099 00:00:00 GMT');
    const text = await s.text();
    assert.match(text, /data: \[DONE\]/);
    const gone = await chat('chat@0.9.0', 'x');
    assert.equal(gone.statusCode, 410);
    const p = problem(gone);
    assert.equal(p.code, 'version-retired');
    assert.equal(p.error.code, 'version-retired');
    assert.equal(p.successor, '1.0.0');
  });

  test('hostile model references and client ids are 4xx problems, never 5xx', async () => {
    for (const [model, code] of [
      ['chat@nope', 'version-not-found'],
      ['chat@9', 'version-not-found'],
      ['../etc/passwd', 'model-not-found'],
      ['chat@1@2', 'version-not-found'],
      ['ghost', 'model-not-found'],
    ] as const) {
      const r = await chat(model, 'x');
      assert.equal(r.statusCode, 404, `${model}: ${r.body}`);
      assert.equal(problem(r).code, code, model);
    }
    const r = await chat('chat', 'bad id with spaces');
    assert.equal(r.statusCode, 400);
    assert.equal(problem(r).errors[0].pointer, '/headers/ferry-client-id');
  });

  test('a key limited to other models is refused (403) on /openai/v1, whatever the form of `model`', async () => {
    for (const model of ['chat', 'chat@1', 'chat@1.0.0']) {
      const r = await chat(model, 'x', { authorization: `Bearer ${LIMITED}` });
      assert.equal(r.statusCode, 403, model);
      const p = problem(r);
      assert.equal(p.code, 'forbidden');
      assert.equal(p.required, 'model:chat');
    }
    // Listing and describing: the limited key sees no generative model of others.
    const list = await t.server.app.inject({
      url: '/openai/v1/models',
      headers: { authorization: `Bearer ${LIMITED}` },
    });
    assert.deepEqual(list.json().data, []);
    assert.ok(
      (await t.server.app.inject({ url: '/openai/v1/models', headers: auth }))
        .json()
        .data.some((m: { id: string }) => m.id === 'chat'),
    );
    assert.equal(
      (await t.server.app.inject({ url: '/openai/v1/models/chat@1', headers: { authorization: `Bearer ${LIMITED}` } }))
        .statusCode,
      403,
    );
    // The same key still reaches its own model (here not generative: refused for that reason, not for access).
    const own = await chat('lin', 'x', { authorization: `Bearer ${LIMITED}` });
    assert.equal(own.statusCode, 400);
    assert.equal(own.json().code, 'model-not-generative');
  });
});

describe('SSE predict: shadow copies', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer(
      [
        { name: 's', version: '1.0.0', files: thresholdClassifier(0) },
        { name: 's', version: '1.1.0', files: thresholdClassifier(0.5) },
      ],
      { s: 'stable: 1.0.0\nshadow: { version: 1.1.0, sample: 1 }\n' },
    );
  });
  after(() => t.close());

  test('each row of an event stream is a prediction of the predict path, copied to the shadow like a JSON predict', async () => {
    const xs = Array.from({ length: 12 }, (_, i) => -1 + i * 0.15 + 0.025);
    const r = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/s/predict',
      headers: { accept: 'text/event-stream' },
      payload: { instances: xs.map((score) => ({ score })) },
    });
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /event: done\ndata: \{"model":"s","version":"1.0.0","rows":12,"errors":0\}/);
    await waitFor(() => t.server.rollout.status('s').shadow?.comparedInstances === 12, 'the SSE shadow');
    const s = (await t.server.app.inject({ url: '/v1/models/s/rollout' })).json().shadow;
    assert.equal(s.sampledRequests, 12);
    assert.deepEqual(s.sampledBySource, { predict: 12, infer: 0, jobs: 0 });
    assert.equal(s.errors, 0);
    close(s.labelAgreement, (12 - xs.filter((x) => x > 0 && x <= 0.5).length) / 12, 1e-9);
    close(s.scoreDifference.max, Math.max(...xs.map((x) => Math.abs(softmaxYes(x, 0) - softmaxYes(x, 0.5)))), 1e-5);
  });
});

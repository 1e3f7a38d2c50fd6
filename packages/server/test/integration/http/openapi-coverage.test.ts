// Every route the app registers is in /openapi.json (keys on, a generative model present, so the
// admin and /openai/v1 routes exist), and the document is valid OpenAPI 3.1. A route added without
// a schema, or one @fastify/swagger cannot place, fails here by name.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RouteOptions } from 'fastify';
import { Validator } from '@seriousme/openapi-schema-validator';
import { loadConfig } from '../../config/index.js';
import { createServer, type FerryServer } from '../../app/create-server.js';
import {
  adminHeaders,
  tempModelRepository,
  tinyClassifier,
  tinyGenerativeModel,
  withTestAdminKey,
  writeModelVersion,
} from '@ferry/test-kit';

interface Doc {
  paths: Record<string, Record<string, { summary?: string; tags?: string[] }>>;
  security?: unknown;
}

const ORIGIN = 'https://app.example';
const registered: Array<{ method: string; url: string }> = [];
let server: FerryServer;
let removeRepo: () => Promise<void>;

before(async () => {
  const repo = await tempModelRepository();
  removeRepo = () => repo.remove();
  await writeModelVersion(repo.dir, 'cls', '1.0.0', tinyClassifier());
  const gen = tinyGenerativeModel('tiny-gpt', { contextLength: 64 });
  await writeModelVersion(repo.dir, gen.name, gen.version, gen.files);
  const config = loadConfig({
    env: {},
    overrides: {
      'models.dir': repo.dir,
      'runtime.workers': 1,
      'runtime.warmupRuns': 1,
      'log.level': 'silent',
      'store.url': 'sqlite::memory:',
      'server.port': 0,
      'server.host': '127.0.0.1',
      'jobs.workers': false,
      'auth.cors.origins': [ORIGIN],
      ...withTestAdminKey(),
    },
  });
  const onRoute = (r: RouteOptions) => {
    for (const method of [r.method].flat()) registered.push({ method, url: r.url });
  };
  server = await createServer(config, { logger: false, onRoute });
  await server.loaded;
});
after(async () => {
  await server?.close();
  await removeRepo?.();
});

/** `/v1/models/:model` → `/v1/models/{model}`; `::` is Fastify's escaped literal colon. */
const openApiPath = (url: string) =>
  url
    .replace(/::/g, '\uE000')
    .replace(/:([A-Za-z0-9_]+)/g, '{$1}')
    .replace(/\uE000/g, ':');

/** swagger-ui's own routes, catch-alls (`/v1/*`, static files, CORS preflight), and automatic HEADs. */
const exempt = (method: string, url: string) =>
  url === '/docs' || url.startsWith('/docs/') || url.includes('*') || method === 'HEAD';

test('every registered route is in /openapi.json, and the document is valid OpenAPI 3.1', async () => {
  const res = await server.app.inject({ url: '/openapi.json' });
  assert.equal(res.statusCode, 200);
  const doc = res.json() as Doc;
  const routes = registered.filter((r) => !exempt(r.method, r.url));
  // The app was really seen: the surfaces this test is about are among the routes.
  const surfaces = [
    '/v1/models/:model/predict',
    '/openai/v1/chat/completions',
    '/v1/admin/repository::reload',
    '/v1/jobs/:id/events',
    '/v1/pipelines/:name/predictions::batchGet',
    '/v1/models/:model/stream',
    '/healthz',
    '/v2/models/:model/infer',
  ];
  for (const url of surfaces) {
    assert.ok(
      routes.some((r) => r.url === url),
      `registered: ${url}`,
    );
  }
  const missing = routes
    .filter((r) => !doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()])
    .map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(missing, [], `routes missing from /openapi.json: ${missing.join(', ')}`);
  for (const r of routes) {
    const op = doc.paths[openApiPath(r.url)]![r.method.toLowerCase()]!;
    assert.ok(op.summary && op.tags?.length, `${r.method} ${r.url} has a summary and a tag`);
  }
  const valid = await new Validator().validate(doc as never);
  assert.equal(valid.valid, true, JSON.stringify(valid.errors ?? null).slice(0, 1500));
});

test('the document keeps the per-model paths with contract-derived schemas and the security section', async () => {
  type Full = Doc & { components: { schemas: Record<string, unknown> } };
  const doc = (await server.app.inject({ url: '/openapi.json' })).json() as Full;
  type Op = { requestBody: { content: Record<string, { schema: { $ref: string } }> } };
  const op = doc.paths['/v1/models/cls/versions/1.0.0/predict']!.post as unknown as Op;
  const request = op.requestBody.content['application/json']!.schema.$ref;
  assert.equal(request, '#/components/schemas/cls_1.0.0_PredictRequest');
  const described = (await server.app.inject({ url: '/v1/models/cls/versions/1.0.0', headers: adminHeaders })).json();
  assert.deepEqual(doc.components.schemas['cls_1.0.0_PredictRequest'], described.schemas.request);
  assert.ok(doc.components.schemas.Problem, 'the shared Problem schema');
  assert.deepEqual(doc.security, [{ bearer: [] }]);
  // /docs reads the same document.
  const ui = (await server.app.inject({ url: '/docs/json' })).json() as Doc;
  assert.ok(ui.paths['/v1/models/cls/versions/1.0.0/predict'], '/docs/json has the per-model paths');
  assert.equal((await server.app.inject({ url: '/docs/' })).statusCode, 200);
});

test("schemas do not validate: a bad body gets the route's own problem+json naming the field", async () => {
  const url = '/v1/pipelines/none/predictions:batchGet';
  const r = await server.app.inject({ method: 'POST', url, headers: adminHeaders, payload: { keys: 'x' } });
  assert.equal(r.statusCode, 400, r.body);
  assert.deepEqual(r.json().errors, [{ pointer: '/keys', reason: 'expected an array of keys' }]);
  const jobs = await server.app.inject({ method: 'GET', url: '/v1/jobs?limit=abc', headers: adminHeaders });
  assert.equal(jobs.statusCode, 400);
  assert.equal(jobs.headers['content-type'], 'application/problem+json; charset=utf-8');
  assert.deepEqual(jobs.json().errors, [{ pointer: '/query/limit', reason: 'expected a whole number from 1 to 1000' }]);
});

test("the SSE writer carries the reply's headers: an OpenAI stream has CORS, request id, version", async () => {
  // Over a socket: a generation whose request closes (as inject's does) is cancelled as a disconnect.
  const { url } = await server.listen();
  const r = await fetch(`${url}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { ...adminHeaders, origin: ORIGIN, 'x-request-id': 'sse-req-1', 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'tiny-gpt',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
      stream: true,
    }),
  });
  const body = await r.text();
  assert.equal(r.status, 200, body);
  assert.match(String(r.headers.get('content-type')), /^text\/event-stream/);
  assert.equal(r.headers.get('access-control-allow-origin'), ORIGIN);
  assert.equal(r.headers.get('x-request-id'), 'sse-req-1');
  assert.equal(r.headers.get('ferry-model-version'), '1.0.0');
  assert.match(body, /data: \[DONE\]\n\n$/);
});

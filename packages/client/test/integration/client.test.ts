// @ferry/client against a real Ferry server (real models, real HTTP on a port). Failure modes the
// server does not produce on demand (a 503 with Retry-After, a hang, a refused connection) come from a
// small fault-injecting proxy in front of the real server, never from a fake Ferry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, type TestServer, tinyClassifier, type ClassifierInstance } from '@ferry/test-kit';
import {
  AbortedError,
  ClientTimeoutError,
  createClient,
  InvalidInputError,
  NetworkError,
  NotFoundError,
  RateLimitedError,
  UnavailableError,
  ConflictError,
  GoneError,
  parseRetryAfter,
  parseSse,
  type FerryClient,
  type ClassificationPrediction,
} from '@ferry/client';

const cls = tinyClassifier();
const near = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

type Fault = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Forwards to the real server unless the current fault handles the request. */
async function faultProxy(
  target: string,
): Promise<{ url: string; fault: Fault | undefined; hits: number[]; close(): Promise<void> }> {
  const state = { fault: undefined as Fault | undefined, hits: [] as number[] };
  const server: Server = createServer(async (req, res) => {
    state.hits.push(Date.now());
    if (state.fault?.(req, res)) return;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers = Object.fromEntries(
      Object.entries(req.headers)
        .filter(([k]) => k !== 'host' && k !== 'content-length')
        .map(([k, v]) => [k, String(v)]),
    );
    const r = await fetch(`${target}${req.url}`, {
      method: req.method!,
      headers,
      ...(chunks.length && { body: Buffer.concat(chunks) }),
      redirect: 'manual',
    });
    res.writeHead(
      r.status,
      Object.fromEntries(
        [...r.headers.entries()].filter(
          ([k]) => k !== 'content-encoding' && k !== 'transfer-encoding' && k !== 'content-length',
        ),
      ),
    );
    res.end(Buffer.from(await r.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get fault() {
      return state.fault;
    },
    set fault(f: Fault | undefined) {
      state.fault = f;
    },
    get hits() {
      return state.hits;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}

const problem = (res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/problem+json', ...headers });
  res.end(
    JSON.stringify({
      type: `https://ferry.dev/problems/${code}`,
      title: code,
      status,
      detail: `injected ${code}`,
      code,
      retryable: true,
    }),
  );
  return true;
};

describe('@ferry/client against a real Ferry server', () => {
  let t: TestServer;
  let base: string;
  let proxy: Awaited<ReturnType<typeof faultProxy>>;
  let client: FerryClient;
  before(async () => {
    t = await startTestServer(
      [
        { name: 'cls', version: '1.0.0', files: cls },
        { name: 'cls', version: '2.0.0', files: cls },
      ],
      { 'server.port': 0, 'server.host': '127.0.0.1', 'web.timeseriesIntervalSeconds': 0 },
    );
    base = (await t.server.listen()).url;
    proxy = await faultProxy(base);
    client = createClient({ baseUrl: proxy.url, retry: { baseDelayMs: 10 } });
  });
  after(async () => {
    await proxy.close();
    await t.close();
  });

  test("predicts with the server's numbers, typed per model, with metadata", async () => {
    const r = await client.predict('cls', [cls.example, { ...cls.example, color: 'blue', member: false }]);
    assert.equal(r.model, 'cls');
    assert.equal(r.version, '2.0.0');
    assert.equal(r.predictions.length, 2);
    const p = r.predictions[0] as ClassificationPrediction;
    const ref = cls.reference(cls.example);
    near(p.scores.no!, ref[0]!);
    near(p.scores.yes!, ref[1]!);
    assert.equal(p.label, ref[1]! > ref[0]! ? 'yes' : 'no');
    assert.equal(r.fallback, undefined);
    assert.ok(r.latencyMs > 0);

    const one = await client.model('cls@1').predict(cls.example);
    assert.equal(one.$meta.version, '1.0.0');
    near((one as ClassificationPrediction).scores.yes!, ref[1]!);
    const pinned = await client.predict('cls', [cls.example], { version: '1.0.0' });
    assert.equal(pinned.version, '1.0.0');
  });

  test('problem+json comes back as the typed error class of its code, with field pointers', async () => {
    const bad = await client
      .predict('cls', [{ ...cls.example, amount: 'lots' } as unknown as ClassifierInstance])
      .catch((e: unknown) => e);
    assert.ok(bad instanceof InvalidInputError, String(bad));
    assert.equal(bad.code, 'invalid-input');
    assert.equal(bad.status, 400);
    assert.ok(
      bad.errors.some((i) => i.pointer === '/instances/0/amount'),
      JSON.stringify(bad.errors),
    );
    assert.ok(bad.requestId, 'request id from the x-request-id header');

    const missing = await client.predict('nope', [{}]).catch((e: unknown) => e);
    assert.ok(missing instanceof NotFoundError);
    assert.equal(missing.code, 'model-not-found');
    assert.deepEqual(missing.problem?.available, ['cls']);
    const version = await client.models.get('cls', { version: '7' }).catch((e: unknown) => e);
    assert.ok(version instanceof NotFoundError);
    assert.equal(version.code, 'version-not-found');
  });

  test('lists and describes models; downloads the artifact and its contract', async () => {
    const models = await client.models.list();
    assert.deepEqual(
      models.map((m) => [m.name, m.defaultVersion]),
      [['cls', '2.0.0']],
    );
    const d = await client.models.get('cls');
    assert.deepEqual(
      d.contract.inputs.map((f) => f.name),
      ['amount', 'items', 'member', 'color'],
    );
    const meta = await client.models.artifactContract('cls', '1');
    assert.equal(meta.version, '1.0.0', 'a major is redirected to its newest exact version');
    const bytes = new Uint8Array(await client.models.artifact('cls', '1.0.0'));
    assert.equal(bytes.length, meta.artifact.bytes);
    assert.deepEqual(Buffer.from(bytes), Buffer.from(cls.onnx));
  });

  test('retries 503 and 429, waiting as long as Retry-After says', async () => {
    let n = 0;
    proxy.hits.length = 0;
    proxy.fault = (req, res) =>
      req.url!.includes('/predict') && n++ < 2
        ? problem(res, n === 1 ? 503 : 429, n === 1 ? 'server-overloaded' : 'rate-limited', { 'retry-after': '1' })
        : false;
    const r = await client.predict('cls', [cls.example]);
    assert.equal(r.version, '2.0.0');
    assert.equal(proxy.hits.length, 3);
    assert.ok(
      proxy.hits[1]! - proxy.hits[0]! >= 950,
      `waited ${proxy.hits[1]! - proxy.hits[0]!} ms after Retry-After: 1`,
    );
    assert.ok(proxy.hits[2]! - proxy.hits[1]! >= 950);

    // Retries run out: the last error is thrown, typed, with Retry-After in ms.
    proxy.fault = (_req, res) => problem(res, 429, 'rate-limited', { 'retry-after': '0' });
    const e = await client.predict('cls', [cls.example], { retry: { retries: 1 } }).catch((x: unknown) => x);
    assert.ok(e instanceof RateLimitedError, String(e));
    assert.ok(e instanceof UnavailableError);
    assert.equal(e.retryAfterMs, 0);
    // A 400 is never retried.
    proxy.hits.length = 0;
    proxy.fault = undefined;
    await client.predict('cls', [{}] as unknown as ClassifierInstance[]).catch(() => undefined);
    assert.equal(proxy.hits.length, 1);
  });

  test('per-call timeout and abort; a fallback answers when the server is slow or unreachable, flagged', async () => {
    proxy.fault = (req) => req.url!.includes('/predict'); // swallow: never answers
    const slow = await client.predict('cls', [cls.example], { timeoutMs: 200 }).catch((e: unknown) => e);
    assert.ok(slow instanceof ClientTimeoutError, String(slow));

    const fb = await client.predict('cls', [cls.example], {
      timeoutMs: 200,
      fallback: [{ label: 'no', scores: { no: 1, yes: 0 } }],
    });
    assert.deepEqual(fb.fallback, { source: 'client', reason: 'client-timeout' });
    assert.equal((fb.predictions[0] as ClassificationPrediction).label, 'no');

    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    const aborted = await client
      .predict('cls', [cls.example], { signal: ctl.signal, fallback: [] })
      .catch((e: unknown) => e);
    assert.ok(aborted instanceof AbortedError, "an abort is the caller's choice: no fallback");
    proxy.fault = undefined;

    // Nothing listens on the proxy's port once it is closed.
    const dead = await faultProxy(base);
    await dead.close();
    const offline = createClient({ baseUrl: dead.url, retry: { retries: 0 } });
    const e = await offline.predict('cls', [cls.example]).catch((x: unknown) => x);
    assert.ok(e instanceof NetworkError, String(e));
    const seen: unknown[] = [];
    const r = await offline.predict('cls', [cls.example], {
      fallback: (err, instances) => {
        seen.push(err.code, instances.length);
        return [{ label: 'no', scores: { no: 0.5, yes: 0.5 } }];
      },
    });
    assert.deepEqual(seen, ['network', 1]);
    assert.equal(r.fallback?.source, 'client');
    assert.equal(r.fallback?.reason, 'network');
  });

  test('the edge-unsupported and unknown codes still map to classes', async () => {
    proxy.fault = (_req, res) => problem(res, 409, 'edge-unsupported');
    const e = await client.models.artifactContract('cls', '1.0.0').catch((x: unknown) => x);
    assert.ok(e instanceof ConflictError);
    proxy.fault = (_req, res) => problem(res, 410, 'some-future-code');
    const gone = await client.models.get('cls').catch((x: unknown) => x);
    assert.ok(gone instanceof GoneError, 'an unknown code falls back to its status family');
    assert.ok(gone instanceof NotFoundError);
    assert.equal((gone as NotFoundError).code, 'some-future-code');
    proxy.fault = undefined;
  });

  test('jobs: submit, follow progress over SSE to the end, read, list, idempotency, typed errors', async () => {
    const seen: string[] = [];
    const job = await client.jobs.submit<{ predictions: ClassificationPrediction[] }>('cls', [
      cls.example,
      cls.example,
    ]);
    assert.ok(job.id);
    const done = await client.jobs.wait<{ predictions: ClassificationPrediction[] }>(job.id, {
      onProgress: (j) => seen.push(j.state),
    });
    assert.equal(done.state, 'completed');
    assert.equal(seen.at(-1), 'completed');
    assert.equal(done.result!.predictions.length, 2);
    near(done.result!.predictions[0]!.scores.yes!, cls.reference(cls.example)[1]!);
    assert.equal((await client.jobs.get(job.id)).state, 'completed');
    const listed = await client.jobs.list({ model: 'cls' });
    assert.ok(listed.jobs.some((j) => j.id === job.id));

    const a = await client.jobs.submit('cls', [cls.example], { idempotencyKey: 'client-test-1' });
    const b = await client.jobs.submit('cls', [cls.example], { idempotencyKey: 'client-test-1' });
    assert.equal(a.id, b.id, 'a retried submission with the same Idempotency-Key returns the first job');
    await client.jobs.wait(a.id);
    const notCancellable = await client.jobs.cancel(a.id).catch((e: unknown) => e);
    assert.ok(notCancellable instanceof ConflictError, String(notCancellable));
    assert.equal(notCancellable.code, 'job-not-cancellable');
    const missing = await client.jobs.get('no-such-job').catch((e: unknown) => e);
    assert.ok(missing instanceof NotFoundError);
    assert.equal(missing.code, 'job-not-found');
    const invalid = await client.jobs.submit('cls', [{ amount: 'x' }]).catch((e: unknown) => e);
    assert.ok(invalid instanceof InvalidInputError, 'validated at submission');
  });

  test('reads the monitoring time series the dashboard charts', async () => {
    await t.server.timeseries.sample();
    const ts = await client.monitoring.timeseries();
    assert.ok(ts.points.length >= 1);
    assert.ok(ts.points.some((p) => p.requests > 0));
    assert.ok(ts.models.includes('cls'));
  });
});

test('Retry-After in seconds or as an HTTP date', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(new Date(10_000 + 5000).toUTCString(), 10_000), 5000);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(null), undefined);
});

test('SSE parsing survives events split across chunks, CRLF, comments and multi-line data', async () => {
  const text = ': hello\r\nevent: progress\r\ndata: {"a":\r\ndata: 1}\r\nid: 7\r\n\r\ndata: [DONE]\n\n';
  const bytes = new TextEncoder().encode(text);
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += 5) c.enqueue(bytes.slice(i, i + 5));
      c.close();
    },
  });
  const events = [];
  for await (const e of parseSse(stream)) events.push(e);
  assert.deepEqual(events, [
    { event: 'progress', data: '{"a":\n1}', id: '7' },
    { event: 'message', data: '[DONE]', id: '7' },
  ]);
});

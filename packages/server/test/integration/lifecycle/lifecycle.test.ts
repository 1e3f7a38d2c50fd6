// Graceful shutdown: the drain registry in process, then a real `ferry serve` child under load
// receiving SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Lifecycle } from '../../lifecycle/lifecycle.js';
import {
  startChildServer,
  startTestServer,
  slowModel,
  tempModelRepository,
  tinyClassifier,
  writeModelVersion,
} from '@ferry/test-kit';

const cls = tinyClassifier();

test('drain handlers: unique names, run once concurrently, failures reported, context carries grace and deadline', async () => {
  const lc = new Lifecycle({ drainDelayMs: 0, streamGraceMs: 1234, deadlineMs: 5000 });
  const seen: string[] = [];
  lc.onDrain('a', async (ctx) => {
    seen.push(`a:${ctx.reason}:${ctx.streamGraceMs}`);
    await new Promise((r) => setTimeout(r, 50));
  });
  lc.onDrain('b', () => {
    throw new Error('boom');
  });
  const off = lc.onDrain('c', () => {
    seen.push('c');
  });
  off();
  assert.throws(() => lc.onDrain('a', () => undefined), /already registered/);
  let notified = '';
  lc.on('draining', (r) => {
    notified = r;
  });
  assert.equal(lc.draining, false);
  lc.beginDrain('SIGTERM');
  assert.equal(lc.draining, true);
  assert.equal(notified, 'SIGTERM');
  const [r1, r2] = await Promise.all([lc.runHandlers(), lc.runHandlers()]);
  assert.equal(r1, r2);
  assert.deepEqual(seen, ['a:SIGTERM:1234']);
  assert.deepEqual(
    r1.map((r) => [r.name, r.ok, r.error]),
    [
      ['streams', true, undefined],
      ['a', true, undefined],
      ['b', false, 'boom'],
    ],
  );
  assert.ok(r1[1]!.ms >= 40);
});

test('in process: draining turns /readyz and /v2/health/ready to 503, other routes keep serving with Connection: close, close runs handlers beside in-flight requests', async () => {
  const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: cls }]);
  try {
    const { app, lifecycle } = t.server;
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
    let handlerRan = false;
    lifecycle.onDrain('test', async (ctx) => {
      handlerRan = ctx.reason === 'test-drain';
    });
    lifecycle.beginDrain('test-drain');
    const ready = await app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(ready.json(), { ready: false, draining: true, reason: 'test-drain' });
    assert.equal((await app.inject({ url: '/v2/health/ready' })).statusCode, 503);
    assert.equal(
      (await app.inject({ url: '/healthz' })).statusCode,
      200,
      'liveness stays true: the pod must not be restarted while draining',
    );
    const p = await app.inject({
      method: 'POST',
      url: '/v1/models/cls/predict',
      payload: { instances: [cls.example] },
    });
    assert.equal(p.statusCode, 200);
    assert.equal(p.headers.connection, 'close');
    assert.ok(Math.abs(p.json().predictions[0].scores.yes - cls.reference(cls.example)[1]!) < 1e-5);
    const metrics = (await app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /^ferry_draining 1$/m);
    assert.match(metrics, /^ferry_http_in_flight_requests 1$/m, 'the /metrics request itself is in flight');
    await t.close();
    assert.equal(handlerRan, true);
  } finally {
    await t.close();
  }
});

test('streams: one that ends within the grace is left alone, one still open after it is closed with the reason, while HTTP close waits for it', async () => {
  const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: cls }], { 'lifecycle.streamGraceMs': 300 });
  const { app, lifecycle } = t.server;
  // A long-lived streaming response (as SSE is): it ends only when its close function is called, or after 200 ms for
  // the short one.
  const closed: Array<{ id: string; reason: string; at: number }> = [];
  app.get('/test/stream/:id', (req, reply) => {
    const id = (req.params as { id: string }).id;
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
    reply.raw.write('data: open\n\n');
    let untrack = () => undefined as void;
    const end = (reason: string) => {
      untrack();
      closed.push({ id, reason, at: Date.now() });
      reply.raw.end(`event: close\ndata: ${reason}\n\n`);
    };
    untrack = lifecycle.trackStream(end);
    if (id === 'short') setTimeout(() => end('done'), 200);
  });
  const { url } = await t.server.listen();
  const read = (id: string) => fetch(`${url}/test/stream/${id}`).then((r) => r.text());
  const long = read('long');
  const short = read('short');
  while (lifecycle.openStreams < 2) await new Promise((r) => setTimeout(r, 10));
  const t0 = Date.now();
  await t.close();
  const ms = Date.now() - t0;
  assert.match(await long, /event: close\ndata: server shutting down \(close\)/);
  assert.match(await short, /data: done/);
  assert.deepEqual(
    closed.map((c) => [c.id, c.reason]),
    [
      ['short', 'done'],
      ['long', 'server shutting down (close)'],
    ],
  );
  assert.ok(closed[1]!.at - t0 >= 280, `the long stream had its grace (${closed[1]!.at - t0} ms)`);
  assert.ok(ms < 5000, 'close did not wait for the deadline');
  // A stream opened after the drain is closed at once.
  let late = '';
  lifecycle.trackStream((r) => {
    late = r;
  });
  assert.equal(late, 'server shutting down (close)');
});

interface Outcome {
  status: number;
  ok: boolean;
  error?: string;
  sentAt: number;
  doneAt: number;
}

function post(port: number, path: string, body: unknown): Promise<Outcome> {
  const sentAt = Date.now();
  return new Promise((resolve) => {
    const data = JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ok: res.statusCode === 200 && text.includes('predictions'),
            sentAt,
            doneAt: Date.now(),
          }),
        );
      },
    );
    req.on('error', (e) => resolve({ status: 0, ok: false, error: e.message, sentAt, doneAt: Date.now() }));
    req.end(data);
  });
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    })
      .on('error', () => resolve(0))
      .end();
  });
}

test(
  'ferry serve under load: SIGTERM → /readyz 503 at once, every accepted request answers 200, exit 0 before the deadline',
  { timeout: 120_000 },
  async () => {
    const repo = await tempModelRepository();
    const slow = slowModel(150);
    await writeModelVersion(repo.dir, 'slow', '1.0.0', slow);
    const drainDelayMs = 1500;
    const deadlineMs = 15_000;
    const child = await startChildServer({
      args: ['--models', repo.dir, '--workers', '1'],
      env: {
        FERRY_STORE_URL: 'sqlite::memory:',
        FERRY_RUNTIME_WARMUP_RUNS: '1',
        FERRY_LIFECYCLE_DRAIN_DELAY_MS: String(drainDelayMs),
        FERRY_SERVER_SHUTDOWN_GRACE_MS: String(deadlineMs),
      },
    });
    try {
      assert.equal(await get(child.port, '/readyz'), 200);
      // Steady load: 6 clients, each sending one request after another, each request ~150 ms of inference
      // behind a single worker, so at SIGTERM several requests are queued or running.
      const outcomes: Outcome[] = [];
      let stopLoad = false;
      const clients = Array.from({ length: 6 }, async (_, c) => {
        let i = 0;
        while (!stopLoad) {
          const x = [c, i, 1, 2];
          const o = await post(child.port, '/v1/models/slow/predict', { instances: [{ x }] });
          outcomes.push(o);
          if (o.status === 0) break; // the listener is closed: a client would now go to another replica
          i++;
        }
      });
      await new Promise((r) => setTimeout(r, 1200));
      const sigAt = Date.now();
      child.proc.kill('SIGTERM');
      // Readiness is false at once, while the listener is still open (drain delay). Signal delivery
      // is asynchronous, so poll: the first 503 must come well within the drain delay.
      let readyAfter = 0;
      while (Date.now() - sigAt < drainDelayMs && (readyAfter = await get(child.port, '/readyz')) !== 503)
        await new Promise((r) => setTimeout(r, 20));
      const readyMs = Date.now() - sigAt;
      assert.equal(readyAfter, 503);
      assert.ok(readyMs < drainDelayMs, `readiness answered 503 within the drain delay (${readyMs} ms)`);
      const exit = await child.exited;
      stopLoad = true;
      await Promise.all(clients);
      const exitMs = exit.at - sigAt;
      assert.equal(exit.code, 0, 'clean exit');
      assert.ok(exitMs < deadlineMs, `exited in ${exitMs} ms, before the ${deadlineMs} ms deadline`);
      const answered = outcomes.filter((o) => o.status !== 0);
      const refused = outcomes.filter((o) => o.status === 0);
      // A request the server accepted must be answered: every non-refused request is a 200 with predictions.
      assert.deepEqual(
        answered.filter((o) => !o.ok).map((o) => o.status),
        [],
      );
      assert.ok(
        answered.filter((o) => o.sentAt >= sigAt).length > 0,
        'requests sent after SIGTERM (during the drain delay) were served',
      );
      assert.ok(
        answered.filter((o) => o.sentAt < sigAt && o.doneAt > sigAt).length > 0,
        'requests in flight at SIGTERM finished',
      );
      // A refused connection was never accepted, which a proxy retries on another replica: ECONNREFUSED once
      // the listener is closed, or ECONNRESET for a connection with no request read from it yet when the
      // listener closed (queued in the kernel's listen backlog, which Linux resets, or idle with no bytes yet;
      // seen once in CI). Both come only after the drain delay (checked below), and every request the server
      // did read was answered (checked above).
      for (const r of refused) assert.match(r.error ?? '', /ECONNREFUSED|ECONNRESET/);
      assert.ok(
        refused.every((r) => r.sentAt >= sigAt + drainDelayMs - 100),
        'no connection was refused before the drain delay ended',
      );
      const shutdownLog = child.logs.find((l) => l.msg === 'shut down cleanly');
      assert.ok(shutdownLog, 'the child logged its clean shutdown');
      console.log(
        `# graceful shutdown: ${answered.length} answered (${answered.filter((o) => o.sentAt >= sigAt).length} sent after SIGTERM), 0 failed; /readyz 503 after ${readyMs} ms; exit after ${exitMs} ms (deadline ${deadlineMs} ms)`,
      );
    } finally {
      await child.stop('SIGKILL');
      await repo.remove();
    }
  },
);

test(
  'ferry serve: a drain that cannot finish is cut at the deadline (the process kills itself)',
  { timeout: 60_000 },
  async () => {
    const repo = await tempModelRepository();
    await writeModelVersion(repo.dir, 'slow', '1.0.0', slowModel(2000));
    const child = await startChildServer({
      args: ['--models', repo.dir, '--workers', '1'],
      env: {
        FERRY_STORE_URL: 'sqlite::memory:',
        FERRY_RUNTIME_WARMUP_RUNS: '0',
        FERRY_SERVER_SHUTDOWN_GRACE_MS: '1000',
      },
    });
    try {
      // Two queued 2 s inferences behind one worker outlast a 1 s deadline.
      const pending = [
        post(child.port, '/v1/models/slow/predict', { instances: [{ x: [1, 1, 1, 1] }] }),
        post(child.port, '/v1/models/slow/predict', { instances: [{ x: [2, 2, 2, 2] }] }),
      ];
      await new Promise((r) => setTimeout(r, 300));
      const sigAt = Date.now();
      child.proc.kill('SIGTERM');
      const exit = await child.exited;
      assert.equal(
        exit.signal,
        'SIGKILL',
        `exit ${exit.code ?? exit.signal}: ${child.logs
          .slice(-3)
          .map((l) => l.msg)
          .join(' | ')}`,
      );
      assert.ok(exit.at - sigAt < 3000, `exited ${exit.at - sigAt} ms after SIGTERM`);
      assert.match(child.stderr(), /shutdown deadline \(1000 ms\) reached after SIGTERM/, 'the reason is on stderr');
      await Promise.all(pending);
    } finally {
      await child.stop('SIGKILL');
      await repo.remove();
    }
  },
);

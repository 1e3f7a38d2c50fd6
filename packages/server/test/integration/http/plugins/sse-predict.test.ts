// SSE on /predict against a real server: one `row` event per row with the model's real answer,
// then `done`; validation still a 400 before the stream; and a reader that stops reading stops the
// server from computing further rows (over a Unix socket, whose kernel buffers are small enough
// for the pause to show within a few hundred rows).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyLinearModel, startTestServer, type TestServer } from '@ferry/test-kit';

const lin = tinyLinearModel();
let ts: TestServer;
let sockDir: string;
let socketPath: string;

before(async () => {
  ts = await startTestServer(
    [
      {
        name: 'lin',
        version: '1.0.0',
        files: { onnx: lin.onnx, manifest: { ...lin.manifest, batching: { maxBatchSize: 8, maxQueueDelayUs: 500 } } },
      },
    ],
    { 'limits.maxInstances': 6000, 'streaming.maxBlockedMs': 1500 },
  );
  sockDir = mkdtempSync(join(tmpdir(), 'ferry-sse-'));
  socketPath = join(sockDir, 'ferry.sock');
  await ts.server.app.listen({ path: socketPath });
});
after(async () => {
  await ts.close();
  rmSync(sockDir, { recursive: true, force: true });
});

/**
 * The paused reader's own buffers, fixed rather than Node's default: Node 22 raised the default stream
 * highWaterMark from 16 KiB to 64 KiB, and a client that stops reading absorbs that much twice (its
 * socket and its response stream) before the kernel's buffers fill and the server sees backpressure.
 * With the default, the same server computes ~3,000 of the 5,000 rows on Node 22 (~1,600 on Node 20).
 * (Not in the request options' type; net.Socket takes it.)
 */
const SMALL_READER = { highWaterMark: 16 * 1024 };

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ x: [i, 1, -i / 2, 0.5, 3, -1, i % 7, 2] }));

function parseEvents(text: string): Array<{ event: string; id?: string; data: Record<string, unknown> }> {
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((block) => {
      const f = Object.fromEntries(
        block.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
      );
      return { event: f.event!, ...(f.id !== undefined && { id: f.id }), data: JSON.parse(f.data!) };
    });
}

test("Accept: text/event-stream → one row event per row with the model's answer, then done", async () => {
  const instances = rows(40);
  const r = await ts.server.app.inject({
    method: 'POST',
    url: '/v1/models/lin/predict',
    headers: { accept: 'text/event-stream' },
    payload: { instances },
  });
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['content-type']), /^text\/event-stream/);
  assert.equal(r.headers['ferry-model-version'], '1.0.0');
  const events = parseEvents(r.body);
  assert.equal(events.length, 41);
  assert.deepEqual(events.at(-1), { event: 'done', data: { model: 'lin', version: '1.0.0', rows: 40, errors: 0 } });
  const seen = new Set<number>();
  for (const e of events.slice(0, -1)) {
    assert.equal(e.event, 'row');
    const i = e.data.index as number;
    assert.equal(e.id, String(i));
    seen.add(i);
    const y = e.data.prediction as { value: number } | number[] | Record<string, unknown>;
    const value =
      typeof y === 'object' && y !== null && 'value' in y
        ? (y as { value: number }).value
        : Number(Object.values(y as object)[0]);
    assert.ok(Math.abs(value - lin.reference(instances[i]!)[0]!) < 1e-4, `row ${i}: ${JSON.stringify(y)}`);
  }
  assert.equal(seen.size, 40);
  // The same request without the Accept header is the usual JSON document.
  const plain = await ts.server.app.inject({
    method: 'POST',
    url: '/v1/models/lin/predict',
    payload: { instances: instances.slice(0, 2) },
  });
  assert.match(String(plain.headers['content-type']), /application\/json/);
});

test('a model without a streaming mode refuses the WebSocket upgrade with 400 not-streamable', async () => {
  const { default: WebSocket } = await import('ws');
  const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const ws = new WebSocket(`ws+unix://${socketPath}:/v1/models/lin/stream`);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    ws.on('open', () => reject(new Error('opened')));
  });
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).code, 'not-streamable');
});

test('a bad row is a 400 problem naming it before any event is sent', async () => {
  const instances: unknown[] = rows(5);
  instances[3] = { x: [1, 2, 'three', 4, 5, 6, 7, 8] };
  const r = await ts.server.app.inject({
    method: 'POST',
    url: '/v1/models/lin/predict',
    headers: { accept: 'text/event-stream' },
    payload: { instances },
  });
  assert.equal(r.statusCode, 400);
  assert.match(String(r.headers['content-type']), /application\/problem\+json/);
  assert.match(r.body, /\/instances\/3\/x/);
  const many = await ts.server.app.inject({
    method: 'POST',
    url: '/v1/models/lin/predict',
    headers: { accept: 'text/event-stream' },
    payload: { instances: rows(6001) },
  });
  assert.equal(many.statusCode, 400);
  assert.match(many.body, /too-many-instances/);
});

async function rowsInferred(): Promise<number> {
  const text = (await ts.server.app.inject({ method: 'GET', url: '/metrics' })).body;
  const m = /^ferry_batch_size_sum\{model="lin",version="1.0.0"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

test('a client that stops reading stops the computation; one blocked past maxBlockedMs is disconnected', async () => {
  const n = 5000;
  const body = JSON.stringify({ instances: rows(n) });
  const start = await rowsInferred();
  let received = 0;
  let response: import('node:http').IncomingMessage | undefined;
  const ended = new Promise<{ aborted: boolean; text: string }>((resolve) => {
    const req = request(
      {
        socketPath,
        ...SMALL_READER,
        path: '/v1/models/lin/predict',
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      },
      (res) => {
        response = res;
        res.once('data', (d: Buffer) => {
          received += d.length;
          res.pause();
        });
        let text = '';
        res.on('error', () => undefined);
        res.on('close', () => resolve({ aborted: !res.complete, text }));
        res.on('data', (d: Buffer) => {
          text += d;
        });
      },
    );
    req.end(body);
  });
  // The client read one chunk and stopped. The server fills the socket's buffers, then must wait.
  let last = -1;
  let now = await rowsInferred();
  for (let i = 0; i < 100 && now !== last; i++) {
    last = now;
    await new Promise((r) => setTimeout(r, 150));
    now = await rowsInferred();
  }
  const computed = now - start;
  assert.ok(received > 0);
  assert.ok(computed > 0 && computed < n / 2, `${computed} of ${n} rows computed while the client was not reading`);
  // Past maxBlockedMs the server drops the connection (the client sees it only once it reads again).
  const connections = () =>
    new Promise<number>((resolve) => ts.server.app.server.getConnections((_e, c) => resolve(c)));
  for (let i = 0; i < 100 && (await connections()) > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await connections(), 0);
  response!.resume();
  const r = await ended;
  assert.ok(r.aborted, 'the blocked stream was cut');
  assert.doesNotMatch(r.text, /event: done/);
  assert.ok((await rowsInferred()) - start < n / 2, 'no rows were computed for the gone client');
});

test('a reader that pauses for less than maxBlockedMs gets every row', async () => {
  const n = 3000;
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path: '/v1/models/lin/predict',
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      },
      (res) => {
        let t = '';
        // Stops reading for a while (shorter than maxBlockedMs), then reads everything.
        res.once('data', () => {
          res.pause();
          setTimeout(() => res.resume(), 600);
        });
        res.on('data', (d: Buffer) => {
          t += d;
        });
        res.on('end', () => resolve(t));
        res.on('error', reject);
      },
    );
    req.end(JSON.stringify({ instances: rows(n) }));
  });
  const events = parseEvents(text);
  assert.equal(events.filter((e) => e.event === 'row').length, n);
  assert.deepEqual(events.at(-1)!.data, { model: 'lin', version: '1.0.0', rows: n, errors: 0 });
});

// The bench's two load engines (load.ts: wrk when installed, else autocannon) against a real HTTP
// server that records every request: both send the same kind of bodies (each one valid JSON, the
// varied value within the template's jitter of its reference, no two alike), and what they report
// (2xx and 4xx/5xx counts, latencies, client CPU) agrees with what the server saw.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runJson } from '../processes.js';
import type { LoadResult, LoadSpec } from '../load.js';
import { bodyCount, bodyTemplates, modelInfo } from '../workloads.js';
import { findWrk } from '../wrk.js';

interface Seen {
  bodies: string[];
  answered2xx: number;
  answered5xx: number;
}

/** Answers 200, except every fifth request 503; keeps every body. */
async function recordingServer(): Promise<{ server: Server; url: string; seen: Seen }> {
  const seen: Seen = { bodies: [], answered2xx: 0, answered5xx: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.bodies.push(Buffer.concat(chunks).toString('utf8'));
      const fail = seen.bodies.length % 5 === 0;
      if (fail) seen.answered5xx++;
      else seen.answered2xx++;
      res.writeHead(fail ? 503 : 200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function check(t: TestContext, engine: 'wrk' | 'autocannon'): Promise<void> {
  const { server, url, seen } = await recordingServer();
  t.after(() => server.close());
  const spec: LoadSpec = {
    url,
    kind: 'predict',
    model: 'flight-delay',
    connections: 4,
    warmupSeconds: 0,
    durationSeconds: 1,
    seed: 7,
  };
  const previous = process.env.FERRY_BENCH_LOADGEN;
  process.env.FERRY_BENCH_LOADGEN = engine;
  let r: LoadResult;
  let sentBefore: number;
  try {
    // Two runs, as the suite makes one after another: the second must not repeat the first's bodies
    // (a caching server would answer them from its cache).
    await runJson<LoadResult>(`load ${engine}`, 'load.js', spec);
    sentBefore = seen.answered2xx + seen.answered5xx;
    r = await runJson<LoadResult>(`load ${engine}`, 'load.js', spec);
  } finally {
    if (previous === undefined) delete process.env.FERRY_BENCH_LOADGEN;
    else process.env.FERRY_BENCH_LOADGEN = previous;
  }
  assert.equal(r.engine, engine);
  assert.ok(r.ok > 100, `${engine}: ${r.ok} answers in a second`);
  // What the client read is what the server sent, but for the answers in flight when a run ended
  // (the second run's, and any of the first's the server read only after that client had exited).
  const sent = seen.answered2xx + seen.answered5xx - sentBefore;
  const read = r.ok + r.non2xx;
  const inFlight = 2 * spec.connections;
  assert.ok(read <= sent && sent - read <= inFlight, `${engine}: read ${read}, server sent ${sent}`);
  // Every fifth answer the server sent was a 503.
  assert.ok(Math.abs(r.non2xx - sent / 5) <= inFlight + 1, `${engine}: ${r.non2xx} non-2xx of ${sent}`);
  assert.ok(Math.abs(r.rps * r.durationS - r.ok) < 1, `${engine}: rps × duration = ok`);
  assert.equal(r.errors, 0);
  assert.ok(r.p50Ms > 0 && r.p50Ms <= r.p99Ms && r.p99Ms <= r.maxMs, `${engine}: ${JSON.stringify(r)}`);
  assert.ok(r.clientCpu > 0.05, `${engine}: the client's CPU (${r.clientCpu}) was measured`);

  // Every body is a template filled with a jittered value: valid JSON, the template's text around it,
  // the value within 1e-6 (relative) of the reference, and no two bodies alike.
  const info = modelInfo('flight-delay');
  const templates = bodyTemplates(info, bodyCount(info), 7);
  const matched = new Set<number>();
  for (const body of seen.bodies) {
    assert.equal((JSON.parse(body) as { instances: unknown[] }).instances.length, 1, body);
    // Rows may repeat in every feature but the varied one: any template around the body will do.
    const around = templates.flatMap((t, i) => (body.startsWith(t.before) && body.endsWith(t.after) ? [i] : []));
    assert.ok(around.length > 0, `${engine}: a body no template makes: ${body}`);
    const i = around.find((j) => {
      const t = templates[j]!;
      const value = Number(body.slice(t.before.length, body.length - t.after.length));
      return (
        Number.isFinite(value) &&
        value !== t.value &&
        Math.abs(value - t.value) <= Math.max(Math.abs(t.value), 1) * 1e-6 + 1e-12
      );
    });
    assert.ok(i !== undefined, `${engine}: the value is not its template's, varied by at most 1e-6: ${body}`);
    matched.add(i);
  }
  assert.equal(new Set(seen.bodies).size, seen.bodies.length, `${engine}: bodies repeated within or across runs`);
  assert.ok(matched.size > 100, `${engine}: bodies come from ${matched.size} templates`);
}

test('autocannon sends varied bodies and reports what the server answered', { timeout: 60_000 }, async (t) => {
  await check(t, 'autocannon');
});

test('wrk sends varied bodies and reports what the server answered', { timeout: 60_000 }, async (t) => {
  if (findWrk() === undefined) {
    t.skip('wrk is not installed (apt-get install wrk)');
    return;
  }
  await check(t, 'wrk');
});

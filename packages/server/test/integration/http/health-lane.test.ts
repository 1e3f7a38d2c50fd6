// The health lane (issue 20, item 3): /healthz and /readyz on server.healthPort are answered by a
// thread of their own, so they answer while the serving event loop is blocked; liveness turns 503 only
// once the loop has stalled past server.livenessMaxStallMs; readiness follows the models and the drain.
// And `ferry serve --processes 2`: two serving processes on one port, the primary answering the health
// port from both children's heartbeats, a killed child replaced, SIGTERM draining every child.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import {
  startChildServer,
  startTestServer,
  tempModelRepository,
  tinyClassifier,
  writeModelVersion,
} from '@ferry/test-kit';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Probe {
  name: string;
  status: number;
  body: Record<string, unknown>;
  atMs: number;
}

// Runs in a worker thread of the test: probes while the test's main thread (the server's loop) is blocked.
const PROBER = `
const { parentPort } = require('node:worker_threads');
const get = async (name, url) => {
  const r = await fetch(url);
  return { name, status: r.status, body: await r.json(), atMs: Date.now() };
};
parentPort.on('message', ({ lane, main }) => {
  const out = [];
  const at = (ms, name, url) => new Promise((res) => setTimeout(() => get(name, url).then((p) => { out.push(p); res(); }, (e) => { out.push({ name, status: 0, body: { error: String(e) }, atMs: Date.now() }); res(); }), ms));
  Promise.all([
    at(200, 'lane-healthz-early', lane + '/healthz'),
    at(200, 'main-healthz', main + '/healthz'),
    at(1200, 'lane-healthz-late', lane + '/healthz'),
    at(1200, 'lane-readyz-late', lane + '/readyz'),
  ]).then(() => parentPort.postMessage(out));
});
parentPort.postMessage('ready');
`;

test('health lane: probes answered while the serving loop is blocked; liveness fails only past the stall limit', async () => {
  const m = tinyClassifier();
  const ts = await startTestServer([{ name: 'cls', version: '1.0.0', files: m }], {
    'server.healthPort': 0,
    'server.livenessMaxStallMs': 600,
  });
  try {
    const addr = await ts.server.listen();
    assert.ok(addr.healthPort !== undefined && addr.healthPort !== addr.port, 'a health port of its own');
    const lane = `http://127.0.0.1:${addr.healthPort}`;
    // The lane's thread, and only it, runs favoured (nice −10) when the process may lower a nice
    // value (root here); otherwise no thread is favoured. Field 19 of a task's stat is its nice value.
    if (process.platform === 'linux') {
      const nices = readdirSync('/proc/self/task').map((tid) =>
        Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]),
      );
      const favoured = nices.filter((n) => n === -10).length;
      assert.equal(favoured, process.getuid?.() === 0 ? 1 : 0, `nice values: ${nices.join(' ')}`);
    }

    const live = await fetch(`${lane}/healthz`);
    assert.equal(live.status, 200);
    assert.equal(live.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(((await live.json()) as { status: string }).status, 'ok');
    const ready = await fetch(`${lane}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { ready: boolean }).ready, true);
    // Only the probes live there: anything else is a problem+json naming what the port serves.
    const other = await fetch(`${lane}/metrics`);
    assert.equal(other.status, 404);
    assert.equal(other.headers.get('content-type'), 'application/problem+json');
    const p = (await other.json()) as { code: string; detail: string };
    assert.equal(p.code, 'route-not-found');
    assert.match(p.detail, /\/healthz and \/readyz/);
    const post = await fetch(`${lane}/healthz`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(((await post.json()) as { code: string }).code, 'method-not-allowed');

    // Block this thread (the server's event loop) for 2 s while another thread probes both ports.
    const prober = new Worker(PROBER, { eval: true });
    await new Promise<void>((resolve) => prober.once('message', () => resolve()));
    const results = new Promise<Probe[]>((resolve) => prober.once('message', resolve));
    prober.postMessage({ lane, main: addr.url });
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      // busy: no timer, no socket, no heartbeat runs on this loop
    }
    const blockEndMs = Date.now();
    const probes = new Map((await results).map((r) => [r.name, r]));
    await prober.terminate();

    const early = probes.get('lane-healthz-early')!;
    assert.equal(early.status, 200, JSON.stringify(early));
    assert.ok(early.atMs < blockEndMs, 'the lane answered while the loop was blocked');
    const late = probes.get('lane-healthz-late')!;
    assert.equal(late.status, 503, JSON.stringify(late));
    assert.equal(late.body.status, 'stalled');
    assert.ok((late.body.loopStallMs as number) > 600, JSON.stringify(late.body));
    assert.ok(late.atMs < blockEndMs);
    const lateReady = probes.get('lane-readyz-late')!;
    assert.equal(lateReady.status, 503);
    assert.equal(lateReady.body.reason, 'event loop stalled');
    // The serving port itself could answer only once the loop was free again.
    const main = probes.get('main-healthz')!;
    assert.equal(main.status, 200);
    assert.ok(main.atMs >= blockEndMs, 'the main port answered after the block');

    // The loop beats again: live and ready.
    await sleep(200);
    const after = await fetch(`${lane}/healthz`);
    assert.equal(after.status, 200);
    const afterBody = (await after.json()) as { loopStallMs: number };
    assert.ok(afterBody.loopStallMs < 600, JSON.stringify(afterBody));
    assert.equal((await fetch(`${lane}/readyz`)).status, 200);

    // A drain turns readiness false at once (not at the next heartbeat); liveness stays 200.
    ts.server.lifecycle.beginDrain('test');
    const draining = await fetch(`${lane}/readyz`);
    assert.equal(draining.status, 503);
    assert.deepEqual(
      { ...((await draining.json()) as object), loopStallMs: 0 },
      { ready: false, draining: true, reason: 'draining', loopStallMs: 0 },
    );
    assert.equal((await fetch(`${lane}/healthz`)).status, 200);
  } finally {
    await ts.close();
  }
});

function childPids(pid: number): number[] {
  const file = `/proc/${pid}/task/${pid}/children`;
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('ferry serve --processes 2: one port, two serving processes, health from the primary, a dead child replaced', async () => {
  const repo = await tempModelRepository();
  const m = tinyClassifier();
  await writeModelVersion(repo.dir, 'cls', '1.0.0', m);
  const server = await startChildServer({
    args: ['--models', repo.dir, '--processes', '2', '--health-port', '0'],
    env: { FERRY_STORE_URL: 'sqlite::memory:', FERRY_RUNTIME_WARMUP_RUNS: '1', FERRY_LIFECYCLE_DRAIN_DELAY_MS: '0' },
    cwd: repo.dir,
  });
  try {
    const primary = server.proc.pid!;
    const healthRec = await waitFor('the health port log line', async () =>
      server.logs.find((r) => r.msg === 'cluster: health port'),
    );
    const lane = `http://127.0.0.1:${healthRec.healthPort as number}`;
    // Ready only once both children are.
    await waitFor('readiness', async () => ((await fetch(`${lane}/readyz`)).status === 200 ? true : undefined));
    const pids = childPids(primary);
    assert.equal(pids.length, 2, `two children: ${pids.join(',')}`);
    const want = m.reference(m.example)[1]!;
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${server.url}/v1/models/cls/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', connection: 'close' },
        body: JSON.stringify({ instances: [m.example] }),
      });
      assert.equal(r.status, 200);
      const body = (await r.json()) as { predictions: Array<{ scores: Record<string, number> }> };
      assert.ok(Math.abs(body.predictions[0]!.scores.yes! - want) < 1e-5);
    }
    // Both children log their own "ready" line.
    assert.equal(server.logs.filter((r) => r.msg === 'ready').length, 2);

    // A child killed after it served is replaced; readiness comes back with two children.
    process.kill(pids[0]!, 'SIGKILL');
    await waitFor('the replacement', async () => {
      const now = childPids(primary);
      return now.length === 2 && !now.includes(pids[0]!) && (await fetch(`${lane}/readyz`)).status === 200
        ? true
        : undefined;
    });
    assert.ok(server.logs.some((r) => r.msg === 'cluster: a child exited; starting another'));
    const after = childPids(primary);

    await server.stop('SIGTERM');
    const exit = await server.exited;
    assert.equal(exit.code, 0, server.stderr());
    for (const pid of after) assert.equal(existsSync(`/proc/${pid}`), false, `child ${pid} exited`);
  } finally {
    await server.stop('SIGKILL');
    await repo.remove();
  }
});

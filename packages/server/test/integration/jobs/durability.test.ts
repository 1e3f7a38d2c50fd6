// Durability on the real thing: 500 flight-delay jobs, accepted by an API-only server, run by two
// `ferry worker` child processes (the built CLI) on the real Redis, with the job documents in a
// PostgreSQL schema of their own. One worker is SIGKILLed mid-run, then the other; replacements
// start. Every job must complete, none may be left queued or active, each result must equal the
// synchronous prediction for its input, and each job's completion must be recorded exactly once
// (the workers publish a `completed` event after each successful — guarded — completion; the test
// listens on that channel: no job may have two. A worker killed between recording a completion and
// publishing it leaves a job with none, so progress is read from the store.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { loadConfig } from '../../config/index.js';
import { createServer, type FerryServer } from '../../app/create-server.js';
import { TEST_DATABASE_URL, uniqueSchemaName, withAdminClient } from '@ferry/test-kit';
import type { JobEvent } from '../../jobs/types.js';

const REDIS_URL = process.env.FERRY_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const CLI = join(ROOT, 'packages/server/dist/cli/main.js');
const JOBS = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const queueName = `dur-${process.pid}-${randomBytes(4).toString('hex')}`;
const prefix = 'ferry-test';
const schema = uniqueSchemaName('ferry_jobs_dur');
let repo: string;
let api: FerryServer;
let sub: Redis;
const children = new Set<ChildProcess>();
const logs: string[] = [];

function spawnWorker(name: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--models', repo, '--workers', '1', '--concurrency', '4', '--log-level', 'warn'],
    {
      env: {
        ...process.env,
        REDIS_URL,
        FERRY_STORE_URL: TEST_DATABASE_URL,
        FERRY_STORE_SCHEMA: schema,
        FERRY_JOBS_QUEUE_NAME: queueName,
        FERRY_JOBS_PREFIX: prefix,
        FERRY_JOBS_CHUNK_SIZE: '10',
        FERRY_JOBS_LOCK_DURATION_MS: '3000',
        FERRY_JOBS_STALLED_INTERVAL_MS: '1000',
        FERRY_RUNTIME_WARMUP_RUNS: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const keep = (b: Buffer) => {
    logs.push(`[${name}] ${b.toString('utf8').slice(0, 2000)}`);
    if (logs.length > 200) logs.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function instancesFor(i: number) {
  const airports = ['ATL', 'SFO', 'BOS', 'ORD', 'DEN', 'LAX', 'JFK', 'SEA'];
  return Array.from({ length: 40 }, (_, k) => ({
    month: ((i + k) % 12) + 1,
    dayOfWeek: (i * 3 + k) % 7,
    hour: ((i * 7 + k * 5) % 240) / 10,
    distance: 100 + ((i * 37 + k * 11) % 3000),
    origin: airports[(i + k) % airports.length]!,
    destination: airports[(i * 5 + k + 1) % airports.length]!,
  }));
}

before(async () => {
  repo = mkdtempSync(join(tmpdir(), 'ferry-dur-'));
  cpSync(join(ROOT, 'models', 'flight-delay'), join(repo, 'flight-delay'), { recursive: true });
  api = await createServer(
    loadConfig({
      env: {},
      overrides: {
        'models.dir': repo,
        'runtime.workers': 1,
        'runtime.warmupRuns': 1,
        'log.level': 'silent',
        'redis.url': REDIS_URL,
        'store.url': TEST_DATABASE_URL,
        'store.schema': schema,
        'jobs.queueName': queueName,
        'jobs.prefix': prefix,
      },
    }),
    { logger: false, jobWorkers: false },
  );
  await api.loaded;
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await api?.close();
  await sub?.quit().catch(() => undefined);
  const q = new Queue(queueName, { connection: { url: REDIS_URL }, prefix });
  await q.obliterate({ force: true }).catch(() => undefined);
  await q.close();
  await withAdminClient((c) => c.query(`drop schema if exists "${schema}" cascade`)).catch(() => undefined);
  rmSync(repo, { recursive: true, force: true });
});

test(
  '500 jobs, 2 worker processes, SIGKILL twice: all complete, each result recorded once, none stuck',
  { timeout: 300_000 },
  async () => {
    const completions = new Map<string, number>();
    sub = new Redis(REDIS_URL);
    await sub.subscribe(`${prefix}:${queueName}:ferry-events`);
    sub.on('message', (_c, text: string) => {
      const e = JSON.parse(text) as JobEvent;
      if (e.state === 'completed') completions.set(e.id, (completions.get(e.id) ?? 0) + 1);
    });

    const t0 = Date.now();
    let a = spawnWorker('a1');
    let b = spawnWorker('b1');
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, k) =>
          api.app.inject({
            method: 'POST',
            url: '/v1/models/flight-delay/jobs',
            payload: { instances: instancesFor(i + k) },
          }),
        ),
      );
      for (const r of batch) {
        assert.equal(r.statusCode, 202, r.body);
        ids.push(r.json().id as string);
      }
    }

    const completed = async () =>
      api.store.codec.int(
        (
          await api.store.db
            .selectFrom('jobs')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('state', '=', 'completed')
            .executeTakeFirstOrThrow()
        ).n,
      );
    const waitCompleted = async (n: number, what: string) => {
      const end = Date.now() + 240_000;
      let done = 0;
      while ((done = await completed()) < n) {
        if (Date.now() > end) throw new Error(`${what}: only ${done} completed\n${logs.slice(-20).join('')}`);
        await sleep(50);
      }
    };
    await waitCompleted(100, 'before the first kill');
    a.kill('SIGKILL');
    a = spawnWorker('a2');
    await waitCompleted(300, 'before the second kill');
    assert.ok((await completed()) < JOBS, 'the second kill happens mid-run');
    b.kill('SIGKILL');
    b = spawnWorker('b2');
    await waitCompleted(JOBS, 'all jobs');

    // Let lingering runs (a worker presumed dead that was not) finish, then look at the record.
    await sleep(1500);
    const rows = await api.store.db
      .selectFrom('jobs')
      .innerJoin('job_payloads', 'job_payloads.job_id', 'jobs.id')
      .select(['id', 'state', 'attempts', 'result'])
      .execute();
    assert.equal(rows.length, JOBS);
    const byState = new Map<string, number>();
    for (const r of rows) byState.set(r.state, (byState.get(r.state) ?? 0) + 1);
    assert.deepEqual([...byState], [['completed', JOBS]], 'every job completed; none queued, active or failed');
    for (const id of ids) assert.ok((completions.get(id) ?? 0) <= 1, `job ${id} completed more than once`);
    assert.ok(completions.size >= JOBS - 2, `completion events seen for ${completions.size} jobs`);
    const recovered = rows.filter((r) => r.attempts > 1).length;
    assert.ok(recovered >= 1, 'jobs held by the killed workers ran again');

    // Each result is the synchronous prediction of its own input (results keyed by job id, not mixed up).
    const byId = new Map(
      rows.map((r) => [
        r.id,
        api.store.codec.parseJson(r.result) as { predictions: Array<{ scores: Record<string, number> }> },
      ]),
    );
    for (const i of [0, 1, 137, 250, 499]) {
      const sync = await api.app.inject({
        method: 'POST',
        url: '/v1/models/flight-delay/predict',
        payload: { instances: instancesFor(i) },
      });
      const expected = sync.json().predictions as Array<{ scores: Record<string, number> }>;
      const got = byId.get(ids[i]!)!.predictions;
      assert.equal(got.length, 40);
      got.forEach((p, k) =>
        assert.ok(Math.abs(p.scores.delayed! - expected[k]!.scores.delayed!) < 1e-6, `job ${i} row ${k}`),
      );
    }
    // Nothing is left in BullMQ's wait, active or delayed lists.
    const lengths = await api.jobs.backend.lengths();
    assert.deepEqual(lengths, { waiting: 0, active: 0, delayed: 0 });
    process.stdout.write(
      `# durability: ${recovered} jobs re-run after a SIGKILL; ${completions.size} completion events; ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
  },
);

test(
  "the SQL queue across processes: `ferry worker` on the shared SQLite store runs an API-only server's jobs, and exits cleanly on SIGTERM",
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-sqlq-'));
    const db = `sqlite:${join(dir, 'ferry.db')}`;
    const apiSql = await createServer(
      loadConfig({
        env: {},
        overrides: {
          'models.dir': repo,
          'runtime.workers': 1,
          'runtime.warmupRuns': 1,
          'log.level': 'silent',
          'store.url': db,
        },
      }),
      { logger: false, jobWorkers: false },
    );
    const worker = spawn(process.execPath, [CLI, 'worker', '--models', repo, '--workers', '1', '--log-level', 'warn'], {
      env: {
        ...process.env,
        REDIS_URL: '',
        FERRY_REDIS_URL: '',
        FERRY_STORE_URL: db,
        FERRY_JOBS_POLL_INTERVAL_MS: '20',
        FERRY_RUNTIME_WARMUP_RUNS: '1',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    worker.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString('utf8');
    });
    children.add(worker);
    try {
      await apiSql.loaded;
      assert.equal(apiSql.jobs.backend.kind, 'sql');
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await apiSql.app.inject({
          method: 'POST',
          url: '/v1/models/flight-delay/jobs',
          payload: { instances: instancesFor(i).slice(0, 3) },
        });
        assert.equal(r.statusCode, 202, r.body);
        ids.push(r.json().id as string);
      }
      const end = Date.now() + 90_000;
      for (;;) {
        const rows = await apiSql.store.db.selectFrom('jobs').select(['state']).execute();
        if (rows.filter((r) => r.state === 'completed').length === ids.length) break;
        if (Date.now() > end)
          throw new Error(`SQL-queue jobs did not complete: ${JSON.stringify(rows.map((r) => r.state))}\n${stderr}`);
        await sleep(100);
      }
      const sync = await apiSql.app.inject({
        method: 'POST',
        url: '/v1/models/flight-delay/predict',
        payload: { instances: instancesFor(7).slice(0, 3) },
      });
      const doc = (await apiSql.app.inject({ method: 'GET', url: `/v1/jobs/${ids[7]}` })).json() as {
        result: { predictions: unknown[] };
      };
      assert.deepEqual(doc.result.predictions, sync.json().predictions);
      const code = await new Promise<number | null>((resolve) => {
        worker.once('exit', (c) => resolve(c));
        worker.kill('SIGTERM');
      });
      assert.equal(code, 0, `worker exit code; stderr:\n${stderr}`);
    } finally {
      if (worker.exitCode === null) worker.kill('SIGKILL');
      await apiSql.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

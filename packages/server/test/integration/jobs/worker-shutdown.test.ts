// `ferry worker` on SIGTERM, as a real child process on each queue backend (BullMQ on the running
// Redis, the SQL queue on a PostgreSQL schema of its own), fed by an API-only server in this process.
// Two jobs are running when the signal comes: a short one that fits in jobs.shutdownGraceMs must
// complete on that worker; a long one that does not must go back to the queue with its attempt
// undone. The worker must exit 0 (with the deadline passed it would SIGKILL itself instead), and a
// second worker must then run the handed-back job to the right answer, as its first attempt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Queue } from 'bullmq';
import { loadConfig } from '../../config/index.js';
import { createServer, type FerryServer } from '../../app/create-server.js';
import {
  CLI_PATH,
  startChildWorker,
  type ChildWorker,
  slowModel,
  tempModelRepository,
  tinyClassifier,
  writeModelVersion,
  fixtureRows,
  writeJsonl,
  TEST_DATABASE_URL,
  uniqueSchemaName,
  withAdminClient,
} from '@ferry/test-kit';
import { createStore } from '../../store/index.js';

const REDIS_URL = process.env.FERRY_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const slow = slowModel(60);
// The grace is far longer than the short job needs and far shorter than the long one does, on any
// machine speed: the test checks behaviour, not timing.
const GRACE_MS = 20_000;
const DEADLINE_MS = 30_000;
const SHORT_ROWS = 16;
const LONG_ROWS = 400;

for (const backend of ['bullmq', 'sql-postgres'] as const) {
  test(
    `ferry worker (${backend}): SIGTERM stops claiming, lets a short job finish, hands a long one back without using an attempt, exits 0 before the deadline`,
    { timeout: 400_000 },
    async () => {
      const repo = await tempModelRepository();
      await writeModelVersion(repo.dir, 'slow', '1.0.0', {
        onnx: slow.onnx,
        manifest: { ...slow.manifest, batching: { enabled: false }, timeoutMs: 30_000 },
      });
      const schema = uniqueSchemaName('ferry_wstop');
      const queueName = `wstop-${process.pid}-${randomBytes(4).toString('hex')}`;
      const redis = backend === 'bullmq' ? REDIS_URL : '';
      const api: FerryServer = await createServer(
        loadConfig({
          env: {},
          overrides: {
            'models.dir': repo.dir,
            'runtime.workers': 1,
            'runtime.warmupRuns': 1,
            'log.level': 'silent',
            'store.url': TEST_DATABASE_URL,
            'store.schema': schema,
            'jobs.queueName': queueName,
            'jobs.prefix': 'ferry-test',
            ...(redis && { 'redis.url': redis }),
          },
        }),
        { logger: false, jobWorkers: false },
      );
      const env = {
        REDIS_URL: redis,
        FERRY_REDIS_URL: redis,
        DATABASE_URL: '',
        FERRY_STORE_URL: TEST_DATABASE_URL,
        FERRY_STORE_SCHEMA: schema,
        FERRY_JOBS_QUEUE_NAME: queueName,
        FERRY_JOBS_PREFIX: 'ferry-test',
        FERRY_JOBS_CHUNK_SIZE: '1',
        FERRY_JOBS_POLL_INTERVAL_MS: '20',
        FERRY_JOBS_LOCK_DURATION_MS: '3000',
        FERRY_JOBS_STALLED_INTERVAL_MS: '1000',
        FERRY_RUNTIME_WARMUP_RUNS: '1',
        FERRY_JOBS_SHUTDOWN_GRACE_MS: String(GRACE_MS),
        FERRY_SERVER_SHUTDOWN_GRACE_MS: String(DEADLINE_MS),
      };
      const workers: ChildWorker[] = [];
      try {
        await api.loaded;
        assert.equal(api.jobs.backend.kind, backend === 'bullmq' ? 'bullmq' : 'sql');
        const a = await startChildWorker({ args: ['--models', repo.dir, '--workers', '1', '--concurrency', '2'], env });
        workers.push(a);
        const x = (i: number) => [i, 1, 2, 3];
        const submit = async (rows: number) => {
          const r = await api.app.inject({
            method: 'POST',
            url: '/v1/models/slow/jobs',
            payload: { instances: Array.from({ length: rows }, (_, i) => ({ x: x(i) })) },
          });
          assert.equal(r.statusCode, 202, r.body);
          return r.json().id as string;
        };
        const doc = async (id: string) => api.jobs.store.toDocument((await api.jobs.store.get(id))!);
        const long = await submit(LONG_ROWS);
        const short = await submit(SHORT_ROWS);
        // Both running, the short one started on its rows: now the signal.
        for (let i = 0; ; i++) {
          const [l, s] = await Promise.all([doc(long), doc(short)]);
          if (l.state === 'active' && s.state === 'active') break;
          assert.ok(i < 600, `jobs did not start: long ${l.state}, short ${s.state}\n${a.stderr()}`);
          await sleep(50);
        }
        const sigAt = Date.now();
        a.proc.kill('SIGTERM');
        // Submitted during the drain: the stopping worker must not take it.
        const late = await submit(2);
        const exit = await a.exited;
        assert.deepEqual(
          { code: exit.code, signal: exit.signal },
          { code: 0, signal: null },
          `worker A exits 0 (a deadline kill would be SIGKILL)\n${a.stderr()}`,
        );
        const msgs = a.logs.map((l) => l.msg);
        assert.ok(msgs.includes('shut down cleanly'), `worker A logged its clean shutdown: ${JSON.stringify(msgs)}`);
        assert.ok(!msgs.includes('shutdown deadline reached: exiting with work unfinished'));

        const s = await doc(short);
        assert.equal(s.state, 'completed', 'the short job finished within the grace period');
        assert.equal(s.result?.worker, a.workerId, 'on the stopping worker');
        assert.equal(s.attempts, 1);
        const l = await doc(long);
        assert.equal(l.state, 'queued', 'the long job went back to the queue');
        assert.equal(l.attempts, 0, 'its attempt was undone: a hand-back is not a failure');
        assert.equal(Number((await api.jobs.store.get(long))!.failures), 0);
        assert.equal(
          (await doc(late)).state,
          'queued',
          'a job submitted during the drain was not claimed by the stopping worker',
        );
        if (api.jobs.backend.kind === 'bullmq') {
          const q = (api.jobs.backend as unknown as { queue: Queue }).queue;
          assert.ok(
            ['waiting', 'delayed', 'prioritized'].includes(await q.getJobState(long)),
            'BullMQ holds the long job again, runnable',
          );
        }
        const partial = l.progress;

        // Another worker runs it, as its first attempt, to the right answer.
        const b = await startChildWorker({ args: ['--models', repo.dir, '--workers', '1', '--concurrency', '2'], env });
        workers.push(b);
        for (let i = 0; ; i++) {
          const [d1, d2] = await Promise.all([doc(long), doc(late)]);
          if (d1.state === 'completed' && d2.state === 'completed') break;
          assert.ok(!['failed', 'cancelled'].includes(d1.state), JSON.stringify(d1.error));
          assert.ok(i < 6000, `worker B did not finish the jobs: ${d1.state} ${d1.progress}\n${b.stderr()}`);
          await sleep(50);
        }
        const done = await doc(long);
        assert.equal(done.attempts, 1);
        assert.equal(done.result?.worker, b.workerId);
        assert.equal(done.result!.predictions.length, LONG_ROWS);
        done.result!.predictions.forEach((p, i) =>
          assert.ok(Math.abs((p as { value: number }).value - slow.reference({ x: x(i) })[0]!) < 1e-4, `row ${i}`),
        );
        assert.equal((await doc(late)).result?.worker, b.workerId);
        b.proc.kill('SIGTERM');
        const exitB = await b.exited;
        assert.equal(exitB.code, 0, b.stderr());
        const handBack = a.logs.find((r) => r.msg === 'jobs: workers stopped');
        console.log(
          `# worker shutdown (${backend}): A exited ${exit.at - sigAt} ms after SIGTERM (grace ${GRACE_MS} ms, deadline ${DEADLINE_MS} ms), workers stopped after ${String(handBack?.ms)} ms; short job (${SHORT_ROWS} rows) completed on A; long job handed back at ${Math.round(partial * 100)}% and completed on B (attempts ${done.attempts}); idle worker B exited 0 on SIGTERM`,
        );
      } finally {
        for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
        await api.close();
        if (redis) {
          const q = new Queue(queueName, { connection: { url: REDIS_URL }, prefix: 'ferry-test' });
          await q.obliterate({ force: true }).catch(() => undefined);
          await q.close();
        }
        await withAdminClient((c) => c.query(`drop schema if exists "${schema}" cascade`)).catch(() => undefined);
        await repo.remove();
      }
    },
  );
}

test(
  'ferry worker (bullmq): SIGTERM mid pipeline shard stops after the chunk being written and hands the shard back; the next worker continues from the checkpoint',
  { timeout: 180_000 },
  async () => {
    const repo = await tempModelRepository();
    const cls = tinyClassifier();
    await writeModelVersion(repo.dir, 'cls', '1.0.0', { onnx: cls.onnx, manifest: cls.manifest });
    const schema = uniqueSchemaName('ferry_wstop_pipe');
    const queueName = `wstop-pipe-${process.pid}-${randomBytes(4).toString('hex')}`;
    const dir = mkdtempSync(join(tmpdir(), 'ferry-wstop-pipe-'));
    const N = 40_000;
    const CHUNK = 1000;
    const store = createStore({ url: TEST_DATABASE_URL, schema });
    const workers: ChildWorker[] = [];
    try {
      await store.migrate();
      writeJsonl(join(dir, 'rows.jsonl'), fixtureRows(N));
      const cfgFile = join(dir, 'ferry.yaml');
      writeFileSync(
        cfgFile,
        stringify({
          models: { dir: repo.dir },
          runtime: { workers: 1, warmupRuns: 1 },
          store: { url: TEST_DATABASE_URL, schema },
          redis: { url: REDIS_URL },
          server: { shutdownGraceMs: 10_000 },
          jobs: {
            queueName,
            prefix: 'ferry-test',
            concurrency: 1,
            lockDurationMs: 3000,
            stalledIntervalMs: 1000,
            shutdownGraceMs: 200,
          },
          pipelines: {
            accounts: {
              source: { kind: 'jsonl', path: join(dir, 'rows.jsonl') },
              model: 'cls@1',
              key: 'id',
              chunkRows: CHUNK,
            },
          },
        }),
      );
      const env = Object.fromEntries(
        Object.entries(process.env).filter(
          ([k]) =>
            !['DATABASE_URL', 'REDIS_URL', 'FERRY_STORE_URL', 'FERRY_STORE_SCHEMA', 'FERRY_REDIS_URL'].includes(k),
        ),
      );
      const a = await startChildWorker({ args: ['-c', cfgFile], env, cwd: dir });
      workers.push(a);
      const queued = execFileSync(
        process.execPath,
        [CLI_PATH, 'batch', 'run', 'accounts', '-c', cfgFile, '--shards', '1', '--queue', '--json'],
        { cwd: dir, env },
      ).toString();
      const {
        runId,
        jobs: [id],
      } = JSON.parse(queued) as { runId: string; jobs: [string] };
      const chunks = async () =>
        Number(
          (
            await store.db
              .selectFrom('pipeline_chunks')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('run_id', '=', runId)
              .executeTakeFirstOrThrow()
          ).n,
        );
      for (let i = 0; (await chunks()) < 3; i++) {
        assert.ok(i < 3000, `the shard did not start\n${a.stderr()}`);
        await sleep(20);
      }
      const sigAt = Date.now();
      a.proc.kill('SIGTERM');
      const exit = await a.exited;
      assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, a.stderr());
      const atExit = await chunks();
      assert.ok(atExit < N / CHUNK, 'stopped mid-shard');
      const row = await store.db
        .selectFrom('jobs')
        .select(['state', 'attempts', 'failures'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      assert.deepEqual(
        { state: row.state, attempts: Number(row.attempts), failures: Number(row.failures) },
        { state: 'queued', attempts: 0, failures: 0 },
        'handed back without using an attempt',
      );
      const b = await startChildWorker({ args: ['-c', cfgFile], env, cwd: dir });
      workers.push(b);
      for (let i = 0; ; i++) {
        const r = await store.db.selectFrom('jobs').select(['state']).where('id', '=', id).executeTakeFirstOrThrow();
        if (r.state === 'completed') break;
        assert.ok(r.state !== 'failed' && i < 4000, `shard job ${r.state}\n${b.stderr()}`);
        await sleep(50);
      }
      const done = await store.db
        .selectFrom('jobs')
        .innerJoin('job_payloads', 'job_payloads.job_id', 'jobs.id')
        .select(['attempts', 'result'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      const result = store.codec.parseJson(done.result) as {
        worker: string;
        pipeline: { chunksSkipped: number; chunksCommitted: number; status: string };
      };
      assert.equal(Number(done.attempts), 1);
      assert.equal(result.worker, b.workerId);
      assert.equal(result.pipeline.chunksSkipped, atExit, 'continued from the last chunk committed before the stop');
      assert.equal(result.pipeline.chunksSkipped + result.pipeline.chunksCommitted, N / CHUNK);
      assert.equal(result.pipeline.status, 'completed');
      const keys = await store.db
        .selectFrom('pipeline_predictions')
        .select('key')
        .where('run_id', '=', runId)
        .execute();
      assert.equal(keys.length, N);
      assert.equal(new Set(keys.map((k) => k.key)).size, N);
      console.log(
        `# worker shutdown (pipeline shard): A exited 0 ${exit.at - sigAt} ms after SIGTERM with ${atExit}/${N / CHUNK} chunks committed; the shard went back to the queue (attempts 0) and worker B finished it (${result.pipeline.chunksSkipped} chunks skipped, ${result.pipeline.chunksCommitted} committed)`,
      );
    } finally {
      for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
      await store.close();
      const q = new Queue(queueName, { connection: { url: REDIS_URL }, prefix: 'ferry-test' });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
      rmSync(dir, { recursive: true, force: true });
      await repo.remove();
      await withAdminClient((c) => c.query(`drop schema if exists "${schema}" cascade`)).catch(() => undefined);
    }
  },
);

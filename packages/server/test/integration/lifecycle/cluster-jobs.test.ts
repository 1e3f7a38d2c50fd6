// The jobs and pipelines half of the cluster test: two API replicas (`ferry serve --no-workers`)
// behind nginx running deploy/nginx/nginx.conf, two `ferry worker` processes, all on the running
// Redis (BullMQ, a queue of this test's own) and PostgreSQL (a schema of this test's own).
// Jobs are submitted through nginx; one replica is SIGTERMed during the submissions and one worker
// SIGKILLed mid-load (a replacement starts). Every accepted job must complete exactly once with the
// model's answer, and the split of jobs over the worker processes is reported.
// Pipelines, two ways: (1) shards queued as jobs (`ferry batch run NAME --shards 2 --queue`) run by
// two `ferry worker`s, the worker holding a shard SIGKILLed, another continuing it from its last
// committed chunk; (2) two `ferry batch run --shard i/2` processes, one SIGKILLed mid-run and resumed
// with `--resume RUN --shard 0/2`. Every source row must be stored exactly once with the right value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { stringify } from 'yaml';
import {
  CLI_PATH,
  startChildServer,
  startChildWorker,
  type ChildServer,
  type ChildWorker,
  freePort,
  localNginxConf,
  nginxBinary,
  slowModel,
  tempModelRepository,
  tinyClassifier,
  writeModelVersion,
  TEST_DATABASE_URL,
  uniqueSchemaName,
  withAdminClient,
  expectedYes,
  fixtureRows,
  writeJsonl,
} from '@ferry/test-kit';
import { createStore, type Store } from '../../store/index.js';
import type { JobDocument, JobEvent } from '../../jobs/types.js';

const REDIS_URL = process.env.FERRY_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const NGINX_CONF = fileURLToPath(new URL('../../../../../deploy/nginx/nginx.conf', import.meta.url));
const JOBS = 300;
const ROWS_PER_JOB = 4;
const PIPELINE_ROWS = 30_000;
const CHUNK_ROWS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nginx = nginxBinary();

test(
  'cluster: 2 API replicas + 2 ferry workers behind nginx — jobs spread over the workers, a replica SIGTERMed and a worker SIGKILLed mid-load lose no accepted job',
  { timeout: 360_000, skip: nginx ? false : 'nginx is not installed' },
  async () => {
    const repo = await tempModelRepository();
    const slow = slowModel(20);
    await writeModelVersion(repo.dir, 'slow', '1.0.0', {
      onnx: slow.onnx,
      manifest: { ...slow.manifest, timeoutMs: 30_000 },
    });
    const cls = tinyClassifier();
    await writeModelVersion(repo.dir, 'cls', '1.0.0', { onnx: cls.onnx, manifest: cls.manifest });
    const schema = uniqueSchemaName('ferry_cluster_jobs');
    const queueName = `cluster-${process.pid}-${randomBytes(4).toString('hex')}`;
    const prefix = 'ferry-test';
    const dir = mkdtempSync(join(tmpdir(), 'ferry-cluster-jobs-'));
    const env = {
      REDIS_URL,
      DATABASE_URL: TEST_DATABASE_URL,
      FERRY_STORE_SCHEMA: schema,
      FERRY_CACHE_KEY_PREFIX: `ferry-test-${schema}:`,
      FERRY_JOBS_QUEUE_NAME: queueName,
      FERRY_JOBS_PREFIX: prefix,
      FERRY_JOBS_CHUNK_SIZE: '1',
      FERRY_JOBS_LOCK_DURATION_MS: '3000',
      FERRY_JOBS_STALLED_INTERVAL_MS: '1000',
      FERRY_RUNTIME_WARMUP_RUNS: '1',
      FERRY_LIFECYCLE_DRAIN_DELAY_MS: '1000',
      FERRY_SERVER_SHUTDOWN_GRACE_MS: '15000',
      // As deploy/compose/ferry.config.yaml behind deploy/nginx: nginx's request id is the key of a
      // submission that carries none, so nginx may retry a POST on the other replica.
      FERRY_JOBS_PROXY_REQUEST_IDEMPOTENCY: 'true',
    };
    const replicas: ChildServer[] = [];
    const workers: ChildWorker[] = [];
    let proxy: ChildProcess | undefined;
    let store: Store | undefined;
    const sub = new Redis(REDIS_URL);
    try {
      replicas.push(
        ...(await Promise.all(
          [0, 1].map(() => startChildServer({ args: ['--models', repo.dir, '--workers', '1', '--no-workers'], env })),
        )),
      );
      workers.push(
        ...(await Promise.all(
          [0, 1].map(() =>
            startChildWorker({ args: ['--models', repo.dir, '--workers', '1', '--concurrency', '2'], env }),
          ),
        )),
      );
      const [apiA, apiB] = replicas as [ChildServer, ChildServer];
      const [wA, wB] = workers as [ChildWorker, ChildWorker];
      const port = await freePort();
      writeFileSync(
        join(dir, 'nginx.conf'),
        localNginxConf(readFileSync(NGINX_CONF, 'utf8'), [apiA.port, apiB.port], port, dir),
      );
      proxy = spawn(nginx!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      for (let i = 0; ; i++) {
        if (
          (await fetch(`http://127.0.0.1:${port}/readyz`).then(
            (x) => x.status,
            () => 0,
          )) === 200
        )
          break;
        assert.ok(i < 100, 'nginx did not come up');
        await sleep(100);
      }
      store = createStore({ url: TEST_DATABASE_URL, schema });
      const db = store.db;
      const countState = async (state: string) =>
        Number(
          (
            await db
              .selectFrom('jobs')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('state', '=', state)
              .executeTakeFirstOrThrow()
          ).n,
        );

      // Completion events, as the workers publish them after each guarded completion.
      const completions = new Map<string, number>();
      await sub.subscribe(`${prefix}:${queueName}:ferry-events`);
      sub.on('message', (_c, text: string) => {
        const e = JSON.parse(text) as JobEvent;
        if (e.state === 'completed') completions.set(e.id, (completions.get(e.id) ?? 0) + 1);
      });

      // --- jobs -------------------------------------------------------------------------------------
      const x = (j: number, k: number) => [j, k, 0.25, 1];
      // Jobs are submitted WITHOUT an Idempotency-Key and never retried by the client: a connection the
      // stopping replica resets after nginx sent the POST is retried by nginx on the other replica
      // (non_idempotent), under the same X-Request-Id, which the replicas use as the job's key
      // (jobs.proxyRequestIdempotency). No 5xx may reach the client and no job may exist twice.
      const accepted = new Map<string, number>();
      const failed: string[] = [];
      let next = 0;
      const t0 = Date.now();
      const submitters = Array.from({ length: 4 }, async () => {
        while (next < JOBS) {
          const j = next++;
          for (;;) {
            const res = await fetch(`http://127.0.0.1:${port}/v1/models/slow/jobs`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ instances: Array.from({ length: ROWS_PER_JOB }, (_, k) => ({ x: x(j, k) })) }),
            }).catch((e: Error) => e);
            const status = res instanceof Error ? 0 : res.status;
            const body = res instanceof Error ? res.message : await res.text();
            if (status === 202 || status === 200) {
              const id = (JSON.parse(body) as { id: string }).id;
              assert.ok(!accepted.has(id) || accepted.get(id) === j);
              accepted.set(id, j);
              break;
            }
            failed.push(`job ${j}: ${status} ${body.slice(0, 200)}`);
            break;
          }
          await sleep(10);
        }
      });
      // Mid-load: a replica is SIGTERMed while jobs are still being submitted, a worker SIGKILLed while it runs jobs.
      while (accepted.size < JOBS / 3) await sleep(20);
      const termAt = Date.now();
      apiA.proc.kill('SIGTERM');
      for (let i = 0; (await countState('completed')) < 40; i++) {
        assert.ok(i < 3000, 'the workers are not completing jobs');
        await sleep(50);
      }
      const activeOnA = await db
        .selectFrom('jobs')
        .select('id')
        .where('state', '=', 'active')
        .where('locked_by', '=', wA.workerId)
        .execute();
      const killAt = Date.now();
      wA.proc.kill('SIGKILL');
      await wA.exited;
      const wC = await startChildWorker({ args: ['--models', repo.dir, '--workers', '1', '--concurrency', '2'], env });
      workers.push(wC);
      await Promise.all(submitters);
      const submittedMs = Date.now() - t0;
      const exitA = await apiA.exited;
      assert.equal(exitA.code, 0, `replica A drained and exited cleanly\n${apiA.stderr()}`);
      const resets = readFileSync(join(dir, 'error.log'), 'utf8')
        .split('\n')
        .filter((l) => /reset by peer|prematurely/.test(l));
      assert.deepEqual(
        failed,
        [],
        `every submission was accepted at the first try from the client; nginx error.log:\n${resets.slice(0, 10).join('\n')}`,
      );
      assert.equal(accepted.size, JOBS, 'one job per submission');
      const stored = Number(
        (
          await db
            .selectFrom('jobs')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
      assert.equal(stored, JOBS, "nginx's retries created no second job");

      for (let i = 0; ; i++) {
        const done = await countState('completed');
        if (done === accepted.size) break;
        assert.ok(i < 4800, `only ${done} of ${accepted.size} jobs completed`);
        await sleep(50);
      }
      const jobsMs = Date.now() - t0;
      await sleep(1500); // a run presumed dead that was not would record here
      const rows = await db
        .selectFrom('jobs')
        .innerJoin('job_payloads', 'job_payloads.job_id', 'jobs.id')
        .select(['id', 'state', 'attempts', 'result'])
        .execute();
      assert.equal(rows.length, accepted.size, 'one job document per accepted submission');
      const byWorker = new Map<string, number>();
      let rerun = 0;
      for (const r of rows) {
        assert.equal(r.state, 'completed', `job ${r.id}`);
        const j = accepted.get(r.id);
        assert.ok(j !== undefined, `job ${r.id} was accepted`);
        const result = store.codec.parseJson(r.result) as NonNullable<JobDocument['result']>;
        assert.equal(result.predictions.length, ROWS_PER_JOB);
        result.predictions.forEach((p, k) =>
          assert.ok(
            Math.abs((p as { value: number }).value - slow.reference({ x: x(j, k) })[0]!) < 1e-4,
            `job ${j} row ${k}`,
          ),
        );
        assert.equal(typeof result.worker, 'string');
        byWorker.set(result.worker!, (byWorker.get(result.worker!) ?? 0) + 1);
        if (Number(r.attempts) > 1) rerun++;
      }
      for (const [id] of accepted) assert.ok((completions.get(id) ?? 0) <= 1, `job ${id} completed more than once`);
      assert.ok(
        (byWorker.get(wA.workerId) ?? 0) > 0 && (byWorker.get(wB.workerId) ?? 0) > 0,
        `both workers ran jobs: ${JSON.stringify([...byWorker])}`,
      );
      assert.deepEqual(
        [...byWorker.keys()].filter((w) => ![wA.workerId, wB.workerId, wC.workerId].includes(w)),
        [],
        'results come from the three worker processes only',
      );
      // The same answers as the synchronous endpoint, through the proxy (now replica B only).
      for (const id of [...accepted.keys()].slice(0, 10)) {
        const j = accepted.get(id)!;
        const sync = (await (
          await fetch(`http://127.0.0.1:${port}/v1/models/slow/predict`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ instances: Array.from({ length: ROWS_PER_JOB }, (_, k) => ({ x: x(j, k) })) }),
          })
        ).json()) as { predictions: Array<{ value: number }> };
        const doc = (await (await fetch(`http://127.0.0.1:${port}/v1/jobs/${id}`)).json()) as JobDocument;
        doc.result!.predictions.forEach((p, k) =>
          assert.ok(Math.abs((p as { value: number }).value - sync.predictions[k]!.value) < 1e-4),
        );
      }
      const q = new Queue(queueName, { connection: { url: REDIS_URL }, prefix });
      const left = await q.getJobCounts('wait', 'active', 'delayed', 'prioritized');
      await q.close();
      assert.deepEqual(left, { wait: 0, active: 0, delayed: 0, prioritized: 0 }, 'nothing left in BullMQ');
      const share = (w: string) => byWorker.get(w) ?? 0;
      console.log(
        `# cluster jobs: ${accepted.size} jobs accepted through nginx in ${(submittedMs / 1000).toFixed(1)} s, 0 client retries, ${resets.length} upstream resets in nginx's log (each retried by nginx on the other replica), 0 failed, 0 lost, ${completions.size} completion events (none twice); all completed ${(jobsMs / 1000).toFixed(1)} s after the first submission; replica A SIGTERMed after ${Math.round(JOBS / 3)} submissions, exited 0 ${exitA.at - termAt} ms later; worker A SIGKILLed ${killAt - t0} ms in, holding ${activeOnA.length} active jobs; ${rerun} jobs ran again (attempts > 1); jobs per worker: A ${share(wA.workerId)} (killed), B ${share(wB.workerId)}, C ${share(wC.workerId)} (replacement)`,
      );
    } finally {
      sub.disconnect();
      for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
      proxy?.kill('SIGTERM');
      await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
      await store?.close();
      const q = new Queue(queueName, { connection: { url: REDIS_URL }, prefix });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
      rmSync(dir, { recursive: true, force: true });
      await repo.remove();
      await withAdminClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).catch(() => undefined);
    }
  },
);

test(
  'cluster: a batch pipeline run in 2 shard processes on PostgreSQL, one SIGKILLed mid-run and resumed: every source row stored once with the right value',
  { timeout: 240_000 },
  async () => {
    const repo = await tempModelRepository();
    const cls = tinyClassifier();
    await writeModelVersion(repo.dir, 'cls', '1.0.0', { onnx: cls.onnx, manifest: cls.manifest });
    const schema = uniqueSchemaName('ferry_cluster_pipe');
    const dir = mkdtempSync(join(tmpdir(), 'ferry-cluster-pipe-'));
    const batches: ChildProcess[] = [];
    const store = createStore({ url: TEST_DATABASE_URL, schema });
    try {
      await store.migrate();
      const db = store.db;
      writeJsonl(join(dir, 'rows.jsonl'), fixtureRows(PIPELINE_ROWS));
      const cfgFile = join(dir, 'ferry.pipelines.yaml');
      writeFileSync(
        cfgFile,
        stringify({
          models: { dir: repo.dir, only: ['cls'] },
          runtime: { workers: 1, warmupRuns: 1 },
          log: { level: 'silent' },
          store: { url: TEST_DATABASE_URL, schema },
          pipelines: {
            accounts: {
              source: { kind: 'jsonl', path: join(dir, 'rows.jsonl') },
              model: 'cls@1',
              key: 'id',
              chunkRows: CHUNK_ROWS,
            },
          },
        }),
      );
      // The config file names the store: no DATABASE_URL / REDIS_URL from the environment may override it.
      const batchEnv = Object.fromEntries(
        Object.entries(process.env).filter(
          ([k]) =>
            !['DATABASE_URL', 'REDIS_URL', 'FERRY_STORE_URL', 'FERRY_STORE_SCHEMA', 'FERRY_REDIS_URL'].includes(k),
        ),
      );
      const batch = (args: string[]) => {
        const child = spawn(
          process.execPath,
          [CLI_PATH, 'batch', 'run', 'accounts', '-c', cfgFile, '--progress', 'none', '--json', ...args],
          { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: batchEnv },
        );
        batches.push(child);
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => {
          stdout += d.toString();
        });
        child.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        return {
          child,
          stderr: () => stderr,
          done: new Promise<{
            code: number | null;
            signal: NodeJS.Signals | null;
            stdout: string;
            stderr: string;
            at: number;
          }>((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr, at: Date.now() }))),
        };
      };
      const runId = `cluster-${randomBytes(4).toString('hex')}`;
      const chunksOf = async (shard: number) =>
        Number(
          (
            await db
              .selectFrom('pipeline_chunks')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('run_id', '=', runId)
              .where('shard', '=', shard)
              .executeTakeFirst()
          )?.n ?? 0,
        );
      const p0 = Date.now();
      const s0 = batch(['--shard', '0/2', '--run-id', runId]);
      const s1 = batch(['--shard', '1/2', '--run-id', runId]);
      for (let i = 0; (await chunksOf(0)) < 3; i++) {
        assert.ok(
          i < 3000 && s0.child.exitCode === null,
          `shard 0 committed no chunks before ${s0.child.exitCode === null ? 'the time limit' : 'it exited'}: ${s0.stderr()}`,
        );
        await sleep(20);
      }
      s0.child.kill('SIGKILL');
      const killed = await s0.done;
      assert.equal(
        killed.signal,
        'SIGKILL',
        `shard 0 ended before it could be killed: ${killed.stdout}${killed.stderr}`,
      );
      const before0 = await chunksOf(0);
      assert.ok(before0 < PIPELINE_ROWS / CHUNK_ROWS / 2, 'shard 0 was killed mid-run');
      const r0 = batch(['--resume', runId, '--shard', '0/2']);
      const [one, zero] = await Promise.all([s1.done, r0.done]);
      assert.equal(one.code, 0, one.stderr);
      assert.equal(zero.code, 0, zero.stderr);
      const sum0 = JSON.parse(zero.stdout) as { rowsScored: number; chunksSkipped: number; chunksCommitted: number };
      const sum1 = JSON.parse(one.stdout) as { rowsScored: number; chunksCommitted: number };
      assert.equal(
        sum0.chunksSkipped,
        before0,
        'the resumed shard skipped exactly the chunks committed before the kill',
      );
      const preds = await db
        .selectFrom('pipeline_predictions')
        .select(['key', 'output'])
        .where('run_id', '=', runId)
        .execute();
      assert.equal(preds.length, PIPELINE_ROWS);
      assert.equal(new Set(preds.map((p) => p.key)).size, PIPELINE_ROWS, 'every key once');
      const source = fixtureRows(PIPELINE_ROWS);
      for (const p of preds) {
        const row = source[Number(p.key.slice(1))];
        assert.ok(row && row.id === p.key, `unexpected key ${p.key}`);
        const out = store.codec.parseJson(p.output) as { scores: { yes: number } };
        assert.ok(Math.abs(out.scores.yes - expectedYes(row)) < 1e-5, `${p.key}`);
      }
      const perShard = await db
        .selectFrom('pipeline_chunks')
        .select(['shard', (eb) => eb.fn.sum<number>('rows_scored').as('rows'), (eb) => eb.fn.countAll().as('chunks')])
        .where('run_id', '=', runId)
        .groupBy('shard')
        .orderBy('shard')
        .execute();
      assert.deepEqual(
        perShard.map((s) => Number(s.rows)),
        [PIPELINE_ROWS / 2, PIPELINE_ROWS / 2],
      );
      const run = await db
        .selectFrom('pipeline_runs')
        .select('status')
        .where('run_id', '=', runId)
        .executeTakeFirstOrThrow();
      assert.equal(run.status, 'completed');
      console.log(
        `# cluster pipeline: ${PIPELINE_ROWS} rows in ${PIPELINE_ROWS / CHUNK_ROWS} chunks over 2 shard processes (ferry batch run --shard i/2 processes): shard 0 SIGKILLed after ${before0} committed chunks and resumed (${sum0.chunksSkipped} chunks skipped, ${sum0.rowsScored} rows scored by the resumed process); shard 1 scored ${sum1.rowsScored} rows in ${sum1.chunksCommitted} chunks; rows per shard ${perShard.map((s) => `${s.shard}: ${Number(s.rows)} (${Number(s.chunks)} chunks)`).join(', ')}; every key once with the reference value; run completed ${((Math.max(one.at, zero.at) - p0) / 1000).toFixed(1)} s after start`,
      );
    } finally {
      for (const b of batches) if (b.exitCode === null && b.signalCode === null) b.kill('SIGKILL');
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      await repo.remove();
      await withAdminClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).catch(() => undefined);
    }
  },
);

test(
  'cluster: pipeline shards through the job queue — `ferry batch run --shards 2 --queue`, 2 ferry workers, the one holding a shard SIGKILLed: another worker continues it from its last committed chunk; every row once, right value',
  { timeout: 300_000 },
  async () => {
    const repo = await tempModelRepository();
    const cls = tinyClassifier();
    await writeModelVersion(repo.dir, 'cls', '1.0.0', { onnx: cls.onnx, manifest: cls.manifest });
    const schema = uniqueSchemaName('ferry_cluster_qpipe');
    const queueName = `qpipe-${process.pid}-${randomBytes(4).toString('hex')}`;
    const prefix = 'ferry-test';
    const dir = mkdtempSync(join(tmpdir(), 'ferry-cluster-qpipe-'));
    const workers: ChildWorker[] = [];
    const store = createStore({ url: TEST_DATABASE_URL, schema });
    const N = 40_000;
    try {
      await store.migrate();
      const db = store.db;
      writeJsonl(join(dir, 'rows.jsonl'), fixtureRows(N));
      const cfgFile = join(dir, 'ferry.yaml');
      writeFileSync(
        cfgFile,
        stringify({
          models: { dir: repo.dir },
          runtime: { workers: 1, warmupRuns: 1 },
          store: { url: TEST_DATABASE_URL, schema },
          redis: { url: REDIS_URL },
          jobs: { queueName, prefix, concurrency: 1, lockDurationMs: 3000, stalledIntervalMs: 1000 },
          pipelines: {
            accounts: {
              source: { kind: 'jsonl', path: join(dir, 'rows.jsonl') },
              model: 'cls@1',
              key: 'id',
              chunkRows: CHUNK_ROWS,
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
      const wargs = ['-c', cfgFile];
      workers.push(
        ...(await Promise.all(
          [0, 1].map(() => startChildWorker({ args: wargs, env: { ...env, FERRY_LOG_LEVEL: 'info' }, cwd: dir })),
        )),
      );
      const [wA, wB] = workers as [ChildWorker, ChildWorker];
      const q0 = Date.now();
      const queued = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const c = spawn(
          process.execPath,
          [CLI_PATH, 'batch', 'run', 'accounts', '-c', cfgFile, '--shards', '2', '--queue', '--json'],
          { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let stdout = '';
        let stderr = '';
        c.stdout!.on('data', (d: Buffer) => {
          stdout += d.toString();
        });
        c.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        c.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      assert.equal(queued.code, 0, queued.stderr);
      const {
        runId,
        jobs: jobIds,
        queue,
      } = JSON.parse(queued.stdout) as { runId: string; jobs: string[]; queue: string };
      assert.equal(queue, 'bullmq');
      assert.equal(jobIds.length, 2);
      const chunksOf = async (shard: number) =>
        Number(
          (
            await db
              .selectFrom('pipeline_chunks')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('run_id', '=', runId)
              .where('shard', '=', shard)
              .executeTakeFirst()
          )?.n ?? 0,
        );
      const shardOf = (input: string) => (store.codec.parseJson(input) as { shard: { index: number } }).shard.index;
      // Find the shard worker A runs; kill A once that shard has committed a few chunks.
      let shardA = -1;
      for (let i = 0; ; i++) {
        const held = await db
          .selectFrom('jobs')
          .innerJoin('job_payloads', 'job_payloads.job_id', 'jobs.id')
          .select(['id', 'input', 'locked_by'])
          .where('state', '=', 'active')
          .where('locked_by', '=', wA.workerId)
          .executeTakeFirst();
        if (held && (await chunksOf(shardOf(held.input as string))) >= 3) {
          shardA = shardOf(held.input as string);
          break;
        }
        assert.ok(i < 3000, `worker A is not running a shard\n${wA.stderr()}`);
        await sleep(20);
      }
      const killAt = Date.now();
      wA.proc.kill('SIGKILL');
      await wA.exited;
      const committedBeforeKill = await chunksOf(shardA);
      assert.ok(committedBeforeKill < N / CHUNK_ROWS / 2, 'killed mid-shard');
      const wC = await startChildWorker({ args: wargs, env: { ...env, FERRY_LOG_LEVEL: 'info' }, cwd: dir });
      workers.push(wC);
      for (let i = 0; ; i++) {
        const states = await db.selectFrom('jobs').select(['state']).where('id', 'in', jobIds).execute();
        if (states.every((r) => r.state === 'completed')) break;
        assert.ok(!states.some((r) => r.state === 'failed'), 'no shard job failed');
        assert.ok(i < 6000, `shard jobs: ${JSON.stringify(states)}`);
        await sleep(50);
      }
      const doneMs = Date.now() - q0;
      const rows = await db
        .selectFrom('jobs')
        .innerJoin('job_payloads', 'job_payloads.job_id', 'jobs.id')
        .select(['id', 'input', 'attempts', 'result'])
        .where('id', 'in', jobIds)
        .execute();
      const byShard = new Map(
        rows.map((r) => [
          shardOf(r.input as string),
          {
            attempts: Number(r.attempts),
            result: store.codec.parseJson(r.result) as {
              worker: string;
              pipeline: { chunksSkipped: number; chunksCommitted: number; rowsScored: number };
            },
          },
        ]),
      );
      const killed = byShard.get(shardA)!;
      const other = byShard.get(1 - shardA)!;
      assert.equal(killed.attempts, 2, 'the killed shard ran a second time');
      assert.notEqual(killed.result.worker, wA.workerId, 'on another worker');
      assert.equal(
        killed.result.pipeline.chunksSkipped,
        committedBeforeKill,
        'continued from its last committed chunk',
      );
      assert.equal(killed.result.pipeline.chunksSkipped + killed.result.pipeline.chunksCommitted, N / CHUNK_ROWS / 2);
      assert.equal(other.result.worker, wB.workerId, 'the other shard ran on worker B');
      const preds = await db
        .selectFrom('pipeline_predictions')
        .select(['key', 'output'])
        .where('run_id', '=', runId)
        .execute();
      assert.equal(preds.length, N);
      assert.equal(new Set(preds.map((p) => p.key)).size, N, 'every key once');
      const source = fixtureRows(N);
      for (const p of preds) {
        const row = source[Number(p.key.slice(1))];
        assert.ok(row && row.id === p.key, `unexpected key ${p.key}`);
        assert.ok(
          Math.abs((store.codec.parseJson(p.output) as { scores: { yes: number } }).scores.yes - expectedYes(row)) <
            1e-5,
          p.key,
        );
      }
      const perShard = await db
        .selectFrom('pipeline_chunks')
        .select(['shard', (eb) => eb.fn.sum<number>('rows_scored').as('rows')])
        .where('run_id', '=', runId)
        .groupBy('shard')
        .orderBy('shard')
        .execute();
      assert.deepEqual(
        perShard.map((s) => Number(s.rows)),
        [N / 2, N / 2],
      );
      assert.equal(
        (await db.selectFrom('pipeline_runs').select('status').where('run_id', '=', runId).executeTakeFirstOrThrow())
          .status,
        'completed',
      );
      const name = (w: string) => (w === wA.workerId ? 'A' : w === wB.workerId ? 'B' : w === wC.workerId ? 'C' : w);
      console.log(
        `# cluster queued pipeline: ${N} rows, 2 shard jobs on BullMQ, 2 ferry workers; worker A SIGKILLed ${killAt - q0} ms after queueing with shard ${shardA} at ${committedBeforeKill}/${N / CHUNK_ROWS / 2} committed chunks; shard ${shardA} finished on worker ${name(killed.result.worker)} (attempt 2: ${killed.result.pipeline.chunksSkipped} chunks skipped, ${killed.result.pipeline.rowsScored} rows scored), shard ${1 - shardA} on worker ${name(other.result.worker)} (${other.result.pipeline.rowsScored} rows); rows per shard ${perShard.map((s) => Number(s.rows)).join(' / ')}; every key once, correct; run completed ${(doneMs / 1000).toFixed(1)} s after queueing`,
      );
    } finally {
      for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
      await store.close();
      const q = new Queue(queueName, { connection: { url: REDIS_URL }, prefix });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
      rmSync(dir, { recursive: true, force: true });
      await repo.remove();
      await withAdminClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).catch(() => undefined);
    }
  },
);

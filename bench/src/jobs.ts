// The asynchronous job path of flight-delay: jobs/s with two `ferry worker` processes behind an
// API-only `ferry serve --no-workers`, next to the synchronous /predict rate of the same server in
// the same run (the baseline of the ratio). One instance per job and per request, so the ratio is
// the cost of the queue (submit, dispatch, document writes, poll) per prediction. BullMQ on Redis
// when one answers at REDIS_URL (default redis://127.0.0.1:6379), the SQL queue otherwise.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { FERRY_CLI, MODELS_DIR } from './paths.js';
import { freePort, startNode, waitReady, type Child } from './processes.js';
import { instances, modelInfo } from './workloads.js';

export interface JobsBenchResult {
  model: string;
  backend: 'bullmq' | 'sql';
  workers: number;
  concurrency: number;
  jobs: number;
  jobsPerS: number;
  /** Submission to the last completion. */
  seconds: number;
  syncRequests: number;
  syncPerS: number;
  /** jobsPerS / syncPerS. */
  ratio: number;
}

async function redisAnswers(url: string): Promise<boolean> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** Runs `fn` with `concurrency` loops until `count` calls are made; returns the seconds taken. */
async function pool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await fn(next++);
    }),
  );
  return (performance.now() - t0) / 1000;
}

async function post(url: string, body: string): Promise<Response> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (res.status !== 200 && res.status !== 202) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`);
  return res;
}

export async function runJobsBench(
  opts: { quick: boolean; readyTimeoutMs: number },
  log: (line: string) => void,
): Promise<JobsBenchResult> {
  const model = 'flight-delay';
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const backend = (await redisAnswers(redisUrl)) ? 'bullmq' : 'sql';
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-jobs-'));
  const queueName = `bench-${process.pid}-${Date.now()}`;
  const config = join(dir, 'ferry.config.yaml');
  writeFileSync(
    config,
    stringify({
      models: { dir: MODELS_DIR, only: [model] },
      log: { level: 'warn' },
      store: { url: `sqlite:${join(dir, 'ferry.db')}` },
      jobs: { queueName, prefix: 'ferry-bench', concurrency: 8, pollIntervalMs: 20 },
      ...(backend === 'bullmq' && { redis: { url: redisUrl } }),
    }),
  );
  const children: Child[] = [];
  try {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const api = startNode('ferry-jobs-api', FERRY_CLI, [
      'serve',
      '-c',
      config,
      '--no-workers',
      '-p',
      String(port),
      '-H',
      '127.0.0.1',
      '--workers',
      '1',
    ]);
    children.push(api);
    await waitReady(api, url, opts.readyTimeoutMs);
    for (let w = 0; w < 2; w++)
      children.push(startNode(`ferry-worker-${w}`, FERRY_CLI, ['worker', '-c', config, '--workers', '1']));

    const info = modelInfo(model);
    const bodies = instances(info, 512).map((inst) => JSON.stringify({ instances: [inst] }));
    const concurrency = 16;

    // Baseline: synchronous predictions on the same server, same bodies (cache off: the bodies differ).
    const syncRequests = opts.quick ? 300 : 3000;
    await pool(100, concurrency, async (i) => {
      await (await post(`${url}/v1/models/${model}/predict`, bodies[i % bodies.length]!)).arrayBuffer();
    });
    const syncSeconds = await pool(syncRequests, concurrency, async (i) => {
      await (await post(`${url}/v1/models/${model}/predict`, bodies[i % bodies.length]!)).arrayBuffer();
    });
    const syncPerS = syncRequests / syncSeconds;
    log(`jobs bench: sync ${syncPerS.toFixed(0)} req/s; submitting jobs (${backend})`);

    // Wait until the workers take jobs: one job must complete before the clock starts.
    const probe = (await (await post(`${url}/v1/models/${model}/jobs`, bodies[0]!)).json()) as { id: string };
    for (let t = 0; ; t++) {
      const j = (await (await fetch(`${url}/v1/jobs/${probe.id}`)).json()) as { state: string };
      if (j.state === 'completed') break;
      if (t > opts.readyTimeoutMs / 50)
        throw new Error(`workers did not run a job:\n${children.map((c) => c.stderrTail()).join('\n')}`);
      await sleep(50);
    }

    const jobs = opts.quick ? 200 : 2000;
    const ids: string[] = [];
    const t0 = performance.now();
    await pool(jobs, concurrency, async (i) => {
      const r = (await (await post(`${url}/v1/models/${model}/jobs`, bodies[i % bodies.length]!)).json()) as {
        id: string;
      };
      ids.push(r.id);
    });
    // Done when no job is waiting, delayed or active, as the API's queue-length gauge reports it.
    for (;;) {
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const left = [...metrics.matchAll(/^ferry_job_queue_length\{state="(waiting|active|delayed)"\} (\d+)/gm)].reduce(
        (s, m) => s + Number(m[2]),
        0,
      );
      if (left === 0 && /ferry_job_queue_length/.test(metrics)) break;
      await sleep(20);
    }
    const seconds = (performance.now() - t0) / 1000;
    // Spot-check that the jobs really completed.
    for (const id of [ids[0]!, ids[ids.length - 1]!]) {
      const j = (await (await fetch(`${url}/v1/jobs/${id}`)).json()) as { state: string };
      if (j.state !== 'completed') throw new Error(`job ${id} is ${j.state} after the queue drained`);
    }
    const jobsPerS = jobs / seconds;
    return {
      model,
      backend,
      workers: 2,
      concurrency,
      jobs,
      jobsPerS,
      seconds,
      syncRequests,
      syncPerS,
      ratio: jobsPerS / syncPerS,
    };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    if (backend === 'bullmq') {
      const { Queue } = await import('bullmq');
      const q = new Queue(queueName, { connection: { url: redisUrl }, prefix: 'ferry-bench' });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatJobsBench(r: JobsBenchResult): string {
  return [
    `Jobs (${r.model}, ${r.backend} queue, ${r.workers} ferry worker processes, ${r.concurrency} clients, 1 instance per job)`,
    `  jobs/s ${r.jobsPerS.toFixed(1)} (${r.jobs} jobs in ${r.seconds.toFixed(2)} s)  vs sync /predict ${r.syncPerS.toFixed(1)} req/s  →  ratio ${r.ratio.toFixed(3)}`,
  ].join('\n');
}

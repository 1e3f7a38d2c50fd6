// The figures of issue 24 at full size, on a real `ferry serve` child process:
//   1. bytes read from PostgreSQL per second by one active 60,000-row flight-delay job (bar ≤ 1 MB/s),
//      counted on the wire by a loopback proxy in front of the database;
//   2. /healthz latency (p50, p99) with 1,000 open event streams on one large job (bar p99 ≤ 50 ms),
//      against the same server's /healthz with no streams (the baseline of the same run);
//   3. a 100,000-row spam job submission: time to 202, and /healthz p99 while it is being checked;
//   4. RSS of the server before, at the peak of and after a burst of 12 concurrent 3999×3999 PNG
//      submissions to the OCR model (bar: after ≤ 1.2 × before);
//   5. /healthz latency while 4 clients keep uploading multipart jobs of two ~3 MB PNGs each (the
//      upload is parsed on a worker thread), against the same server's /healthz with no uploads.
// Run: npm run build:ts && node bench/dist/reliability.js [--only=streams,submit,images,uploads]
import { randomBytes } from 'node:crypto';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import {
  startChildServer,
  tempModelRepository,
  TcpProxy,
  TEST_DATABASE_URL,
  uniqueSchemaName,
  withAdminClient,
  type ChildServer,
} from '@ferry/test-kit';
import { MODELS_DIR } from './paths.js';

const only = (process.argv.find((a) => a.startsWith('--only='))?.slice(7) ?? 'streams,submit,images,uploads').split(
  ',',
);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

function httpJson(port: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        agent,
        headers: {
          ...(data && { 'content-type': 'application/json', 'content-length': String(data.length) }),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function healthz(port: number, n: number, gapMs: number): Promise<{ p50: number; p99: number; max: number }> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await httpJson(port, 'GET', '/healthz');
    ms.push(performance.now() - t0);
    await sleep(gapMs);
  }
  ms.sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!;
  return { p50: q(0.5), p99: q(0.99), max: ms[ms.length - 1]! };
}

const rssOf = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
};
const mb = (b: number) => (b < 1e6 ? `${(b / 1e3).toFixed(1)} kB` : `${(b / 1e6).toFixed(1)} MB`);

function flightRows(n: number): unknown[] {
  const ref = readFileSync(join(MODELS_DIR, 'flight-delay/1.0.0/reference.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const { prediction: _p, ...row } = JSON.parse(l) as Record<string, unknown>;
      return row;
    });
  return Array.from({ length: n }, (_, i) => ref[i % ref.length]);
}

async function jobState(port: number, id: string): Promise<string> {
  const r = await httpJson(port, 'GET', `/v1/jobs/${id}`);
  return (JSON.parse(r.text) as { state: string }).state;
}

async function streamsBench(): Promise<void> {
  const target = new URL(TEST_DATABASE_URL);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  await proxy.start();
  const via = new URL(TEST_DATABASE_URL);
  via.port = String(proxy.port);
  const schema = uniqueSchemaName('ferry_bench_rel');
  const repo = await tempModelRepository();
  cpSync(join(MODELS_DIR, 'flight-delay'), join(repo.dir, 'flight-delay'), { recursive: true });
  let server: ChildServer | undefined;
  try {
    server = await startChildServer({
      args: ['--models', repo.dir, '--workers', '1'],
      env: {
        FERRY_STORE_URL: via.toString(),
        FERRY_STORE_SCHEMA: schema,
        REDIS_URL: '',
        FERRY_REDIS_URL: '',
        FERRY_RUNTIME_WARMUP_RUNS: '1',
        FERRY_JOBS_CHUNK_SIZE: '64',
        FERRY_JOBS_EVENTS_MAX_STREAMS: '2000',
        FERRY_JOBS_EVENTS_MAX_PER_JOB: '1000',
        FERRY_JOBS_EVENTS_MAX_PER_CLIENT: '1000',
      },
      readyTimeoutMs: 120_000,
    });
    const port = server.port;
    const rows = flightRows(60_000);
    const inputBytes = JSON.stringify(rows).length;

    // 1. Bytes read from the store by one active job, nothing else running.
    const sub = await httpJson(port, 'POST', '/v1/models/flight-delay/jobs', { instances: rows });
    const id = (JSON.parse(sub.text) as { id: string }).id;
    while ((await jobState(port, id)) !== 'active') await sleep(100);
    await sleep(500);
    const b0 = proxy.bytesFromTarget;
    const t0 = performance.now();
    await sleep(10_000);
    const read = proxy.bytesFromTarget - b0;
    const secs = (performance.now() - t0) / 1000;
    const stillActive = (await jobState(port, id)) === 'active';
    console.log(
      `store reads, one active 60,000-row job (input ${mb(inputBytes)}): ${mb(read / secs)}/s over ${secs.toFixed(1)} s` +
        `${stillActive ? '' : ' (the job ended within the window)'} — bar ≤ 1 MB/s`,
    );
    await httpJson(port, 'DELETE', `/v1/jobs/${id}`);
    await sleep(1000);

    // 2. /healthz under 1,000 event streams on one large job.
    const base = await healthz(port, 200, 10);
    const sub2 = await httpJson(port, 'POST', '/v1/models/flight-delay/jobs', { instances: rows });
    const id2 = (JSON.parse(sub2.text) as { id: string }).id;
    const streams = await Promise.all(
      Array.from(
        { length: 1000 },
        () =>
          new Promise<{ destroy(): void; status: number }>((resolve, reject) => {
            const req = request({ host: '127.0.0.1', port, path: `/v1/jobs/${id2}/events`, agent: false }, (res) => {
              res.on('data', () => undefined);
              res.on('error', () => undefined);
              resolve({ destroy: () => req.destroy(), status: res.statusCode ?? 0 });
            });
            req.on('error', reject);
            req.end();
          }),
      ),
    );
    const open = streams.filter((s) => s.status === 200).length;
    const b1 = proxy.bytesFromTarget;
    const t1 = performance.now();
    const loaded = await healthz(port, 500, 10);
    const readStreams = (proxy.bytesFromTarget - b1) / ((performance.now() - t1) / 1000);
    const state2 = await jobState(port, id2);
    console.log(
      `/healthz, no streams: p50 ${base.p50.toFixed(1)} ms, p99 ${base.p99.toFixed(1)} ms; with ${open} event streams on one ` +
        `60,000-row job (${state2} at the end): p50 ${loaded.p50.toFixed(1)} ms, p99 ${loaded.p99.toFixed(1)} ms, ` +
        `max ${loaded.max.toFixed(1)} ms — bar p99 ≤ 50 ms; store reads meanwhile ${mb(readStreams)}/s; ` +
        `p99 ratio ${(loaded.p99 / base.p99).toFixed(2)}×`,
    );
    for (const s of streams) s.destroy();
    await httpJson(port, 'DELETE', `/v1/jobs/${id2}`).catch(() => undefined);
  } finally {
    await server?.stop('SIGKILL');
    await repo.remove();
    await proxy.stop();
    await withAdminClient((c) => c.query(`drop schema if exists "${schema}" cascade`));
  }
}

async function submitBench(): Promise<void> {
  const repo = await tempModelRepository();
  cpSync(join(MODELS_DIR, 'spam'), join(repo.dir, 'spam'), { recursive: true });
  let server: ChildServer | undefined;
  try {
    server = await startChildServer({
      args: ['--models', repo.dir, '--workers', '1'],
      env: {
        FERRY_STORE_URL: 'sqlite::memory:',
        REDIS_URL: '',
        FERRY_REDIS_URL: '',
        FERRY_JOBS_WORKERS: 'false',
      },
      readyTimeoutMs: 120_000,
    });
    const port = server.port;
    const instances = Array.from({ length: 100_000 }, (_, i) => ({ text: `win money ${i} now` }));
    const base = await healthz(port, 100, 10);
    let stop = false;
    const during: Promise<{ p50: number; p99: number; max: number }> = (async () => {
      await sleep(5);
      const ms: number[] = [];
      while (!stop) {
        const t0 = performance.now();
        await httpJson(port, 'GET', '/healthz');
        ms.push(performance.now() - t0);
        await sleep(10);
      }
      ms.sort((a, b) => a - b);
      const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? 0;
      return { p50: q(0.5), p99: q(0.99), max: ms[ms.length - 1] ?? 0 };
    })();
    const t0 = performance.now();
    const r = await httpJson(port, 'POST', '/v1/models/spam/jobs', { instances });
    const ms = performance.now() - t0;
    stop = true;
    const h = await during;
    console.log(
      `100,000-row spam job (${mb(JSON.stringify({ instances }).length)}): ${r.status} in ${ms.toFixed(0)} ms; /healthz meanwhile ` +
        `p50 ${h.p50.toFixed(1)} ms, p99 ${h.p99.toFixed(1)} ms, max ${h.max.toFixed(1)} ms (idle p99 ${base.p99.toFixed(1)} ms)`,
    );
  } finally {
    await server?.stop('SIGKILL');
    await repo.remove();
  }
}

async function imagesBench(): Promise<void> {
  const repo = await tempModelRepository();
  cpSync(join(MODELS_DIR, 'ocr'), join(repo.dir, 'ocr'), { recursive: true });
  let server: ChildServer | undefined;
  try {
    server = await startChildServer({
      args: ['--models', repo.dir, '--workers', '1'],
      env: {
        FERRY_STORE_URL: 'sqlite::memory:',
        REDIS_URL: '',
        FERRY_REDIS_URL: '',
        FERRY_JOBS_WORKERS: 'false',
      },
      readyTimeoutMs: 120_000,
    });
    const port = server.port;
    const pid = server.proc.pid!;
    const png = await sharp({ create: { width: 3999, height: 3999, channels: 3, background: '#ffffff' } })
      .png()
      .toBuffer();
    await sleep(2000);
    const before = rssOf(pid);
    let peak = before;
    const watch = setInterval(() => {
      peak = Math.max(peak, rssOf(pid));
    }, 50);
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        httpJson(port, 'POST', '/v1/models/ocr/jobs', png, { 'content-type': 'image/png' }),
      ),
    );
    const burstMs = performance.now() - t0;
    await sleep(5000);
    clearInterval(watch);
    const after = rssOf(pid);
    console.log(
      `12 concurrent 3999×3999 PNGs (${(png.length / 1000).toFixed(0)} kB each): ${answers.filter((a) => a.status === 202).length}/12 accepted in ` +
        `${burstMs.toFixed(0)} ms; RSS before ${mb(before)}, peak ${mb(peak)}, 5 s after ${mb(after)} ` +
        `(${(after / before).toFixed(2)}× before) — bar ≤ 1.2×`,
    );
  } finally {
    await server?.stop('SIGKILL');
    await repo.remove();
  }
}

async function uploadsBench(): Promise<void> {
  const repo = await tempModelRepository();
  cpSync(join(MODELS_DIR, 'ocr'), join(repo.dir, 'ocr'), { recursive: true });
  let server: ChildServer | undefined;
  try {
    server = await startChildServer({
      args: ['--models', repo.dir, '--workers', '1'],
      env: { FERRY_STORE_URL: 'sqlite::memory:', REDIS_URL: '', FERRY_REDIS_URL: '', FERRY_JOBS_WORKERS: 'false' },
      readyTimeoutMs: 120_000,
    });
    const port = server.port;
    // Noise does not compress: a 1000×1000 PNG of it is about 3 MB.
    const side = 1000;
    const png = await sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } })
      .png({ compressionLevel: 1 })
      .toBuffer();
    const boundary = 'ferry-bench-boundary';
    const body = Buffer.concat([
      ...[0, 1].map((i) =>
        Buffer.concat([
          Buffer.from(
            `--${boundary}\r\ncontent-disposition: form-data; name="image"; filename="${i}.png"\r\n` +
              'content-type: image/png\r\n\r\n',
          ),
          png,
          Buffer.from('\r\n'),
        ]),
      ),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    const upload = () =>
      new Promise<number>((resolve, reject) => {
        // Its own connection: the probes' agent must not queue behind the uploads.
        const req = request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/v1/models/ocr/jobs',
            agent: false,
            headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const base = await healthz(port, 200, 10);
    let stop = false;
    const statuses = new Map<number, number>();
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const status = await upload();
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    });
    await sleep(200);
    const loaded = await healthz(port, 300, 10);
    stop = true;
    await Promise.all(loops);
    const answered = [...statuses].map(([k, v]) => `${v}× ${k}`).join(', ');
    console.log(
      `/healthz, no uploads: p50 ${base.p50.toFixed(1)} ms, p99 ${base.p99.toFixed(1)} ms; while 4 clients upload ` +
        `multipart jobs of 2 × ${mb(png.length)} PNGs (${answered}): p50 ${loaded.p50.toFixed(1)} ms, ` +
        `p99 ${loaded.p99.toFixed(1)} ms, max ${loaded.max.toFixed(1)} ms; p99 ratio ${(loaded.p99 / base.p99).toFixed(2)}×`,
    );
  } finally {
    await server?.stop('SIGKILL');
    await repo.remove();
  }
}

if (only.includes('streams')) await streamsBench();
if (only.includes('submit')) await submitBench();
if (only.includes('images')) await imagesBench();
if (only.includes('uploads')) await uploadsBench();
agent.destroy();

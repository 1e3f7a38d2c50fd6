// A server whose Redis went away must still be able to close and let its process exit: no ioredis
// client (BullMQ queue, worker and its blocking connection, the job-event publisher and subscriber,
// the prediction cache) may keep a reconnect loop alive after close(). Runs a real server with job
// workers in a child process against a redis-server this test starts and then SIGKILLs; the child
// closes the server and must exit by itself, without process.exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { tempModelRepository, tinyClassifier, writeModelVersion } from '@ferry/test-kit';

const SERVER_JS = fileURLToPath(new URL('../../app/create-server.js', import.meta.url));
const CONFIG_JS = fileURLToPath(new URL('../../config/index.js', import.meta.url));
/** Generous: a clean close takes well under a second; a leaked client retries forever. */
const EXIT_BOUND_MS = 30_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

// The child: a full server (jobs on BullMQ with in-process workers, cache and job events on Redis).
// It reports each step on stdout and, told to, closes the server — and then does nothing else.
const CHILD = `
import { createServer } from ${JSON.stringify(SERVER_JS)};
import { loadConfig } from ${JSON.stringify(CONFIG_JS)};
import { createInterface } from 'node:readline';
const [models, redisUrl] = process.argv.slice(2);
const server = await createServer(loadConfig({ env: {}, overrides: {
  'models.dir': models, 'runtime.workers': 1, 'runtime.warmupRuns': 1, 'log.level': 'silent', 'store.url': 'sqlite::memory:',
  'redis.url': redisUrl, 'jobs.queueName': 'leak', 'jobs.prefix': 'ferry-test',
} }), { logger: false });
await server.loaded;
// Open every Redis client the job runtime has: a job through the queue (worker + blocking connection),
// an event published and a watcher subscribed (publisher and subscriber), a cached prediction.
const unsubscribe = server.jobs.events.subscribe('none', () => undefined);
const sub = await server.app.inject({ method: 'POST', url: '/v1/models/cls/jobs', payload: { instances: [{ amount: 1, items: 2, member: true, color: 'red' }] } });
if (sub.statusCode !== 202) throw new Error(sub.body);
for (;;) {
  const d = (await server.app.inject({ method: 'GET', url: '/v1/jobs/' + sub.json().id })).json();
  if (d.state === 'completed') break;
  await new Promise((r) => setTimeout(r, 20));
}
await server.app.inject({ method: 'POST', url: '/v1/models/cls/predict', payload: { instances: [{ amount: 1, items: 2, member: true, color: 'red' }] } });
process.stdout.write('ready\\n');
createInterface({ input: process.stdin }).once('line', async () => {
  const t0 = Date.now();
  unsubscribe();
  await server.close();
  process.stdout.write('closed ' + (Date.now() - t0) + '\\n');
  process.stdin.destroy();
});
`;

test(
  'a server whose Redis was killed closes and its process exits by itself (no ioredis retry loop left)',
  { timeout: 120_000 },
  async () => {
    const repo = await tempModelRepository();
    const cls = tinyClassifier();
    await writeModelVersion(repo.dir, 'cls', '1.0.0', {
      ...cls,
      manifest: { ...cls.manifest, cache: { enabled: true, ttlSeconds: 60 } },
    });
    const dir = mkdtempSync(join(tmpdir(), 'ferry-leak-'));
    const script = join(dir, 'child.mjs');
    writeFileSync(script, CHILD);
    const port = await freePort();
    let redis: ChildProcess | undefined;
    let child: ChildProcess | undefined;
    try {
      redis = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
        { stdio: 'ignore' },
      );
      for (let i = 0; ; i++) {
        // One attempt per client, no reconnecting: this test must not leak what it tests for.
        const probe = new Redis({
          port,
          host: '127.0.0.1',
          lazyConnect: true,
          retryStrategy: () => null,
          maxRetriesPerRequest: 0,
        });
        probe.on('error', () => undefined);
        const pong = await probe.connect().then(
          () => probe.ping(),
          () => '',
        );
        probe.disconnect();
        if (pong === 'PONG') break;
        assert.ok(i < 100, 'redis-server did not start');
        await new Promise((r) => setTimeout(r, 100));
      }

      child = spawn(process.execPath, [script, repo.dir, `redis://127.0.0.1:${port}`], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const lines = createInterface({ input: child.stdout! });
      const next = () =>
        new Promise<string>((resolve, reject) => {
          lines.once('line', resolve);
          child!.once('exit', (code) => reject(new Error(`child exited (${code}) early\n${stderr}`)));
        });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
        child!.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
      });
      assert.equal(await next(), 'ready');
      const clients = await (async () => {
        const c = new Redis({ port, host: '127.0.0.1' });
        const list = (await c.client('LIST')) as string;
        c.disconnect();
        return list.trim().split('\n').length - 1;
      })();
      assert.ok(clients >= 3, `the child holds several Redis connections (${clients})`);

      // Redis dies; its clients start reconnecting. Then the server is closed.
      redis.kill('SIGKILL');
      await new Promise((r) => redis!.once('exit', r));
      await new Promise((r) => setTimeout(r, 1500));
      const closeAt = Date.now();
      child.stdin!.write('close\n');
      const closed = await next();
      assert.match(closed, /^closed \d+$/, stderr);
      // Nothing else runs in the child: it exits when no handle is left.
      const bound = new Promise<'bound'>((r) => {
        const t = setTimeout(() => r('bound'), EXIT_BOUND_MS);
        t.unref();
      });
      const first = await Promise.race([exited, bound]);
      assert.notEqual(
        first,
        'bound',
        `the child did not exit within ${EXIT_BOUND_MS} ms of close(): something (a Redis client retrying?) keeps it alive\n${stderr}`,
      );
      const e = first as { code: number | null; signal: NodeJS.Signals | null; at: number };
      assert.deepEqual({ code: e.code, signal: e.signal }, { code: 0, signal: null }, stderr);
      console.log(
        `# redis leak: ${clients} Redis connections open before redis-server was SIGKILLed; close() took ${closed.split(' ')[1]} ms; the child exited by itself ${e.at - closeAt} ms after close began`,
      );
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (redis && redis.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      await repo.remove();
    }
  },
);

// docker-compose.yml as containers, with podman-compose: nginx, two API replicas, two `ferry worker`s,
// Redis and PostgreSQL, docker-compose.yml unchanged, on a podman bridge network, with the image the
// Dockerfile builds. No registry is reachable, so nginx, Redis and PostgreSQL run from stand-ins built
// from Debian's packages of the same servers (deploy/podman/services.Dockerfile) and tagged with the
// names the compose file uses; Prometheus and Grafana are not started. The cluster scenario
// of packages/server/test/integration/lifecycle/cluster-jobs.test.ts against it: jobs submitted
// through nginx while one replica is stopped (SIGTERM, drain) and one worker SIGKILLed and started
// again; every accepted job must complete with the model's answer. Figures go to the test's
// diagnostics. Needs what image.test.mjs needs, plus podman-compose.
//   npm run test:deploy -- compose
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, freePort, podman, podmanEnv, waitReady } from './podman.mjs';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const JOBS = Number(process.env.FERRY_STACK_JOBS ?? 150);
const ROWS_PER_JOB = 4;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitPort(port, host) {
  return new Promise((ok, fail) => {
    const deadline = Date.now() + 120_000;
    const attempt = () => {
      const s = connect(port, host);
      s.once('connect', () => {
        s.destroy();
        ok();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) fail(new Error(`port ${port} closed after 120 s`));
        else setTimeout(attempt, 250);
      });
    };
    attempt();
  });
}

function instance(i, row) {
  return {
    month: 1 + ((i + row) % 12),
    dayOfWeek: (i * 3 + row) % 7,
    hour: (i * 7 + row * 5) % 24,
    distance: 200 + ((i * 37 + row * 101) % 2400),
    origin: i % 2 ? 'ATL' : 'SFO',
    destination: i % 2 ? 'SFO' : 'ATL',
  };
}

test('the compose stack as containers loses no accepted job when a replica stops and a worker dies', async (t) => {
  const built = buildImage(repo, 'localhost/ferry:local');
  t.diagnostic(
    `image localhost/ferry:local: ${(built.sizeBytes / 1e6).toFixed(0)} MB, build ${built.seconds.toFixed(0)} s`,
  );
  // Stand-ins for the registry images, under the names docker-compose.yml uses.
  for (const [target, name] of [
    ['nginx', 'docker.io/library/nginx:1.27-bookworm'],
    ['redis', 'docker.io/library/redis:7.4-bookworm'],
    ['postgres', 'docker.io/library/postgres:16-bookworm'],
  ]) {
    podman(
      [
        'build',
        '--network',
        'host',
        '--pull=never',
        '--build-arg',
        `BASE_IMAGE=${built.baseImage}`,
        '--target',
        target,
        '-f',
        join(repo, 'deploy/podman/services.Dockerfile'),
        '-t',
        name,
        join(repo, 'deploy/podman'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  }

  const models = mkdtempSync(join(tmpdir(), 'ferry-stack-models-'));
  t.after(() => rmSync(models, { recursive: true, force: true }));
  cpSync(join(repo, 'models/flight-delay'), join(models, 'flight-delay'), { recursive: true });
  // mkdtemp makes the folder 0700; the containers read it as the image's `node` user.
  chmodSync(models, 0o755);

  const httpPort = String(await freePort());
  const project = `ferrystack${process.pid}`;
  const env = {
    ...podmanEnv,
    FERRY_HTTP_PORT: httpPort,
    MODELS_DIR: models,
    POSTGRES_PASSWORD: 'stack-test',
    FERRY_API_KEYS: '',
  };
  const compose = (args) => {
    const r = spawnSync('podman-compose', ['-p', project, '-f', join(repo, 'docker-compose.yml'), ...args], {
      cwd: repo,
      env,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    if (r.status !== 0)
      throw new Error(`podman-compose ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const container = (service) => `${project}_${service}_1`;
  const logs = (service) => {
    const r = spawnSync('podman', ['logs', '--tail', '40', container(service)], { env: podmanEnv, encoding: 'utf8' });
    return `${service}:\n${r.stdout}${r.stderr}`;
  };
  t.after(() => {
    spawnSync('podman-compose', ['-p', project, '-f', 'docker-compose.yml', 'down', '-v'], {
      cwd: repo,
      env,
      stdio: 'ignore',
    });
  });

  const ip = (service) =>
    podman([
      'inspect',
      '--format',
      '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
      container(service),
    ]).trim();
  const pgReady = () =>
    spawnSync('podman', ['exec', container('postgres'), 'pg_isready', '-U', 'ferry', '-d', 'ferry'], { env: podmanEnv })
      .status === 0;

  // The data services first (podman-compose 1.0 starts dependencies in order but does not wait for
  // their health checks), then the Ferry containers and nginx.
  compose(['up', '-d', 'redis', 'postgres']);
  for (let i = 0; !pgReady(); i++) {
    assert.ok(i < 480, `postgres not ready:\n${logs('postgres')}`);
    await sleep(250);
  }
  await waitPort(6379, ip('redis'));
  compose(['up', '-d', 'api-1', 'api-2', 'worker-1', 'worker-2', 'proxy']);
  const proxy = `http://127.0.0.1:${httpPort}`;
  const all = () => ['api-1', 'api-2', 'worker-1', 'worker-2', 'proxy'].map(logs).join('\n');
  await waitReady(`http://${ip('api-1')}:8080`, all);
  await waitReady(`http://${ip('api-2')}:8080`, all);
  await waitReady(`http://${ip('worker-1')}:9090`, all, '/healthz');
  await waitReady(`http://${ip('worker-2')}:9090`, all, '/healthz');
  await waitReady(proxy, all);

  // Expected answers from the synchronous path, through nginx.
  const jobsInput = Array.from({ length: JOBS }, (_, i) =>
    Array.from({ length: ROWS_PER_JOB }, (_, r) => instance(i, r)),
  );
  const expected = [];
  for (const instances of jobsInput) {
    const r = await fetch(`${proxy}/v1/models/flight-delay/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances }),
    });
    assert.equal(r.status, 200, await r.clone().text());
    expected.push((await r.json()).predictions);
  }

  // Submissions through nginx, 6 at a time; api-1 is stopped at a third, worker-1 killed at two thirds.
  const started = Date.now();
  const accepted = new Map();
  let rejected = 0;
  let next = 0;
  let stopped;
  let killed;
  const submitOne = async (i) => {
    const r = await fetch(`${proxy}/v1/models/flight-delay/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `stack-${project}-${i}` },
      body: JSON.stringify({ instances: jobsInput[i] }),
    });
    if (r.status === 202) accepted.set(i, (await r.json()).id);
    else rejected++;
  };
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      while (next < JOBS) {
        const i = next++;
        if (i === Math.floor(JOBS / 3) && !stopped) {
          stopped = spawnSync('podman', ['stop', '-t', '30', container('api-1')], { env: podmanEnv, encoding: 'utf8' });
        }
        if (i === Math.floor((2 * JOBS) / 3) && !killed) {
          killed = spawnSync('podman', ['kill', '--signal', 'KILL', container('worker-1')], {
            env: podmanEnv,
            encoding: 'utf8',
          });
          // The replacement: the same container started again, as a restart policy would.
          spawnSync('podman', ['start', container('worker-1')], { env: podmanEnv });
        }
        await submitOne(i);
      }
    }),
  );
  const submittedMs = Date.now() - started;
  assert.equal(stopped?.status, 0, stopped?.stderr);
  assert.equal(killed?.status, 0, killed?.stderr);
  const api1 = podman(['inspect', '--format', '{{.State.ExitCode}}', container('api-1')]).trim();
  assert.equal(api1, '0', `api-1 drained and exited 0\n${logs('api-1')}`);

  // Every accepted job completes once, with the synchronous answer.
  let retried = 0;
  for (const [i, id] of accepted) {
    let doc;
    for (let k = 0; k < 1200; k++) {
      const r = await fetch(`${proxy}/v1/jobs/${id}`);
      doc = await r.json();
      if (doc.state === 'completed' || doc.state === 'failed' || doc.state === 'cancelled') break;
      await sleep(250);
    }
    assert.equal(doc.state, 'completed', `job ${i} (${id}): ${JSON.stringify(doc)}\n${all()}`);
    if (doc.attempts > 1) retried++;
    const got = doc.result.predictions;
    assert.equal(got.length, ROWS_PER_JOB);
    for (let r = 0; r < ROWS_PER_JOB; r++) {
      assert.equal(got[r].label, expected[i][r].label);
      for (const [label, score] of Object.entries(expected[i][r].scores)) {
        assert.ok(Math.abs(got[r].scores[label] - score) < 1e-6, `job ${i} row ${r} ${label}`);
      }
    }
  }
  const doneMs = Date.now() - started;
  t.diagnostic(
    `stack: ${JOBS} jobs x ${ROWS_PER_JOB} rows through nginx; accepted ${accepted.size}, refused ${rejected}, ` +
      `completed ${accepted.size}, lost 0, re-run after the worker kill ${retried}; ` +
      `submitted in ${(submittedMs / 1000).toFixed(1)} s, all completed after ${(doneMs / 1000).toFixed(1)} s`,
  );
  assert.ok(accepted.size >= JOBS - 2, `nginx retried refused submissions on the other replica (refused ${rejected})`);
});

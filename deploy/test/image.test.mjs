// The container image, built and run for real with podman: the Dockerfile builds from this checkout
// (on a locally made base image when no image registry is reachable), the container serves a mounted
// model with the same numbers as onnxruntime-node run directly, shows the dashboard, runs as the
// unprivileged user, carries no compiler, and exits 0 after draining on SIGTERM.
//
// Needs root, podman (runc), debootstrap and the npm registry; `.ci/run` installs them.
//   npm run test:deploy -- image
// Environment: FERRY_IMAGE_BASE (default: the stand-in from deploy/podman/make-base-image.sh; set it
// to `node:22-bookworm-slim` where a registry is reachable), FERRY_IMAGE_TAG (localhost/ferry:test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, freePort, podman, podmanEnv, waitReady } from './podman.mjs';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const IMAGE = process.env.FERRY_IMAGE_TAG ?? 'localhost/ferry:test';

test('the image builds, serves a model and the dashboard as non-root, and drains on SIGTERM', async (t) => {
  const onnx = join(repo, 'models/mlp-bench/1.0.0/model.onnx');
  assert.ok(existsSync(onnx), 'run `npm run models` first');

  const built = buildImage(repo, IMAGE);
  t.diagnostic(`image ${IMAGE}: ${(built.sizeBytes / 1e6).toFixed(0)} MB, built in ${built.seconds.toFixed(0)} s`);
  const work = mkdtempSync(join(tmpdir(), 'ferry-image-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  writeFileSync(join(work, 'built.json'), JSON.stringify(built));

  // No compiler reached the runtime stage.
  const tools = podman([
    'run',
    '--rm',
    '--network',
    'host',
    '--entrypoint',
    'sh',
    IMAGE,
    '-c',
    'command -v g++ cc make python3 || true',
  ]);
  assert.equal(tools.trim(), '', 'the runtime image carries no compiler');

  const port = await freePort();
  const name = `ferry-image-test-${process.pid}`;
  podman([
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    '-e',
    `FERRY_SERVER_PORT=${port}`,
    '-e',
    'FERRY_SERVER_HOST=127.0.0.1',
    '-v',
    `${join(repo, 'models/mlp-bench')}:/models/mlp-bench:ro`,
    IMAGE,
  ]);
  t.after(() => spawnSync('podman', ['rm', '-f', '-t', '0', name], { env: podmanEnv }));
  const base = `http://127.0.0.1:${port}`;
  const logs = () => {
    const r = spawnSync('podman', ['logs', '--tail', '80', name], { encoding: 'utf8', env: podmanEnv });
    return `${r.stdout}${r.stderr}`;
  };
  await waitReady(base, logs);

  // Non-root: the server process (pid 1) runs as the image's `node` user.
  const status = podman(['exec', name, 'cat', '/proc/1/status']);
  assert.match(status, /^Uid:\s+1000\s+1000/m, 'pid 1 runs as uid 1000');

  // A prediction, checked against onnxruntime-node run directly on the same input.
  const x = Array.from({ length: 256 }, (_, i) => Math.cos(i) / 3);
  const res = await fetch(`${base}/v1/models/mlp-bench/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [{ x }] }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const served = (await res.json()).predictions[0];
  const ort = await import(join(repo, 'node_modules/onnxruntime-node/dist/index.js'));
  const session = await ort.InferenceSession.create(onnx);
  const direct = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x), [1, 256]) });
  await session.release();
  const expected = Array.from(direct.probabilities.data);
  const scores = served.scores;
  assert.ok(scores, JSON.stringify(served));
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(scores[`class_${i}`] - expected[i]) < 1e-5,
      `class_${i}: ${scores[`class_${i}`]} vs ${expected[i]}`,
    );
  }

  // The dashboard is built into the image.
  const page = await (await fetch(`${base}/`)).text();
  assert.doesNotMatch(page, /not built/);
  assert.match(page, /<script[^>]+src="\/assets\//);

  // Bad input is a 4xx naming the field, from the container too.
  const bad = await fetch(`${base}/v1/models/mlp-bench/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [{ x: [1, 2] }] }),
  });
  assert.equal(bad.status, 400);

  // SIGTERM drains and exits 0.
  podman(['kill', '--signal', 'TERM', name]);
  const code = podman(['wait', name]).trim();
  assert.equal(code, '0', logs());
  assert.match(logs(), /drain|shut/i);
});

// Helpers of the container tests: podman with deploy/podman/containers.conf (runc, host network,
// ulimits this sandbox allows), the local base image, and the image build with npm's registry
// configuration passed as build secrets.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** runc, host network and ulimits this sandbox allows: see deploy/podman/containers.conf. */
export const CONTAINERS_CONF = resolve(fileURLToPath(new URL('../podman/containers.conf', import.meta.url)));
export const podmanEnv = { ...process.env, CONTAINERS_CONF };

/** Runs `podman ARGS` and returns its stdout; throws with stderr when it fails. */
export function podman(args, options = {}) {
  const r = spawnSync('podman', args, { encoding: 'utf8', maxBuffer: 256 << 20, env: podmanEnv, ...options });
  if (r.status !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function npmConfig(key) {
  const r = spawnSync('npm', ['config', 'get', key], { encoding: 'utf8' });
  const v = r.stdout.trim();
  return r.status === 0 && v !== 'null' && v !== 'undefined' ? v : '';
}

/**
 * Builds the Dockerfile's `runtime` target as `tag`. The base is FERRY_IMAGE_BASE, or the stand-in
 * made by deploy/podman/make-base-image.sh (made once, then reused). npm inside the build gets this
 * machine's registry and CA bundle as the `npmrc` and `npm-ca` secrets, as `npm ci` gets them here.
 */
export function buildImage(repo, tag) {
  let baseImage = process.env.FERRY_IMAGE_BASE;
  if (!baseImage) {
    baseImage = 'localhost/ferry-base:node22-bookworm';
    const r = spawnSync('bash', [join(repo, 'deploy/podman/make-base-image.sh')], {
      encoding: 'utf8',
      env: { ...podmanEnv, FERRY_BASE_IMAGE: baseImage },
    });
    if (r.status !== 0) throw new Error(`make-base-image.sh failed:\n${r.stdout}\n${r.stderr}`);
  }
  const secrets = mkdtempSync(join(tmpdir(), 'ferry-npmrc-'));
  try {
    const cafile = npmConfig('cafile') || process.env.NODE_EXTRA_CA_CERTS || '';
    const lines = [`registry=${npmConfig('registry') || 'https://registry.npmjs.org/'}`];
    const args = [];
    if (cafile) {
      lines.push('cafile=/run/secrets/npm-ca');
      args.push('--secret', `id=npm-ca,src=${cafile}`);
    }
    writeFileSync(join(secrets, 'npmrc'), `${lines.join('\n')}\n`, { mode: 0o600 });
    args.push('--secret', `id=npmrc,src=${join(secrets, 'npmrc')}`);
    const started = process.hrtime.bigint();
    podman(
      [
        'build',
        // docker format keeps HEALTHCHECK, which the OCI format drops.
        '--format',
        'docker',
        '--network',
        'host',
        '--pull=never',
        '--build-arg',
        `NODE_IMAGE=${baseImage}`,
        ...args,
        '--target',
        'runtime',
        '-t',
        tag,
        repo,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const sizeBytes = Number(podman(['image', 'inspect', '--format', '{{.Size}}', tag]).trim());
    return { baseImage, seconds, sizeBytes };
  } finally {
    rmSync(secrets, { recursive: true, force: true });
  }
}

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Polls `${base}/readyz` until it answers 200; `logs()` explains a timeout. */
export async function waitReady(base, logs, path = '/readyz') {
  for (let i = 0; i < 720; i++) {
    try {
      const r = await fetch(`${base}${path}`);
      if (r.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${base}${path} not ready after 180 s:\n${logs()}`);
}

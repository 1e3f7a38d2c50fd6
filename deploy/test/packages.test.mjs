// The published packages as a user gets them: `npm pack` on @ferry/core, @ferry/server and
// @ferry/client, the tarballs checked (no tests, no test support, licence, README, types, the
// dashboard inside the server), installed into a fresh project outside the monorepo, then
// `npx ferry init` on an ONNX file, `ferry serve`, and a Vite app that calls the server through
// @ferry/client and its React hook, built and opened in Chromium.
//
// Needs the monorepo built (`npm run build`, `npm run models`) and the npm registry (the fresh
// project installs the packages' dependencies). Run with `npm run test:deploy -- packages`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const PACKAGES = ['core', 'server', 'client'];

/**
 * The environment for a command: the fresh project outside the monorepo gets none of the `npm_*`
 * variables that `npm run test:deploy` exports from the monorepo's own `.npmrc` and manifest, as a
 * user's project would not have them.
 */
function envFor(cwd, env) {
  const base = { ...process.env };
  if (cwd !== repo) {
    for (const k of Object.keys(base)) if (/^npm_/i.test(k) || k === 'INIT_CWD') delete base[k];
  }
  return { ...base, ...env };
}

function run(cmd, args, cwd, env = {}) {
  try {
    return execFileSync(cmd, args, {
      cwd,
      env: envFor(cwd, env),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${e.stdout}\n${e.stderr}`);
  }
}

/** stdout and stderr of a command that must succeed, for checks on what npm prints (to stderr). */
function runBoth(cmd, args, cwd, env = {}) {
  const r = spawnSync(cmd, args, { cwd, env: envFor(cwd, env), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd} (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}\n${r.stderr}`;
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function waitReady(base, child, log) {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`ferry serve exited ${child.exitCode}:\n${log()}`);
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`not ready after 150 s:\n${log()}`);
}

function listTarball(file) {
  return run('tar', ['-tzf', file], repo)
    .split('\n')
    .filter(Boolean)
    .map((p) => p.replace(/^package\//, ''));
}

test('the packages pack, install outside the monorepo, serve and build a client app', async (t) => {
  assert.ok(existsSync(join(repo, 'packages/dashboard/dist/index.html')), 'run `npm run build` first');
  const onnx = join(repo, 'models/mlp-bench/1.0.0/model.onnx');
  assert.ok(existsSync(onnx), 'run `npm run models` first');

  const work = mkdtempSync(join(tmpdir(), 'ferry-packages-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const packs = join(work, 'packs');
  mkdirSync(packs);

  // 1. Pack. @ferry/server's prepack copies the built dashboard into the package.
  const packed = JSON.parse(
    run(
      'npm',
      ['pack', '--json', '--pack-destination', packs, ...PACKAGES.flatMap((p) => ['-w', `@ferry/${p}`])],
      repo,
    ),
  );
  assert.equal(packed.length, 3);
  const tarballs = Object.fromEntries(packed.map((p) => [p.name, join(packs, p.filename)]));
  assert.ok(!existsSync(join(repo, 'packages/server/dashboard')), 'postpack removes the copied dashboard');

  for (const name of PACKAGES) {
    const files = listTarball(tarballs[`@ferry/${name}`]);
    const manifest = JSON.parse(readFileSync(join(repo, 'packages', name, 'package.json'), 'utf8'));
    assert.ok(files.includes('LICENSE') && files.includes('README.md'), `${name}: licence and README`);
    assert.equal(manifest.license, 'MIT');
    assert.ok(manifest.engines?.node, `${name}: engines.node`);
    const tests = files.filter(
      (f) => /\.test\.|(^|\/)(test|integration|test-kit)\//.test(f) || f.endsWith('.tsbuildinfo'),
    );
    assert.deepEqual(tests, [], `${name} ships no tests or test support`);
    // Every export resolves to a file in the tarball, types included.
    for (const [entry, target] of Object.entries(manifest.exports)) {
      for (const file of typeof target === 'string' ? [target] : Object.values(target)) {
        assert.ok(files.includes(file.replace(/^\.\//, '')), `${name} ${entry}: ${file} is packed`);
      }
    }
    if (name === 'server') {
      assert.ok(files.includes('bin/ferry.js'), 'the ferry bin');
      assert.ok(files.includes('dashboard/index.html'), 'the dashboard ships inside @ferry/server');
    }
  }

  // 2. A fresh project outside the monorepo: the tarballs, React, Vite and TypeScript from the registry.
  const app = join(work, 'app');
  mkdirSync(join(app, 'src'), { recursive: true });
  const rootManifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
  const dev = rootManifest.devDependencies;
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify(
      {
        name: 'ferry-consumer',
        private: true,
        type: 'module',
        dependencies: {
          '@ferry/core': `file:${tarballs['@ferry/core']}`,
          '@ferry/server': `file:${tarballs['@ferry/server']}`,
          '@ferry/client': `file:${tarballs['@ferry/client']}`,
          react: dev.react,
          'react-dom': dev['react-dom'],
        },
        devDependencies: {
          vite: dev.vite,
          typescript: dev.typescript,
          '@types/react': dev['@types/react'],
          '@types/react-dom': dev['@types/react-dom'],
        },
        // What the server's README tells users: onnxruntime-node's CUDA download is not wanted.
        allowScripts: { 'onnxruntime-node': false, 'better-sqlite3': true, 'msgpackr-extract': true },
      },
      null,
      2,
    ),
  );
  const install = runBoth('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], app);
  // Ferry adds no npm warning (the old `.npmrc` switch printed `Unknown project config`). Engine
  // warnings come from the registry's newest releases of transitive dependencies and are reported.
  assert.doesNotMatch(install, /Unknown (project|user|env|cli) config/i, install);
  const engineWarnings = [
    ...install.matchAll(/package: '([^']+)',\s*npm warn EBADENGINE\s+required: \{ node: '([^']+)'/g),
  ];
  if (engineWarnings.length)
    t.diagnostic(`EBADENGINE: ${engineWarnings.map((m) => `${m[1]} needs node ${m[2]}`).join(', ')}`);
  assert.ok(
    !existsSync(join(app, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so')),
    'no CUDA provider downloaded',
  );
  const serverPkg = JSON.parse(readFileSync(join(app, 'node_modules/@ferry/server/package.json'), 'utf8'));
  assert.equal(serverPkg.version, rootManifest.version);

  // 3. `npx ferry init` on an ONNX file, then `ferry serve`.
  const version = runBoth('npx', ['--no-install', 'ferry', '--version'], app);
  assert.match(version, new RegExp(`^${rootManifest.version.replace(/\./g, '\\.')}`, 'm'));
  assert.doesNotMatch(version, /npm warn/i, 'npx ferry prints no npm warning');
  runBoth('npx', ['--no-install', 'ferry', 'init', onnx, '--name', 'mlp'], app);
  assert.ok(existsSync(join(app, 'models/mlp/1.0.0/ferry.yaml')));

  // The Vite app: a React component that predicts through usePrediction and shows the answer.
  writeFileSync(
    join(app, 'index.html'),
    '<!doctype html><html><body><div id="root"></div><script type="module" src="/src/main.tsx"></script></body></html>\n',
  );
  writeFileSync(
    join(app, 'src/main.tsx'),
    `import { createElement as h } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient, type PredictResult } from '@ferry/client';
import { FerryProvider, usePrediction } from '@ferry/client/react';

const x = Array.from({ length: 256 }, (_, i) => Math.sin(i) / 4);

function Answer() {
  const { data, error } = usePrediction('mlp', [{ x }]);
  if (error) return h('pre', { id: 'error' }, error.message);
  if (!data) return h('p', null, 'loading');
  const result: PredictResult = data;
  return h('pre', { id: 'answer' }, JSON.stringify(result.predictions[0]));
}

const client = createClient({ baseUrl: '' });
createRoot(document.getElementById('root')!).render(h(FerryProvider, { client }, h(Answer)));
`,
  );
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'ESNext',
        moduleResolution: 'Bundler',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        lib: ['ES2023', 'DOM', 'DOM.Iterable'],
        types: [],
      },
      include: ['src'],
    }),
  );
  // The published types are enough for a strict TypeScript app (skipLibCheck off).
  run(join(app, 'node_modules/.bin/tsc'), ['-p', '.'], app);
  run(join(app, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], app);
  assert.ok(existsSync(join(app, 'dist/index.html')));

  // ferry serve: the dashboard at `/` from the tarball; then the app's build served as the web root.
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const startServe = (env) => {
    let output = '';
    const child = spawn(
      join(app, 'node_modules/.bin/ferry'),
      ['serve', '--port', String(port), '--host', '127.0.0.1'],
      {
        cwd: app,
        env: envFor(app, env),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    return { child, log: () => output.slice(-4000) };
  };
  const stop = (child) =>
    new Promise((ok) => {
      if (child.exitCode !== null) return ok(child.exitCode);
      child.on('exit', (code) => ok(code));
      child.kill('SIGTERM');
    });

  const noStore = { FERRY_STORE_SQLITE_PATH: join(work, 'ferry.sqlite') };
  let server = startServe(noStore);
  t.after(() => server.child.kill('SIGKILL'));
  await waitReady(base, server.child, server.log);
  const page = await (await fetch(`${base}/`)).text();
  assert.doesNotMatch(page, /not built/, 'the dashboard from the tarball is served');
  assert.match(page, /<script[^>]+src="\/assets\//);

  // A prediction over HTTP, checked against onnxruntime-node run directly on the same input.
  const x = Array.from({ length: 256 }, (_, i) => Math.sin(i) / 4);
  const res = await fetch(`${base}/v1/models/mlp/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [{ x }] }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const served = (await res.json()).predictions[0];
  const ort = await import(join(repo, 'node_modules/onnxruntime-node/dist/index.js'));
  const session = await ort.InferenceSession.create(onnx);
  const direct = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x), [1, 256]) });
  const expected = Array.from(direct.probabilities.data);
  await session.release();
  const got = served.probabilities.flat();
  assert.equal(got.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(got[i] - expected[i]) < 1e-5, `probability ${i}`);
  assert.equal(await stop(server.child), 0, 'SIGTERM drains and exits 0');

  // The Vite app as the web root, opened in Chromium: usePrediction's answer is the same prediction.
  server = startServe({ ...noStore, FERRY_WEB_DASHBOARD_DIR: join(app, 'dist') });
  await waitReady(base, server.child, server.log);
  const { chromium } = await import(join(repo, 'node_modules/playwright-core/index.mjs'));
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  try {
    const tab = await browser.newPage();
    await tab.goto(`${base}/`);
    await tab.waitForSelector('#answer, #error', { timeout: 60_000 });
    assert.equal(await tab.locator('#error').count(), 0, await tab.content());
    const shown = JSON.parse(await tab.locator('#answer').innerText());
    const shownProbs = shown.probabilities.flat();
    for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(shownProbs[i] - expected[i]) < 1e-5);
  } finally {
    await browser.close();
  }
  assert.equal(await stop(server.child), 0);
  assert.ok(readdirSync(join(app, 'dist/assets')).some((f) => f.endsWith('.js')));
});

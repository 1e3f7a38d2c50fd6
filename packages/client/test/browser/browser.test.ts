// The dashboard in real Chromium (playwright-core driving Debian's chromium), served by `ferry serve`
// over the example model repository, as `npm start` runs it. Each page under test is saved as a
// screenshot in test-output/dashboard/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import { CHROMIUM, CHROMIUM_ARGS, root, serve, shots, stop, WAIT } from './browser-helpers.js';

const render = async (text: string) =>
  sharp(
    Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="130"><rect width="100%" height="100%" fill="white"/><text x="30" y="80" font-family="DejaVu Sans" font-size="44" fill="black">${text}</text></svg>`,
    ),
  )
    .png()
    .toBuffer();

describe(
  'dashboard in Chromium against ferry serve',
  { skip: !existsSync(CHROMIUM) && !process.env.CI && `no Chromium at ${CHROMIUM}` },
  () => {
    let child: ChildProcess;
    let base: string;
    let ctx: BrowserContext;
    let page: Page;
    let profile: string;
    const logs: string[] = [];

    before(async () => {
      assert.ok(
        existsSync(join(root, 'packages/dashboard/dist/index.html')),
        'the dashboard is built by `npm run build`',
      );
      mkdirSync(shots, { recursive: true });
      ({ base, child } = await serve({ FERRY_WEB_TIMESERIES_INTERVAL_SECONDS: '1' }, logs));
      profile = mkdtempSync(join(tmpdir(), 'ferry-chromium-'));
      ctx = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1280, height: 900 },
      });
      page = ctx.pages()[0] ?? (await ctx.newPage());
      page.setDefaultTimeout(WAIT);
      page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    });

    after(async () => {
      await ctx?.close().catch(() => undefined);
      if (profile) rmSync(profile, { recursive: true, force: true });
      await stop(child);
    });

    const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

    test('lists the models with their versions, card and contract', async () => {
      await page.goto(`${base}/#/models/flight-delay`);
      await page.getByTestId('models-table').getByText('spam', { exact: true }).waitFor();
      await page.getByTestId('model-card').waitFor();
      const detail = await page.getByTestId('model-detail').innerText();
      assert.match(detail, /flight-delay@1\.0\.0/);
      assert.match(detail, /dayOfWeek/);
      await shot('models');
    });

    test("runs a prediction from the form generated from the contract, with the server's numbers", async () => {
      await page.goto(`${base}/#/playground/flight-delay`);
      await page.getByTestId('field-month').fill('7');
      await page.getByTestId('field-dayOfWeek').fill('5');
      await page.getByTestId('field-hour').fill('18.5');
      await page.getByTestId('field-distance').fill('1200');
      await page.getByTestId('field-origin').selectOption('ATL');
      await page.getByTestId('field-destination').selectOption('SFO');
      await page.getByTestId('predict-button').click();
      const label = await page.getByTestId('predicted-label').innerText();
      const shown = Number(await page.getByTestId('score-delayed').getAttribute('data-value'));
      const direct = (await (
        await fetch(`${base}/v1/models/flight-delay/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            instances: [{ month: 7, dayOfWeek: 5, hour: 18.5, distance: 1200, origin: 'ATL', destination: 'SFO' }],
          }),
        })
      ).json()) as { predictions: Array<{ label: string; scores: Record<string, number> }> };
      assert.equal(label, direct.predictions[0]!.label);
      assert.ok(
        Math.abs(shown - direct.predictions[0]!.scores.delayed!) < 1e-9,
        `${shown} vs ${direct.predictions[0]!.scores.delayed}`,
      );
      await shot('playground-flight-delay');

      // A value out of the contract's range comes back as the field's error, not a crash.
      await page.getByTestId('field-month').fill('13');
      await page.getByTestId('predict-button').click();
      assert.match(await page.getByTestId('prediction-error').innerText(), /invalid-input.*\/instances\/0\/month/);
    });

    test('spam on the edge (onnxruntime-web WASM) agrees with the server within 1e-5', async () => {
      await page.goto(`${base}/#/playground/spam`);
      await page
        .getByTestId('field-text')
        .fill('WIN a FREE iPhone now!!! Click http://example.com to claim your prize');
      await page.getByTestId('mode-compare').check();
      await page.getByTestId('predict-button').click();
      const diff = Number(await page.getByTestId('edge-diff').getAttribute('data-value'));
      assert.ok(diff <= 1e-5, `edge vs server differ by ${diff}`);
      assert.equal(await page.getByTestId('result-edge').getByTestId('predicted-label').innerText(), 'spam');
      await shot('playground-spam-edge');

      // Many inputs through the same edge path the page uses, compared with the server's answers.
      const texts = [
        'Hi Bob, the meeting moved to 3pm tomorrow; see the notes I sent last week.',
        'URGENT: your account 12345 is suspended, verify at http://bank.example now',
        'Cheap meds!!! 80% off viagra cialis, order today and save $$$',
        '',
        'a',
        'Re: patch for the kernel build — applies cleanly on 2.4.19, thanks',
        'FREE FREE FREE click here unsubscribe',
        'Ünïcödé 文字 тест ✓ emojis 🚀🚀',
        'x'.repeat(5000),
        'Lunch? 12:30 at the usual place.',
      ];
      const r = await page.evaluate(async (inputs) => {
        const f = (
          window as unknown as {
            ferry: {
              client: unknown;
              createEdgeModel(
                c: unknown,
                ref: string,
                o: object,
              ): Promise<{
                runsOn: string;
                predict(i: unknown[]): Promise<{ predictions: Array<{ scores: Record<string, number> }> }>;
                predictOnServer(i: unknown[]): Promise<{ predictions: Array<{ scores: Record<string, number> }> }>;
              }>;
            };
          }
        ).ferry;
        const m = await f.createEdgeModel(f.client, 'spam@1', { mode: 'auto' });
        const instances = inputs.map((text) => ({ text }));
        const edge = await m.predict(instances);
        const server = await m.predictOnServer(instances);
        return {
          runsOn: m.runsOn,
          edge: edge.predictions.map((p) => p.scores),
          server: server.predictions.map((p) => p.scores),
        };
      }, texts);
      assert.equal(r.runsOn, 'edge', 'auto picks the edge for a 0.5 MB artifact');
      assert.equal(r.edge.length, texts.length);
      for (let i = 0; i < texts.length; i++) {
        for (const k of ['ham', 'spam'])
          assert.ok(
            Math.abs(r.edge[i]![k]! - r.server[i]![k]!) <= 1e-5,
            `input ${i} ${k}: edge ${r.edge[i]![k]} server ${r.server[i]![k]}`,
          );
      }
      assert.ok(
        r.server.some((s) => s.spam! > 0.5) && r.server.some((s) => s.spam! < 0.5),
        'the inputs cover both labels',
      );
    });

    test('predicts as the user types (usePrediction): the answer follows the latest text', async () => {
      await page.goto(`${base}/#/playground/spam`);
      await page.getByTestId('live-toggle').check();
      await page.getByTestId('field-text').fill('');
      await page
        .getByTestId('field-text')
        .pressSequentially('Thanks for the patch, I applied it to the kernel tree', { delay: 5 });
      await page.waitForSelector('[data-testid="live-result"][data-label="ham"]');
      await page.getByTestId('field-text').fill('');
      await page
        .getByTestId('field-text')
        .pressSequentially('WIN a FREE iPhone now!!! Click http://example.com to claim your prize', { delay: 5 });
      await page.waitForSelector('[data-testid="live-result"][data-label="spam"]');
    });

    test('uploads an image to OCR and shows its text with boxes', async () => {
      await page.goto(`${base}/#/playground/ocr`);
      const file = join(mkdtempSync(join(tmpdir(), 'ferry-ocr-')), 'page.png');
      writeFileSync(file, await render('Ferry OCR 123'));
      await page.getByTestId('ocr-upload').setInputFiles(file);
      const text = await page.getByTestId('ocr-text').innerText();
      assert.match(text.replace(/\s+/g, ' '), /Ferry OCR 123/);
      assert.ok((await page.getByTestId('ocr-boxes').locator('polygon').count()) >= 1);
      await shot('playground-ocr');
    });

    test("monitoring charts populate from the server's own metrics", async () => {
      // Traffic for the charts: some repeats (cache hits) and some invalid requests.
      for (let i = 0; i < 20; i++) {
        await fetch(`${base}/v1/models/spam/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ instances: [{ text: `hello ${i % 4}` }] }),
        });
      }
      await page.goto(`${base}/#/monitoring`);
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="chart-throughput"]')?.getAttribute('data-points')) > 0,
      );
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="chart-latency"]')?.getAttribute('data-points')) > 0,
      );
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="chart-cache"]')?.getAttribute('data-points')) > 0,
      );
      assert.equal(await page.getByTestId('chart-throughput').locator('canvas').count(), 1);
      await shot('monitoring');
    });

    test('watches a job finish', async (t) => {
      const probe = await fetch(`${base}/v1/jobs`);
      if (probe.status === 404) {
        t.skip('this build has no jobs API (/v1/jobs): issue 6 not merged');
        return;
      }
      await page.goto(`${base}/#/jobs`);
      await page.getByTestId('job-model').selectOption('spam');
      await page.getByTestId('job-instances').fill(JSON.stringify([{ text: 'FREE money now' }]));
      await page.getByTestId('job-submit').click();
      await page.waitForSelector('[data-testid="job-view"][data-state="completed"]');
      assert.match(await page.getByTestId('job-result').innerText(), /spam|ham/);

      // An OCR document as a job: the image is uploaded (multipart), the text comes back in the result.
      const file = join(mkdtempSync(join(tmpdir(), 'ferry-ocr-job-')), 'doc.png');
      writeFileSync(file, await render('Invoice 4711'));
      await page.getByTestId('job-model').selectOption('ocr');
      await page.getByTestId('job-instances').fill('');
      await page.getByTestId('job-file').setInputFiles(file);
      await page.getByTestId('job-submit').click();
      await page.waitForFunction(
        () =>
          /\/jobs\/./.test(location.hash) &&
          document.querySelector('[data-testid="job-view"]')?.getAttribute('data-state') === 'completed' &&
          /Invoice/.test(document.querySelector('[data-testid="job-result"]')?.textContent ?? ''),
      );
      assert.match(await page.getByTestId('job-result').innerText(), /"text": "Invoice ?4711"/);
      await shot('jobs');
    });

    // With content and checked against the API in dashboard-pages.test.ts and dashboard-ops.test.ts;
    // here: they render without page errors on a plain `npm start` server (no pipelines, no keys).
    test('the other pages render (VAD, pipelines, drift, rollout)', async () => {
      for (const [hash, name] of [
        ['#/playground/silero-vad', 'playground-vad'],
        ['#/pipelines', 'pipelines'],
        ['#/drift/flight-delay', 'drift'],
        ['#/rollout', 'rollout'],
        ['#/jobs', 'jobs-page'],
      ] as const) {
        await page.goto(`${base}/${hash}`);
        await page.waitForLoadState('networkidle');
        await shot(`${name}-quickstart`);
      }
      assert.ok((await page.locator('main h2').count()) >= 1);
      assert.deepEqual(
        logs.filter((l) => l.startsWith('pageerror')),
        [],
      );
    });
  },
);

describe(
  'the example web app flags spam as the user types, on the edge',
  { skip: !existsSync(CHROMIUM) && !process.env.CI && `no Chromium at ${CHROMIUM}` },
  () => {
    test('typing a spammy message shows the verdict computed in the browser; a normal one lets the user send', async () => {
      const dist = join(root, 'examples/web-app/dist');
      assert.ok(existsSync(join(dist, 'index.html')), 'the example is built by `npm run build`');
      const logs: string[] = [];
      // The example is a static site; here Ferry itself serves it (same origin), in place of the dashboard.
      const { base, child } = await serve({ FERRY_MODELS_ONLY: 'spam', FERRY_WEB_DASHBOARD_DIR: dist }, logs);
      const profile = mkdtempSync(join(tmpdir(), 'ferry-chromium-'));
      const ctx = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 900, height: 700 },
      });
      try {
        const page = ctx.pages()[0] ?? (await ctx.newPage());
        page.setDefaultTimeout(WAIT);
        const predictCalls: string[] = [];
        page.on('request', (r) => {
          if (r.url().includes('/predict')) predictCalls.push(r.url());
        });
        page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
        page.on('console', (m) => {
          if (m.type() === 'error') logs.push(`console: ${m.text()}`);
        });
        await page.goto(`${base}/`);
        await page
          .locator('#message')
          .pressSequentially('WIN a FREE iPhone!!! Click http://example.com to claim your PRIZE now', { delay: 5 });
        await page
          .waitForFunction(() => document.getElementById('verdict')?.classList.contains('spam'), undefined, {
            timeout: 30_000,
          })
          .catch(async (e: Error) => {
            throw new Error(
              `${e.message}; verdict "${await page.locator('#verdict').innerText()}" ${await page.locator('#where').innerText()}`,
            );
          });
        assert.match(await page.locator('#where').innerText(), /checked on the edge/);
        assert.equal(await page.locator('#send').isDisabled(), true);
        await page.screenshot({ path: join(shots, 'example-web-app-spam.png') });
        await page.locator('#message').fill('');
        await page
          .locator('#message')
          .pressSequentially('Thanks for the patch, I applied it to the kernel tree and the build works now.', {
            delay: 5,
          });
        await page.waitForFunction(() => document.getElementById('verdict')?.classList.contains('ham'));
        assert.equal(await page.locator('#send').isDisabled(), false);
        assert.deepEqual(
          predictCalls,
          [],
          'the edge model answered every keystroke: no predict call reached the server',
        );
        await page.screenshot({ path: join(shots, 'example-web-app-ham.png') });
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${logs.join('\n').slice(-3000)}`);
      } finally {
        await ctx.close();
        rmSync(profile, { recursive: true, force: true });
        await stop(child);
      }
    });
  },
);

describe(
  'the dashboard asks for an API key when the server requires one',
  { skip: !existsSync(CHROMIUM) && !process.env.CI && `no Chromium at ${CHROMIUM}` },
  () => {
    test('401 → key prompt → with the key the models list loads', async () => {
      const logs: string[] = [];
      const key = 'dashboardKey0123456789';
      const { base, child } = await serve(
        { FERRY_MODELS_ONLY: 'spam', FERRY_API_KEYS: `dash=${key};scopes=predict+jobs+pipelines:read+admin` },
        logs,
      );
      const profile = mkdtempSync(join(tmpdir(), 'ferry-chromium-'));
      const ctx = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1280, height: 700 },
      });
      try {
        assert.equal((await fetch(`${base}/v1/models`)).status, 401, 'the server does require a key');
        const page = ctx.pages()[0] ?? (await ctx.newPage());
        page.setDefaultTimeout(WAIT);
        await page.goto(`${base}/#/models`);
        await page.getByTestId('api-key-prompt').waitFor();
        assert.equal(await page.getByTestId('models-table').locator('tbody tr').count(), 0);
        await page.screenshot({ path: join(shots, 'api-key-prompt.png') });
        await page.getByLabel('API key').fill(key);
        await page.getByTestId('api-key-prompt').getByRole('button', { name: 'Save' }).click();
        await page.getByTestId('models-table').getByText('spam', { exact: true }).waitFor();
        assert.equal(await page.evaluate(() => localStorage.getItem('ferry.apiKey')), key);
      } finally {
        await ctx.close();
        rmSync(profile, { recursive: true, force: true });
        await stop(child);
      }
    });
  },
);

describe(
  'the example web app falls back to the server when the edge cannot run',
  { skip: !existsSync(CHROMIUM) && !process.env.CI && `no Chromium at ${CHROMIUM}` },
  () => {
    test('no WebAssembly on the page: the verdict comes from the server, live; with the server gone the form stays usable', async () => {
      const dist = join(root, 'examples/web-app/dist');
      const logs: string[] = [];
      const { base, child } = await serve({ FERRY_MODELS_ONLY: 'spam', FERRY_WEB_DASHBOARD_DIR: dist }, logs);
      const profile = mkdtempSync(join(tmpdir(), 'ferry-chromium-'));
      const ctx = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 900, height: 700 },
      });
      try {
        const page = ctx.pages()[0] ?? (await ctx.newPage());
        page.setDefaultTimeout(WAIT);
        await page.addInitScript(() => {
          delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
        });
        const predictCalls: string[] = [];
        const artifactCalls: string[] = [];
        page.on('request', (r) => {
          if (r.url().includes('/predict')) predictCalls.push(r.url());
          if (/\/artifact$/.test(new URL(r.url()).pathname)) artifactCalls.push(r.url());
        });
        page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
        await page.goto(`${base}/`);
        const direct = (await (
          await fetch(`${base}/v1/models/spam/versions/1/predict`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              instances: [{ text: 'WIN a FREE iPhone!!! Click http://example.com to claim your PRIZE now' }],
            }),
          })
        ).json()) as { predictions: Array<{ scores: { spam: number } }> };
        const expected = direct.predictions[0]!.scores.spam * 100;
        await page
          .locator('#message')
          .pressSequentially('WIN a FREE iPhone!!! Click http://example.com to claim your PRIZE now', { delay: 5 });
        // Typing checks every prefix; a prefix may already be spam at another score. Wait for the verdict
        // of the whole message (the API's score for it, to the page's one decimal), or time out.
        await page
          .waitForFunction((want) => {
            const el = document.getElementById('verdict');
            const m = /\(([\d.]+)% spam\)/.exec(el?.textContent ?? '');
            return !!el?.classList.contains('spam') && !!m && Math.abs(Number(m[1]) - want) < 0.051;
          }, expected)
          .catch(async (e: Error) => {
            throw new Error(`${e.message}; shown: ${await page.locator('#verdict').innerText()}, API: ${expected}%`);
          });
        assert.match(await page.locator('#where').innerText(), /checked on the server/);
        assert.equal(await page.locator('#send').isDisabled(), true);
        await page.screenshot({ path: join(shots, 'example-web-app-server-fallback.png') });
        assert.ok(predictCalls.length >= 1, 'the server answered');
        assert.deepEqual(artifactCalls, [], 'no model download without WebAssembly');

        await page.locator('#message').fill('');
        await page
          .locator('#message')
          .pressSequentially('Thanks for the patch, I applied it to the kernel tree and the build works now.', {
            delay: 5,
          });
        await page.waitForFunction(() => document.getElementById('verdict')?.classList.contains('ham'));
        assert.equal(await page.locator('#send').isDisabled(), false);

        // Both paths gone: the form says so and still lets the user send.
        await stop(child);
        await page.locator('#message').pressSequentially(' Cheers!', { delay: 5 });
        await page.waitForFunction(() => document.getElementById('verdict')?.textContent === 'could not check');
        assert.equal(await page.locator('#send').isDisabled(), false);
        assert.deepEqual(
          logs.filter((l) => l.startsWith('pageerror')),
          [],
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${logs.join('\n').slice(-3000)}`);
      } finally {
        await ctx.close();
        rmSync(profile, { recursive: true, force: true });
        await stop(child);
      }
    });
  },
);
